import ArgumentParser
import VPCEPClient

struct QuotaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quota", abstract: "Your quotas in the region.", subcommands: [List.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show used and allowed counts per resource type.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.listQuotas(ListQuotasRequest())
            }, print: { Output.printList($0, layout: .quota, format: $1) })
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
