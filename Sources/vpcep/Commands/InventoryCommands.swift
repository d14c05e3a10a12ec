import ArgumentParser
import VPCEPClient

/// Paging flags shared by list commands.
struct PageOptions: ParsableArguments {
    @Option(help: "At most this many items (1-1000; server default 10); with --all, per page.") var limit: UInt32 = 0
    @Option(help: "Skip this many items (not with --page-token).") var offset: UInt32 = 0
    @Option(help: "created_at or updated_at.") var sortKey: String = ""
    @Option(help: "desc (default) or asc.") var sortDir: String = ""
    @Option(help: "Continue after the page that printed this token (same filters and sort).") var pageToken: String = ""
    @Flag(help: "Follow page tokens to the end and print every item.") var all = false

    var page: PageRequest {
        PageRequest(limit: limit, offset: offset, sortKey: sortKey, sortDir: sortDir, pageToken: pageToken)
    }

    /// One page of `request`, or with --all every page, each asking for the one after the last
    /// (by token, so items that come or go meanwhile shift nothing), merged into one response.
    func fetch<Request: PagedRequest, Response: PagedResponse>(
        _ request: Request, _ call: (Request) async throws(VPCEPError) -> Response
    ) async throws(VPCEPError) -> Response {
        var request = request
        request.page = page
        var response = try await call(request)
        guard all else { return response }
        while !response.nextPageToken.isEmpty {
            request.page = PageRequest(limit: limit, sortKey: sortKey, sortDir: sortDir, pageToken: response.nextPageToken)
            let next = try await call(request)
            response.items += next.items
            response.totalCount = next.totalCount
            response.nextPageToken = next.nextPageToken
        }
        return response
    }
}

/// A list request: its paging can be set.
protocol PagedRequest: Sendable {
    var page: PageRequest? { get set }
}

/// A list response: a page of items and the token of the next page.
protocol PagedResponse: Sendable {
    associatedtype Item
    var items: [Item] { get set }
    var totalCount: UInt32 { get set }
    var nextPageToken: String { get set }
}

extension ListVpcsRequest: PagedRequest {}
extension ListVpcsResponse: PagedResponse {}
extension ListSubnetsRequest: PagedRequest {}
extension ListSubnetsResponse: PagedResponse {}
extension ListLoadBalancersRequest: PagedRequest {}
extension ListLoadBalancersResponse: PagedResponse {}
extension ListVmsRequest: PagedRequest {}
extension ListVmsResponse: PagedResponse {}
extension ListEndpointServicesRequest: PagedRequest {}
extension ListEndpointServicesResponse: PagedResponse {}
extension ListPublicEndpointServicesRequest: PagedRequest {}
extension ListPublicEndpointServicesResponse: PagedResponse {}
extension ListPermissionsRequest: PagedRequest {}
extension ListPermissionsResponse: PagedResponse {}
extension ListConnectionsRequest: PagedRequest {}
extension ListConnectionsResponse: PagedResponse {}
extension ListEndpointsRequest: PagedRequest {}
extension ListEndpointsResponse: PagedResponse {}

struct VPCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpc", abstract: "Virtual private clouds.", subcommands: [Create.self, List.self, Delete.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a VPC.")
        @Option(help: "1-64 of A-Z a-z 0-9 _ . -") var name: String
        @Option(help: "IPv4 CIDR, e.g. 10.0.0.0/16.") var cidr: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.createVpc(CreateVpcRequest(name: name, cidr: cidr))
            }, print: Output.printResource)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your VPCs in the region.")
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await paging.fetch(ListVpcsRequest()) { r throws(VPCEPError) in try await client.listVpcs(r) }
            }, print: { Output.printList($0, layout: .vpc, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete one of your VPCs.",
            discussion: "Refused (exit 9) while it has subnets, backends, services or endpoints. Prints nothing on success."
        )
        @Argument(help: "VPC id.") var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.deleteVpc(DeleteResourceRequest(id: id))
            }, print: Output.printNothing)
        }
    }
}

struct SubnetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subnet", abstract: "Subnets of a VPC.", subcommands: [Create.self, List.self, Delete.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a subnet inside a VPC's CIDR.")
        @Option(help: "VPC id.") var vpc: String
        @Option var name: String
        @Option(help: "IPv4 CIDR inside the VPC's, not overlapping 198.19.128.0/17.") var cidr: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.createSubnet(CreateSubnetRequest(vpcId: vpc, name: name, cidr: cidr))
            }, print: Output.printResource)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your subnets in the region.")
        @Option(help: "Only subnets of this VPC.") var vpc: String = ""
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await paging.fetch(ListSubnetsRequest(vpcId: vpc)) { r throws(VPCEPError) in try await client.listSubnets(r) }
            }, print: { Output.printList($0, layout: .subnet, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete one of your subnets.",
            discussion: "Refused (exit 9) while a load balancer, server or endpoint is in it. Prints nothing on success."
        )
        @Argument(help: "Subnet id.") var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.deleteSubnet(DeleteResourceRequest(id: id))
            }, print: Output.printNothing)
        }
    }
}

/// Flags shared by `lb create` and `vm create`.
struct BackendCreateOptions: ParsableArguments {
    @Option(help: "VPC id.") var vpc: String
    @Option(help: "Subnet id (in that VPC).") var subnet: String
    @Option var name: String
    @Option(help: "A free address of the subnet; allocated when omitted.") var ip: String = ""
    @Option(name: .customLong("ingress"), help: "A source CIDR its security group / listener ACL admits; repeatable.")
    var ingress: [String] = []
}

struct LoadBalancerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lb", abstract: "Load balancers (endpoint service backends).", subcommands: [Create.self, List.self, Delete.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a load balancer in a subnet.")
        @OptionGroup var backend: BackendCreateOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.createLoadBalancer(CreateLoadBalancerRequest(
                    vpcId: backend.vpc, subnetId: backend.subnet, name: backend.name, ip: backend.ip,
                    ingressCidrs: backend.ingress
                ))
            }, print: Output.printResource)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your load balancers in the region.")
        @Option(help: "Only those in this VPC.") var vpc: String = ""
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await paging.fetch(ListLoadBalancersRequest(vpcId: vpc)) { r throws(VPCEPError) in
                    try await client.listLoadBalancers(r)
                }
            }, print: { Output.printList($0, layout: .backend, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete one of your load balancers.",
            discussion: "Refused (exit 9) while a service uses it. Prints nothing on success."
        )
        @Argument(help: "Load balancer id.") var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.deleteLoadBalancer(DeleteResourceRequest(id: id))
            }, print: Output.printNothing)
        }
    }
}

struct VMCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm", abstract: "Servers (endpoint service backends).", subcommands: [Create.self, List.self, Delete.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Register a server in a subnet.")
        @OptionGroup var backend: BackendCreateOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.createVm(CreateVmRequest(
                    vpcId: backend.vpc, subnetId: backend.subnet, name: backend.name, ip: backend.ip,
                    ingressCidrs: backend.ingress
                ))
            }, print: Output.printResource)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your servers in the region.")
        @Option(help: "Only those in this VPC.") var vpc: String = ""
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await paging.fetch(ListVmsRequest(vpcId: vpc)) { r throws(VPCEPError) in try await client.listVms(r) }
            }, print: { Output.printList($0, layout: .backend, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete one of your servers.",
            discussion: "Refused (exit 9) while a service uses it. Prints nothing on success."
        )
        @Argument(help: "Server id.") var id: String
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            try await global.call({ client throws(VPCEPError) in
                try await client.deleteVm(DeleteResourceRequest(id: id))
            }, print: Output.printNothing)
        }
    }
}
