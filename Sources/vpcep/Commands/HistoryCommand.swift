import ArgumentParser
import VPCEPClient

struct HistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Show committed changes: of one resource, or of everything you may see.",
        discussion: """
            Each change shows its sequence in the change log, time, type, the resource, who made it, \
            the fields it changed and (for your own calls) the request id; --output json adds the \
            resource as the change left it. A provider sees endpoints on its services as connections; \
            a consumer sees its endpoints and the decisions on them. Newest first unless --sort-dir asc.
            """
    )
    @Argument(help: "A resource id (VPC, subnet, load balancer, VM, service, permission, endpoint; a quota's is TENANT/TYPE). Without it, every change you may see.")
    var id: String?
    @Option(help: "Only changes at or after this time (RFC 3339, e.g. 2026-11-30T15:00:00Z).") var since: String = ""
    @Option(help: "Only changes before this time (RFC 3339).") var until: String = ""
    @Option(help: "At most this many changes (1-1000; server default 10).") var limit: UInt32 = 0
    @Option(help: "Skip this many changes.") var offset: UInt32 = 0
    @Option(help: "desc (default, newest first) or asc.") var sortDir: String = ""
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        // On the wire an empty id means "every change": an empty shell variable would list them all.
        if id?.isEmpty == true { throw ValidationError("The id is empty; leave it out to see every change you may see.") }
    }

    func run() async throws {
        let request = ListHistoryRequest(
            resourceId: id ?? "", since: since, until: until,
            page: PageRequest(limit: limit, offset: offset, sortDir: sortDir))
        try await global.call({ client throws(VPCEPError) in
            try await client.listHistory(request)
        }, print: { Output.printList($0, layout: .history, format: $1, terminalWidth: global.tableWidth) })
    }
}
