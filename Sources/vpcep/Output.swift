import ArgumentParser
import Foundation
import VPCEPClient

/// How one kind of resource shows in a table: column headers and the JSON keys they read.
struct TableLayout {
    var columns: [(header: String, key: String)]

    static let vpc = TableLayout(columns: [("ID", "id"), ("NAME", "name"), ("CIDR", "cidr"), ("CREATED", "created_at")])
    static let subnet = TableLayout(columns: [
        ("ID", "id"), ("VPC", "vpc_id"), ("NAME", "name"), ("CIDR", "cidr"), ("CREATED", "created_at"),
    ])
    static let backend = TableLayout(columns: [
        ("ID", "id"), ("NAME", "name"), ("VPC", "vpc_id"), ("SUBNET", "subnet_id"), ("IP", "ip"), ("INGRESS", "ingress_cidrs"),
    ])
    static let service = TableLayout(columns: [
        ("ID", "id"), ("SERVICE NAME", "service_name"), ("STATUS", "status"), ("BACKEND", "backend_type"),
        ("PORTS", "ports"), ("APPROVAL", "approval_enabled"), ("CONNECTIONS", "connection_count"),
    ])
    static let quota = TableLayout(columns: [("TYPE", "type"), ("USED", "used"), ("QUOTA", "quota")])
    static let serviceSummary = TableLayout(columns: [
        ("ID", "id"), ("SERVICE NAME", "service_name"), ("TYPE", "service_type"), ("OWNER", "owner"),
        ("APPROVAL", "approval_enabled"), ("CREATED", "created_at"),
    ])
    static let permission = TableLayout(columns: [
        ("ID", "id"), ("PERMISSION", "permission"), ("TYPE", "permission_type"), ("DESCRIPTION", "description"),
        ("CREATED", "created_at"),
    ])
    static let endpoint = TableLayout(columns: [
        ("ID", "id"), ("SERVICE NAME", "service_name"), ("STATUS", "status"), ("IP", "ip"), ("VPC", "vpc_id"),
        ("MARKER", "marker_id"), ("TAGS", "tags"),
    ])
    static let connection = TableLayout(columns: [
        ("ENDPOINT", "id"), ("MARKER", "marker_id"), ("TENANT", "tenant_id"), ("STATUS", "status"),
        ("DECIDED BY", "decided_by"), ("DESCRIPTION", "description"), ("CREATED", "created_at"),
    ])
}

enum Output {
    /// Prints one resource: JSON, or aligned "key  value" lines.
    static func printResource(_ message: some ProtoMessage, format: OutputFormat) {
        let json = JSONValue(reflecting: message)
        switch format {
        case .json:
            print(json.serialized())
        case .ids:
            if case .string(let id)? = json["id"] { print(id) }
        case .table:
            guard case .object(let fields) = json else { return }
            let width = fields.map(\.0.count).max() ?? 0
            for (key, value) in fields {
                let cell = cellText(value)
                guard !cell.isEmpty else { continue }
                print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + cell)
            }
        }
    }

    /// For calls whose success says it all (deletes): nothing in any format; the exit code is 0.
    static func printNothing(_ message: some ProtoMessage, format: OutputFormat) {}

    /// Prints a list response ({"items": [...], "total_count": N}) as JSON or a table.
    static func printList(_ message: some ProtoMessage, layout: TableLayout, format: OutputFormat) {
        let json = JSONValue(reflecting: message)
        switch format {
        case .json:
            print(json.serialized())
        case .ids:
            guard case .array(let items)? = json["items"] else { return }
            for item in items {
                if case .string(let id)? = item["id"] { print(id) }
            }
        case .table:
            guard case .array(let items)? = json["items"] else { return }
            let rows = items.map { item in layout.columns.map { cellText(item[$0.key] ?? .null) } }
            printTable(headers: layout.columns.map(\.header), rows: rows)
            if case .number(let total)? = json["total_count"], let count = Int(total), count > items.count {
                print("(\(items.count) of \(count) shown; use --limit and --offset for more)")
            }
        }
    }

    static func printTable(headers: [String], rows: [[String]], terminalWidth: Int? = Terminal.width) {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        // At a terminal, narrow the widest columns until the table fits; cut cells show "…".
        // Piped output is never cut, so scripts see whole values.
        if let terminalWidth {
            let minimum = 8
            while widths.reduce(0, +) + 2 * (widths.count - 1) > terminalWidth,
                  let widest = widths.indices.max(by: { widths[$0] < widths[$1] }), widths[widest] > minimum {
                widths[widest] -= 1
            }
        }
        func fit(_ cell: String, _ width: Int) -> String {
            cell.count <= width ? cell : String(cell.prefix(max(0, width - 1))) + "…"
        }
        func line(_ cells: [String]) -> String {
            let padded = cells.enumerated().map { index, cell in
                let cut = fit(cell, widths[index])
                return index == cells.count - 1 ? cut : cut.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
            // Empty trailing cells leave no trailing spaces.
            return String(padded.reversed().drop { $0 == " " }.reversed())
        }
        print(line(headers))
        for row in rows { print(line(row)) }
    }

    /// A value as one table cell: port mappings as "terminal:service", tags as "key=value";
    /// control characters escaped.
    static func cellText(_ value: JSONValue) -> String {
        switch value {
        case .string(let string): return TerminalText.escaped(string)
        case .number(let number): return number
        case .bool(let bool): return bool ? "true" : "false"
        case .null: return ""
        case .array(let items): return items.map(cellText).joined(separator: ",")
        case .object:
            if case .number(let terminal)? = value["terminal_port"], case .number(let service)? = value["service_port"] {
                return "\(terminal):\(service)"
            }
            if case .string(let key)? = value["key"] {
                return TerminalText.escaped(key) + "=" + (value["value"].map(cellText) ?? "")
            }
            return value.serialized(pretty: false)
        }
    }
}

extension GlobalOptions {
    /// Runs one call with a fresh client, prints the outcome, and maps failures to exit codes.
    func call<Response: ProtoMessage>(
        _ body: (VPCEPClient) async throws(VPCEPError) -> Response, print render: (Response, OutputFormat) -> Void
    ) async throws {
        let format = self.format
        do {
            let client = try makeClient()
            let response: Response
            // A person at a terminal sees that something is happening when the server is slow.
            let spinner = Task { await Terminal.spinWhileWaiting() }
            do {
                response = try await body(client)
            } catch {
                spinner.cancel()
                await spinner.value
                await client.close()
                throw CLIError(error: error)
            }
            spinner.cancel()
            await spinner.value
            await client.close()
            render(response, format)
        } catch let error as CLIError {
            error.report(format: format)
            throw ExitCode(error.exitCode)
        }
    }
}
