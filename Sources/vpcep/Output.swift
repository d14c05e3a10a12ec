import ArgumentParser
import Foundation
import VPCEPClient

/// How one kind of resource shows in a table: column headers, the JSON keys they read, and what
/// gives way when the terminal is narrower than the table.
struct TableLayout {
    var columns: [(header: String, key: String)]
    /// Steps taken in order, each only while the table is still too wide. The first column (the
    /// row's id) never appears here: it is the value people copy, so it is never cut or dropped.
    /// Other ids and service names are never cut either, only dropped whole; timestamps go first.
    var narrowing: [TableNarrowing] = []

    static let vpc = TableLayout(
        columns: [("ID", "id"), ("NAME", "name"), ("CIDR", "cidr"), ("CREATED", "created_at")],
        narrowing: [.drop("created_at"), .shorten("name"), .drop("cidr"), .drop("name")]
    )
    static let subnet = TableLayout(
        columns: [("ID", "id"), ("VPC", "vpc_id"), ("NAME", "name"), ("CIDR", "cidr"), ("CREATED", "created_at")],
        narrowing: [.drop("created_at"), .shorten("name"), .drop("cidr"), .drop("name"), .drop("vpc_id")]
    )
    static let backend = TableLayout(
        columns: [
            ("ID", "id"), ("NAME", "name"), ("VPC", "vpc_id"), ("SUBNET", "subnet_id"), ("IP", "ip"),
            ("INGRESS", "ingress_cidrs"),
        ],
        narrowing: [
            .drop("ingress_cidrs"), .shorten("name"), .drop("subnet_id"), .drop("vpc_id"), .drop("name"), .drop("ip"),
        ]
    )
    static let service = TableLayout(
        columns: [
            ("ID", "id"), ("SERVICE NAME", "service_name"), ("STATUS", "status"), ("BACKEND", "backend_type"),
            ("PORTS", "ports"), ("APPROVAL", "approval_enabled"), ("CONNECTIONS", "connection_count"),
        ],
        narrowing: [
            .drop("service_name"), .drop("ports"), .drop("backend_type"), .drop("approval_enabled"),
            .drop("connection_count"), .drop("status"),
        ]
    )
    static let quota = TableLayout(columns: [("TYPE", "type"), ("USED", "used"), ("QUOTA", "quota")])
    static let serviceSummary = TableLayout(
        columns: [
            ("ID", "id"), ("SERVICE NAME", "service_name"), ("TYPE", "service_type"), ("OWNER", "owner"),
            ("APPROVAL", "approval_enabled"), ("CREATED", "created_at"),
        ],
        narrowing: [
            .drop("created_at"), .drop("service_name"), .drop("approval_enabled"), .drop("service_type"), .drop("owner"),
        ]
    )
    static let permission = TableLayout(
        columns: [
            ("ID", "id"), ("PERMISSION", "permission"), ("TYPE", "permission_type"), ("DECISION", "decision"),
            ("LIMIT", "connection_limit"), ("EXPIRES", "expires_at"), ("ON EXPIRY", "on_expiry"),
            ("DESCRIPTION", "description"), ("CREATED", "created_at"),
        ],
        narrowing: [
            .drop("created_at"), .shorten("description"), .drop("permission_type"), .drop("description"),
            .drop("on_expiry"), .drop("expires_at"), .drop("connection_limit"), .drop("decision"), .drop("permission"),
        ]
    )
    static let endpoint = TableLayout(
        columns: [
            ("ID", "id"), ("SERVICE NAME", "service_name"), ("STATUS", "status"), ("IP", "ip"), ("VPC", "vpc_id"),
            ("MARKER", "marker_id"), ("TAGS", "tags"),
        ],
        narrowing: [
            .drop("service_name"), .shorten("tags"), .drop("marker_id"), .drop("vpc_id"), .drop("tags"), .drop("ip"),
            .drop("status"),
        ]
    )
    static let history = TableLayout(
        columns: [
            ("SEQ", "seq"), ("TIME", "time"), ("TYPE", "type"), ("KIND", "kind"), ("RESOURCE", "resource_id"),
            ("ACTOR", "actor"), ("CHANGED", "changed_fields"), ("REQUEST", "request_id"),
        ],
        narrowing: [
            .drop("request_id"), .shorten("changed_fields"), .drop("kind"), .drop("time"), .drop("changed_fields"),
            .drop("actor"),
        ]
    )
    static let connection = TableLayout(
        columns: [
            ("ENDPOINT", "id"), ("MARKER", "marker_id"), ("TENANT", "tenant_id"), ("STATUS", "status"),
            ("DECIDED BY", "decided_by"), ("DESCRIPTION", "description"), ("CREATED", "created_at"),
            ("MESSAGE", "request_message"), ("REASON", "reason"),
        ],
        narrowing: [
            .shorten("request_message"), .shorten("reason"), .drop("request_message"), .drop("reason"), .drop("created_at"), .shorten("description"), .drop("decided_by"), .drop("marker_id"), .drop("description"),
            .drop("tenant_id"), .drop("status"),
        ]
    )
}

/// One way a table gives way to a narrow terminal, naming a column by its key.
enum TableNarrowing {
    /// Leave the column out.
    case drop(String)
    /// Cut the column's cells with "…", down to `minimum` characters (or its header's width). Only
    /// for free text: names, descriptions, tags; never an id.
    case shorten(String, minimum: Int = 12)
}

enum Output {
    /// Prints one resource: JSON, or aligned "key  value" lines.
    static func printResource(_ message: some ProtoMessage, format: OutputFormat) {
        let json = JSONValue(encoding: message)
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

    /// Prints a response carrying the connections a call affected (`affected`): JSON whole; ids one per
    /// line; for people `headline`, then the connections as a table when there are any.
    static func printAffected(_ message: some ProtoMessage, headline: String, format: OutputFormat, terminalWidth: Int?) {
        let json = JSONValue(encoding: message)
        let items: [JSONValue] = if case .array(let items)? = json["affected"] { items } else { [] }
        switch format {
        case .json:
            print(json.serialized())
        case .ids:
            for item in items {
                if case .string(let id)? = item["id"] { print(id) }
            }
        case .table:
            print(headline)
            guard !items.isEmpty else { return }
            let layout = TableLayout.connection
            let rows = items.map { item in layout.columns.map { cellText(item[$0.key] ?? .null) } }
            printTable(columns: layout.columns, rows: rows, narrowing: layout.narrowing, terminalWidth: terminalWidth)
        }
    }

    /// For calls whose success says it all (deletes): nothing in any format; the exit code is 0.
    static func printNothing(_ message: some ProtoMessage, format: OutputFormat) {}

    /// Prints a list response ({"items": [...], "total_count": N}) as JSON or a table.
    /// `terminalWidth` as in `printTable`.
    static func printList(_ message: some ProtoMessage, layout: TableLayout, format: OutputFormat, terminalWidth: Int?) {
        let json = JSONValue(encoding: message)
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
            printTable(columns: layout.columns, rows: rows, narrowing: layout.narrowing,
                       terminalWidth: terminalWidth)
            if case .string(let token)? = json["next_page_token"], !token.isEmpty {
                let total = json["total_count"].map(cellText) ?? "?"
                print("(\(items.count) of \(total) shown; the next page: --page-token \(token), or every page: --all)")
            } else if case .number(let total)? = json["total_count"], let count = Int(total), count > items.count {
                print("(\(items.count) of \(count) shown; use --limit and --offset for more)")
            }
        }
    }

    /// Prints an aligned table. `terminalWidth` is nil off a terminal and with --wide: then every
    /// column shows whole, so scripts and people who asked see every value.
    static func printTable(
        columns: [(header: String, key: String)], rows: [[String]], narrowing: [TableNarrowing] = [], terminalWidth: Int?
    ) {
        let headers = columns.map(\.header), keys = columns.map(\.key)
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        var shown = Array(headers.indices)
        if let terminalWidth {
            for step in narrowing {
                let excess = shown.map { widths[$0] }.reduce(0, +) + 2 * (shown.count - 1) - terminalWidth
                guard excess > 0 else { break }
                switch step {
                case .drop(let key):
                    // A misspelt key or the id column is a bug in a layout, caught by the CLI tests.
                    assert(keys.dropFirst().contains(key), "no column \(key) to narrow")
                    guard let column = keys.firstIndex(of: key), column != 0 else { continue }
                    shown.removeAll { $0 == column }
                case .shorten(let key, let minimum):
                    // A misspelt key or the id column is a bug in a layout, caught by the CLI tests.
                    assert(keys.dropFirst().contains(key), "no column \(key) to narrow")
                    guard let column = keys.firstIndex(of: key), column != 0 else { continue }
                    widths[column] = min(widths[column], max(widths[column] - excess, minimum, headers[column].count))
                }
            }
            // Whatever is left is printed whole, even wider than the terminal: a wrapped line
            // still holds the id, a cut one does not.
        }
        func fit(_ cell: String, _ width: Int) -> String {
            cell.count <= width ? cell : String(cell.prefix(max(0, width - 1))) + "…"
        }
        func line(_ cells: [String]) -> String {
            let padded = shown.enumerated().map { position, column in
                let cut = fit(cells[column], widths[column])
                return position == shown.count - 1 ? cut : cut.padding(toLength: widths[column], withPad: " ", startingAt: 0)
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
    func call<Response>(
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
