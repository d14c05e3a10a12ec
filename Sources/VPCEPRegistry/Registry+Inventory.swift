import Foundation

/// The network inventory: VPCs, subnets, load balancers and VMs.
extension Registry {
    public func createVPC(_ ctx: CallContext, name: String, cidr: String) async throws(RegistryError) -> VPC {
        let scope = try scope(ctx)
        try Validation.resourceName(name)
        let block = try Validation.cidr(cidr, prefixes: 8...28)
        let now = now()
        let vpc = VPC(
            id: makeID(), name: name, cidr: block.description, region: scope.region, ownerID: scope.ownerID,
            createdAt: now, updatedAt: now)
        return try await write(ctx, "createVPC", request: [name, cidr]) { tx in
            try await tx.insertVPC(vpc)
            try await log(tx, ctx, [ChangeEvent(type: .created, state: .vpc(vpc))])
            return vpc
        }
    }

    public func listVPCs(_ ctx: CallContext, page: PageRequest) async throws(RegistryError) -> ListResult<VPC> {
        let scope = try scope(ctx)
        let query = try Validation.page(page, region: scope.region, ownerID: scope.listOwner, list: "vpcs")
        return try await read { reader in try await reader.listVPCs(query) }.withPageToken(for: query)
    }

    public func createSubnet(_ ctx: CallContext, vpcID: String, name: String, cidr: String) async throws(RegistryError) -> Subnet {
        let scope = try scope(ctx)
        guard !vpcID.isEmpty else { throw .invalid(.vpcIDRequired, "vpc_id is required", field: "vpc_id") }
        try Validation.resourceName(name)
        let block = try Validation.cidr(cidr, prefixes: 0...29)
        guard !block.overlaps(.endpointSourceRange) else {
            throw .invalid(
                .subnetCIDRReserved, "subnets must not overlap 198.19.128.0/17, the endpoint source range",
                field: "cidr")
        }
        let now = now()
        let subnet = Subnet(
            id: makeID(), vpcID: vpcID, name: name, cidr: block.description, region: scope.region,
            ownerID: scope.ownerID, createdAt: now, updatedAt: now)
        return try await write(ctx, "createSubnet", request: [vpcID, name, cidr]) { tx in
            let vpc = try await Self.ownedVPC(tx, id: vpcID, scope: scope)
            let vpcBlock = try Self.storedCIDR(vpc.cidr)
            guard vpcBlock.contains(block) else {
                throw RegistryError.invalid(.subnetCIDROutsideVPC, "the subnet must lie inside the VPC's CIDR", field: "cidr")
            }
            for sibling in try await tx.subnets(vpcID: vpcID) {
                guard try !Self.storedCIDR(sibling.cidr).overlaps(block) else {
                    throw RegistryError.precondition(
                        .subnetCIDROverlap, "the CIDR overlaps subnet \(sibling.id) of the VPC", field: "cidr")
                }
            }
            try await tx.insertSubnet(subnet)
            try await log(tx, ctx, [ChangeEvent(type: .created, state: .subnet(subnet))])
            return subnet
        }
    }

    public func listSubnets(_ ctx: CallContext, vpcID: String?, page: PageRequest) async throws(RegistryError) -> ListResult<Subnet> {
        let scope = try scope(ctx)
        let vpcID = nonEmpty(vpcID)
        let query = try Validation.page(page, region: scope.region, ownerID: scope.listOwner, list: "subnets", filter: vpcID as Any)
        return try await read { reader in try await reader.listSubnets(query, vpcID: vpcID) }.withPageToken(for: query)
    }

    public func createBackend(
        _ ctx: CallContext, kind: BackendKind, vpcID: String, subnetID: String, name: String, ip: String?,
        ingressCIDRs: [String]
    ) async throws(RegistryError) -> Backend {
        let scope = try scope(ctx)
        guard !vpcID.isEmpty else { throw .invalid(.vpcIDRequired, "vpc_id is required", field: "vpc_id") }
        guard !subnetID.isEmpty else {
            throw .invalid(.subnetIDRequired, "subnet_id is required", field: "subnet_id")
        }
        try Validation.resourceName(name)
        let requested = try Self.requestedIP(ip)
        let ingress = try Validation.ingressCIDRs(ingressCIDRs)
        let now = now()
        let id = makeID()
        let region = scope.region
        let ownerID = scope.ownerID
        let request: [any Encodable] = [kind, vpcID, subnetID, name, ip, ingressCIDRs]
        return try await write(ctx, "createBackend", request: request) { tx in
            _ = try await Self.ownedVPC(tx, id: vpcID, scope: scope)
            let subnet = try await Self.ownedSubnet(tx, id: subnetID, vpcID: vpcID, scope: scope)
            let address = try await Self.allocateIP(tx, subnet: subnet, requested: requested)
            let backend = Backend(
                id: id, kind: kind, vpcID: vpcID, subnetID: subnetID, name: name,
                ip: address, ingressCIDRs: ingress.map(\.description),
                region: region, ownerID: ownerID, createdAt: now, updatedAt: now)
            try await tx.insertBackend(backend)
            try await log(tx, ctx, [ChangeEvent(type: .created, state: .backend(backend))])
            return backend
        }
    }

    public func listBackends(
        _ ctx: CallContext, kind: BackendKind, vpcID: String?, page: PageRequest
    ) async throws(RegistryError) -> ListResult<Backend> {
        let scope = try scope(ctx)
        let vpcID = nonEmpty(vpcID)
        let query = try Validation.page(
            page, region: scope.region, ownerID: scope.listOwner, list: "backends/\(kind.rawValue)", filter: vpcID as Any)
        return try await read { reader in try await reader.listBackends(query, kind: kind, vpcID: vpcID) }
            .withPageToken(for: query)
    }

    /// The requested address (inside the subnet, not reserved, free) or the lowest free host address from .2 up.
    /// Load balancers, VMs and endpoints share a subnet's addresses.
    static func allocateIP(_ reader: any RegistryReader, subnet: Subnet, requested: IPv4Address?) async throws -> String {
        let block = try Self.storedCIDR(subnet.cidr)
        let taken = Set(try await reader.allocatedIPs(subnetID: subnet.id).compactMap { IPv4Address($0)?.value })
        // The network address, the gateway (.1) and the broadcast address are never assigned.
        let usable = (block.first + 2)...(block.last - 1)
        if let requested {
            guard block.contains(requested) else {
                throw RegistryError.invalid(.ipOutsideSubnet, "the address is not inside the subnet", field: "ip")
            }
            guard usable.contains(requested.value) else {
                throw RegistryError.invalid(
                    .ipReserved, "the network, gateway (.1) and broadcast addresses are reserved", field: "ip")
            }
            guard !taken.contains(requested.value) else {
                throw RegistryError.precondition(.ipInUse, "the address is already in use in the subnet", field: "ip")
            }
            return requested.description
        }
        guard let free = usable.first(where: { !taken.contains($0) }) else {
            throw RegistryError(
                code: .resourceExhausted, reason: .subnetFull, message: "the subnet has no free address",
                field: "subnet_id")
        }
        return IPv4Address(value: free).description
    }

    /// An IPv4 address given in a request (`nil` when absent), or `IP_INVALID`.
    static func requestedIP(_ ip: String?) throws(RegistryError) -> IPv4Address? {
        guard let ip = nonEmpty(ip) else { return nil }
        guard let address = IPv4Address(ip) else { throw .invalid(.ipInvalid, "not an IPv4 address", field: "ip") }
        return address
    }

    /// The caller's own subnet of `vpcID`: `SUBNET_NOT_FOUND` or `SUBNET_NOT_IN_VPC`.
    static func ownedSubnet(_ reader: any RegistryReader, id: String, vpcID: String, scope: Scope) async throws -> Subnet {
        guard let subnet = try await reader.subnet(id: id, visibleTo: scope.owning), scope.owns(region: subnet.region, ownerID: subnet.ownerID)
        else {
            throw RegistryError.notFound(.subnetNotFound, "no such subnet", field: "subnet_id")
        }
        guard subnet.vpcID == vpcID else {
            throw RegistryError.invalid(.subnetNotInVPC, "the subnet is not in the VPC", field: "subnet_id")
        }
        return subnet
    }

    /// The caller's own VPC in the call's region, or `VPC_NOT_FOUND`.
    static func ownedVPC(_ reader: any RegistryReader, id: String, scope: Scope) async throws -> VPC {
        guard let vpc = try await reader.vpc(id: id, visibleTo: scope.owning), scope.owns(region: vpc.region, ownerID: vpc.ownerID) else {
            throw RegistryError.notFound(.vpcNotFound, "no such VPC", field: "vpc_id")
        }
        return vpc
    }

    /// A CIDR read back from the store; it was validated on the way in.
    static func storedCIDR(_ text: String) throws(RegistryError) -> IPv4CIDR {
        guard let cidr = try? IPv4CIDR.parse(text, acceptAddress: true) else {
            throw RegistryError(code: .internalError, reason: .storedDataInvalid, message: "internal error")
        }
        return cidr
    }
}
