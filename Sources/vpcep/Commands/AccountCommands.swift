import ArgumentParser
import VPCEPClient

struct QuotaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quota", abstract: "Quotas in the region.", subcommands: [List.self, SetLimit.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show used and allowed counts per resource type.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.listQuotas(ListQuotasRequest())
            }, print: { Output.printList($0, layout: .quota, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct SetLimit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set",
            abstract: "Set a tenant's limit for one resource type in the region (operators only).",
            discussion: "A limit below what is in use blocks new creates and leaves existing resources alone."
        )
        @Option(help: "Tenant id.") var tenant: String
        @Option(name: .customLong("type"), help: "The resource type.") var type: EnumArgument<QuotaType>
        @Option(help: "The new limit.") var limit: UInt32
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = SetQuotaRequest(tenantId: tenant, type: type.value, limit: limit)
            try await global.call({ client throws(VPCEPError) in
                try await client.setQuota(request)
            }, print: { quota, format in
                // A one-row table like `quota list`; JSON is the Quota object itself.
                if format == .table {
                    Output.printList(ListQuotasResponse(items: [quota]), layout: .quota, format: format,
                                     terminalWidth: global.tableWidth)
                } else {
                    Output.printResource(quota, format: format)
                }
            })
        }
    }
}

struct WhoAmICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whoami", abstract: "Show the identity and region the server sees."
    )
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        try await global.call({ client throws(VPCEPError) in
            try await client.whoAmI(WhoAmIRequest())
        }, print: Output.printResource)
    }
}
