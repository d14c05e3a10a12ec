import ArgumentParser
import VPCEPClient

struct ServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service", abstract: "Endpoint services you publish.", subcommands: [Create.self, Get.self, List.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Publish a service behind a load balancer or server.")
        @Option(help: "VPC id of the backend.") var vpc: String
        @Option(help: "lb or vm.") var backendType: BackendKindArgument
        @Option(help: "Id of the load balancer or server.") var backend: String
        @Option(name: .customLong("port"), help: "TERMINAL:SERVICE port mapping, TCP; repeatable (1-50).")
        var ports: [PortArgument] = []
        @Option(help: "0-16 of A-Z a-z 0-9 _ -; part of the service name.") var name: String = ""
        @Flag(name: .customLong("approval"), inversion: .prefixedNo, help: "Whether endpoints wait for your acceptance. (default: on)")
        var approval: Bool?
        @Option(help: "Up to 128 characters, no < or >.") var description: String = ""
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = CreateEndpointServiceRequest(
                vpcId: vpc, backendType: backendType.value, backendId: backend,
                ports: ports.map(\.mapping), name: name, approvalEnabled: approval, description: description
            )
            try await global.call({ client throws(VPCEPError) in
                try await client.createEndpointService(request)
            }, print: Output.printResource)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one of your services by id or service name.")
        @Argument(help: "Service id, or service name ({region}.{name}.{id}).") var service: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            // Service names always contain a dot ("{region}.…"); ids never do.
            let request = service.contains(".")
                ? GetEndpointServiceRequest(serviceName: service) : GetEndpointServiceRequest(id: service)
            try await global.call({ client throws(VPCEPError) in
                try await client.getEndpointService(request)
            }, print: Output.printResource)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your services in the region.")
        @Option(help: "Only names containing this.") var name: String = ""
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.listEndpointServices(ListEndpointServicesRequest(page: paging.page, name: name))
            }, print: { Output.printList($0, layout: .service, format: $1) })
        }
    }
}

struct BackendKindArgument: ExpressibleByArgument {
    var value: BackendType

    init?(argument: String) {
        switch argument.lowercased() {
        case "lb", "load-balancer", "loadbalancer": value = .loadBalancer
        case "vm", "server": value = .vm
        default: return nil
        }
    }

    static var allValueStrings: [String] { ["lb", "vm"] }
}

/// "TERMINAL:SERVICE"; range checks are the server's, so the error names the field.
struct PortArgument: ExpressibleByArgument {
    var mapping: PortMapping

    init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let terminal = UInt32(parts[0]), let service = UInt32(parts[1]) else { return nil }
        mapping = PortMapping(terminalPort: terminal, servicePort: service, protocol: .tcp)
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
