import ArgumentParser
import VPCEPClient

struct EndpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "endpoint", abstract: "VPC endpoints: how your VPCs reach endpoint services.",
        subcommands: [Create.self, Get.self, List.self, Update.self, Delete.self, Wait.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connect one of your subnets to a service.",
            discussion: """
                The service's allow-list must admit you: otherwise the service is not found (exit 4), or, \
                if it is public, the endpoint is refused (exit 6). When the service requires approval the \
                endpoint waits in pendingAcceptance, with no IP shown, until the provider accepts it.
                """
        )
        @Option(help: "Service id or service name ({region}.{name}.{id}).") var service: ServiceReference
        @Option(help: "Your VPC id.") var vpc: String
        @Option(help: "Your subnet id, in that VPC.") var subnet: String
        @Option(help: "A free address of the subnet; allocated when omitted.") var ip: String = ""
        @Option(help: "An IPv4 address or CIDR allowed to use the endpoint; repeatable (at most 20).")
        var whitelist: [String] = []
        @Flag(help: "Enforce the whitelist. (default: off)") var enableWhitelist = false
        @Flag(help: "Give the endpoint a DNS name.") var enableDns = false
        @Option(help: "Up to 128 characters, no < > or control characters.") var description: String = ""
        @Option(name: .customLong("tag"), help: "KEY=VALUE; repeatable (at most 20).") var tags: [TagArgument] = []
        @Option(help: "A message to the provider, shown with the connection (up to 255 characters, no < > or control characters).")
        var message: String = ""
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = CreateEndpointRequest(
                serviceId: service.id, serviceName: service.name, vpcId: vpc, subnetId: subnet, ip: ip,
                whitelist: whitelist, enableWhitelist: enableWhitelist, enableDns: enableDns, description: description,
                tags: tags.map(\.tag), requestMessage: message
            )
            try await global.call({ client throws(VPCEPError) in
                try await client.createEndpoint(request)
            }, print: Output.printResource)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one of your endpoints.")
        @Argument(help: "Endpoint id.") var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.getEndpoint(GetEndpointRequest(id: id))
            }, print: Output.printResource)
        }
    }

    struct Wait: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait until an endpoint reaches a status, then show it.",
            discussion: "Follows the endpoint's changes (a watch), so it returns as soon as the status is committed; shows progress on a terminal. Exits 0 when the status is reached, 9 (FAILED_PRECONDITION) when the endpoint settles in another final status, 10 on timeout."
        )
        @Argument(help: "Endpoint id.") var id: String
        @Option(name: .customLong("for"), help: "The status to wait for. (default: accepted)") var status: EnumArgument<EndpointStatus>?
        @Option(help: "Give up after this many seconds. (default: 300)") var waitTimeout: Int = 300
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let target = status?.value ?? .accepted
            try await global.call({ client throws(VPCEPError) in
                defer { Terminal.endProgress() }
                return try await EndpointWait.until(target, id: id, seconds: waitTimeout, client: client)
            }, print: Output.printResource)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your endpoints in the region.")
        @Option(help: "Only endpoints in this status.") var status: EnumArgument<EndpointStatus>?
        @Option(help: "Only endpoints in this VPC.") var vpc: String = ""
        @Option(help: "Only endpoints of services whose name contains this.") var service: String = ""
        @Option(help: "Only the endpoint with this id.") var id: String = ""
        @Option(name: .customLong("tag"), help: ArgumentHelp(
            "Only endpoints with this tag: KEY=VALUE, or KEY for any value. Repeatable: every key must match "
                + "(or one, with --match any); several values of one key are alternatives."
        ))
        var tags: [TagArgument] = []
        @Option(help: "How --tag filters combine across keys: all (default) or any.") var match: EnumArgument<TagMatch>?
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = ListEndpointsRequest(
                page: paging.page, id: id, vpcId: vpc, serviceName: service, status: status?.value ?? .unspecified,
                tags: tags.map(\.tag), tagMatch: match?.value ?? .unspecified
            )
            try await global.call({ client throws(VPCEPError) in
                try await paging.fetch(request) { r throws(VPCEPError) in try await client.listEndpoints(r) }
            }, print: { Output.printList($0, layout: .endpoint, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change an endpoint's whitelist or description.",
            discussion: "Only the options given change. --whitelist, when given, replaces the whole list; --clear-whitelist empties it."
        )
        @Argument(help: "Endpoint id.") var id: String
        @Option(help: "An IPv4 address or CIDR allowed to use the endpoint; repeatable; replaces the list.")
        var whitelist: [String] = []
        @Flag(help: "Empty the whitelist.") var clearWhitelist = false
        @Flag(name: .customLong("enable-whitelist"), inversion: .prefixedNo, help: "Whether the whitelist is enforced.")
        var enableWhitelist: Bool?
        @Option(help: "Up to 128 characters, no < > or control characters; \"\" clears it.") var description: String?
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if clearWhitelist && !whitelist.isEmpty {
                throw ValidationError("--whitelist and --clear-whitelist cannot be used together.")
            }
        }

        func run() async throws {
            let list: StringList? = clearWhitelist ? StringList(values: []) : whitelist.isEmpty ? nil : StringList(values: whitelist)
            let request = UpdateEndpointRequest(id: id, whitelist: list, enableWhitelist: enableWhitelist, description: description)
            try await global.call({ client throws(VPCEPError) in
                try await client.updateEndpoint(request)
            }, print: Output.printResource)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete one of your endpoints.", discussion: "Prints nothing on success.")
        @Argument(help: "Endpoint id.") var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.deleteEndpoint(DeleteEndpointRequest(id: id))
            }, print: Output.printNothing)
        }
    }
}
