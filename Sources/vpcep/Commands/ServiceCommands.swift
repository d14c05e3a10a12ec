import ArgumentParser
import VPCEPClient

struct ServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service", abstract: "Endpoint services: those you publish, and those you may connect to.",
        subcommands: [Create.self, Get.self, List.self, Update.self, Delete.self, Describe.self, ListPublic.self]
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
        @Option(help: "How the backend learns the client address. (default: close)")
        var clientIpMode: EnumArgument<ClientIpMode>?
        @Option(help: "Up to 128 characters, no < > or control characters.") var description: String = ""
        @Option(name: .customLong("tag"), help: "KEY=VALUE; repeatable (at most 20).") var tags: [TagArgument] = []
        @Option(name: .customLong("type"), help: "interface (default) or gateway (operators only).")
        var serviceType: EnumArgument<ServiceType>?
        @Flag(help: "List the service to every tenant (operators only).") var `public` = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = CreateEndpointServiceRequest(
                vpcId: vpc, backendType: backendType.value, backendId: backend, ports: ports.map(\.mapping), name: name,
                approvalEnabled: approval, clientIpMode: clientIpMode?.value ?? .unspecified, description: description,
                tags: tags.map(\.tag), serviceType: serviceType?.value ?? .unspecified, public: `public`
            )
            try await global.call({ client throws(VPCEPError) in
                try await client.createEndpointService(request)
            }, print: Output.printResource)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one of your services by id or service name.")
        @Argument(help: "Service id, or service name ({region}.{name}.{id}).") var service: ServiceReference
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = GetEndpointServiceRequest(id: service.id, serviceName: service.name)
            try await global.call({ client throws(VPCEPError) in
                try await client.getEndpointService(request)
            }, print: Output.printResource)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your services in the region.")
        @Option(help: "Only names containing this.") var name: String = ""
        @Option(help: "Only the service with this id.") var id: String = ""
        @Option(help: "Only services in this status.") var status: EnumArgument<ServiceStatus>?
        @Option(name: .customLong("tag"), help: ArgumentHelp(
            "Only services with this tag: KEY=VALUE, or KEY for any value. Repeatable: every key must match "
                + "(or one, with --match any); several values of one key are alternatives."
        ))
        var tags: [TagArgument] = []
        @Option(help: "How --tag filters combine across keys: all (default) or any.") var match: EnumArgument<TagMatch>?
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = ListEndpointServicesRequest(
                page: paging.page, name: name, id: id, status: status?.value ?? .unspecified, tags: tags.map(\.tag),
                tagMatch: match?.value ?? .unspecified
            )
            try await global.call({ client throws(VPCEPError) in
                try await paging.fetch(request) { r throws(VPCEPError) in try await client.listEndpointServices(r) }
            }, print: { Output.printList($0, layout: .service, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a service you publish.",
            discussion: "Only the options given change. --port, when given, replaces the whole list of port mappings."
        )
        @Argument(help: "Service id, or service name ({region}.{name}.{id}).") var service: ServiceReference
        @Flag(name: .customLong("approval"), inversion: .prefixedNo, help: "Whether new endpoints wait for your acceptance.")
        var approval: Bool?
        @Option(help: "The new name (0-16 of A-Z a-z 0-9 _ -); the id and region in the service name stay.")
        var name: String?
        @Option(name: .customLong("port"), help: "TERMINAL:SERVICE port mapping, TCP; repeatable; replaces all mappings.")
        var ports: [PortArgument] = []
        @Option(help: "Up to 128 characters, no < > or control characters; \"\" clears it.") var description: String?
        @Option(help: "How the backend learns the client address.") var clientIpMode: EnumArgument<ClientIpMode>?
        @Option(help: "Apply only if the service is still at this revision (from get); fails with exit 5 otherwise.")
        var revision: UInt64?
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            var request = UpdateEndpointServiceRequest(
                approvalEnabled: approval, name: name, ports: ports.isEmpty ? nil : PortMappings(items: ports.map(\.mapping)),
                clientIpMode: clientIpMode?.value ?? .unspecified, description: description, expectedRevision: revision ?? 0
            )
            try await global.call({ client throws(VPCEPError) in
                request.id = try await service.resolveID(client)
                return try await client.updateEndpointService(request)
            }, print: Output.printResource)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a service you publish.",
            discussion: """
                Refused (exit 9) while an endpoint of the service is accepted, suspended or creating: reject \
                those connections or have their owners delete them first, or use --force, which rejects \
                every live connection and deletes in one step (the consumers' endpoints stay, rejected, \
                until their owners delete them). Prints nothing on success, except with --force or \
                --dry-run: the connections whose status the delete changes (affected); --dry-run changes \
                nothing.
                """
        )
        @Argument(help: "Service id, or service name ({region}.{name}.{id}).") var service: ServiceReference
        @Flag(help: "Reject every live connection and delete the service.") var force = false
        @Flag(help: "Only show what the delete would affect; change nothing.") var dryRun = false
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let (force, dryRun) = (force, dryRun)
            try await global.call({ client throws(VPCEPError) in
                let id = try await service.resolveID(client)
                return try await client.deleteEndpointService(DeleteEndpointServiceRequest(id: id, force: force, dryRun: dryRun))
            }, print: { response, format in
                // A plain delete prints nothing, as it always has.
                guard force || dryRun else { return }
                let count = response.affected.count
                let headline = (dryRun ? "dry run: nothing was changed\n" : "")
                    + "\(count) connection\(count == 1 ? "" : "s") \(dryRun ? "would be" : "were") affected"
                Output.printAffected(response, headline: headline, format: format, terminalWidth: global.tableWidth)
            })
        }
    }

    struct Describe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Look up a service you may connect to: the consumer's summary.",
            discussion: """
                Answered for your own services, public ones, and those whose allow-list admits you; any \
                other service is not found (exit 4).
                """
        )
        @Argument(help: "Service id, or service name ({region}.{name}.{id}).") var service: ServiceReference
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = DescribeEndpointServiceRequest(id: service.id, serviceName: service.name)
            try await global.call({ client throws(VPCEPError) in
                try await client.describeEndpointService(request)
            }, print: Output.printResource)
        }
    }

    struct ListPublic: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list-public", abstract: "List the public services operators publish to every tenant."
        )
        @Option(help: "Only names containing this.") var name: String = ""
        @Option(help: "Only the service with this id.") var id: String = ""
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = ListPublicEndpointServicesRequest(page: paging.page, name: name, id: id)
            try await global.call({ client throws(VPCEPError) in
                try await paging.fetch(request) { r throws(VPCEPError) in try await client.listPublicEndpointServices(r) }
            }, print: { Output.printList($0, layout: .serviceSummary, format: $1, terminalWidth: global.tableWidth) })
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
