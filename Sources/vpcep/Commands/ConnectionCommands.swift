import ArgumentParser
import VPCEPClient

struct ConnectionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connection",
        abstract: "Endpoints of a service you publish, as you see them: accept, reject, suspend or resume them.",
        subcommands: [List.self, Accept.self, Reject.self, Suspend.self, Resume.self, Update.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the endpoints connected or waiting to connect to a service.")
        @Argument(help: "Service id or service name.") var service: ServiceReference
        @Option(help: "Only connections in this status.") var status: EnumArgument<EndpointStatus>?
        @Option(help: "Only the connection of this endpoint id.") var endpoint: String = ""
        @Option(help: "Only the connection with this marker id.") var marker: UInt64?
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = ListConnectionsRequest(
                serviceId: service.id, serviceName: service.name, page: paging.page,
                status: status?.value ?? .unspecified, id: endpoint, markerId: marker ?? 0
            )
            try await global.call({ client throws(VPCEPError) in
                try await paging.fetch(request) { r throws(VPCEPError) in try await client.listConnections(r) }
            }, print: { Output.printList($0, layout: .connection, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct Accept: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept endpoints of a service: all of them or, on any error, none.",
            discussion: "Prints the connections as they are afterwards."
        )
        @OptionGroup var decision: Decision

        func run() async throws {
            try await decision.run { client, request throws(VPCEPError) in try await client.acceptConnections(request) }
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reject endpoints of a service (accepted and suspended ones too): all of them or, on any error, none.",
            discussion: "A rejection is final. Prints the connections as they are afterwards."
        )
        @OptionGroup var decision: Decision

        func run() async throws {
            try await decision.run { client, request throws(VPCEPError) in try await client.rejectConnections(request) }
        }
    }

    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Suspend accepted endpoints of a service: all of them or, on any error, none.",
            discussion: "A suspended endpoint keeps its address and may be resumed. Prints the connections as they are afterwards."
        )
        @OptionGroup var decision: Decision

        func run() async throws {
            try await decision.run { client, request throws(VPCEPError) in try await client.suspendConnections(request) }
        }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Resume suspended endpoints of a service (accepted again): all of them or, on any error, none.",
            discussion: "Prints the connections as they are afterwards."
        )
        @OptionGroup var decision: Decision

        func run() async throws {
            try await decision.run { client, request throws(VPCEPError) in try await client.resumeConnections(request) }
        }
    }

    /// What every decision takes: the service, the endpoints, an optional reason for the consumer.
    struct Decision: ParsableArguments {
        @Argument(help: "Service id or service name.") var service: ServiceReference
        @Argument(help: "Endpoint ids.") var endpoints: [String]
        @Option(help: "Why, shown to the consumer on its endpoint (up to 255 characters, no < > or control characters).")
        var reason: String = ""
        @OptionGroup var global: GlobalOptions

        func run(
            _ call: @escaping (VPCEPClient, DecideConnectionsRequest) async throws(VPCEPError) -> DecideConnectionsResponse
        ) async throws {
            let request = DecideConnectionsRequest(
                serviceId: service.id, serviceName: service.name, endpointIds: endpoints, reason: reason)
            try await global.call({ client throws(VPCEPError) in
                try await call(client, request)
            }, print: { Output.printList($0, layout: .connection, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set your description of a connection (yours as provider; the endpoint keeps its own).",
            aliases: ["set-description"]
        )
        @Argument(help: "Service id or service name.") var service: ServiceReference
        @Argument(help: "Endpoint id.") var endpoint: String
        @Option(help: "Up to 128 characters, no < > or control characters; \"\" clears it.") var description: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = UpdateConnectionDescriptionRequest(
                serviceId: service.id, serviceName: service.name, endpointId: endpoint, description: description
            )
            try await global.call({ client throws(VPCEPError) in
                try await client.updateConnectionDescription(request)
            }, print: Output.printResource)
        }
    }
}
