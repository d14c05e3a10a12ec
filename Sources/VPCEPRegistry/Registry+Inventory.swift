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
        try await write { tx in try await tx.insertVPC(vpc) }
        return vpc
    }

    public func listVPCs(_ ctx: CallContext, page: PageRequest) async throws(RegistryError) -> ListResult<VPC> {
        let scope = try scope(ctx)
        let query = try Validation.page(page, region: scope.region, ownerID: scope.listOwner)
        return try await read { reader in try await reader.listVPCs(query) }
    }

    public func createSubnet(_ ctx: CallContext, vpcID: String, name: String, cidr: String) async throws(RegistryError) -> Subnet {
        let scope = try scope(ctx)
        guard !vpcID.isEmpty else { throw .invalid("VPC_ID_REQUIRED", "vpc_id is required", field: "vpc_id") }
        try Validation.resourceName(name)
        let block = try Validation.cidr(cidr, prefixes: 0...29)
        guard !block.overlaps(.endpointSourceRange) else {
            throw .invalid(
                "SUBNET_CIDR_RESERVED", "subnets must not overlap 198.19.128.0/17, the endpoint source range",
                field: "cidr")
        }
        let now = now()
        let subnet = Subnet(
            id: makeID(), vpcID: vpcID, name: name, cidr: block.description, region: scope.region,
            ownerID: scope.ownerID, createdAt: now, updatedAt: now)
        try await write { tx in
            let vpc = try await Self.ownedVPC(tx, id: vpcID, scope: scope)
            let vpcBlock = try Self.storedCIDR(vpc.cidr)
            guard vpcBlock.contains(block) else {
                throw RegistryError.invalid("SUBNET_CIDR_OUTSIDE_VPC", "the subnet must lie inside the VPC's CIDR", field: "cidr")
            }
            for sibling in try await tx.subnets(vpcID: vpcID) {
                guard try !Self.storedCIDR(sibling.cidr).overlaps(block) else {
                    throw RegistryError.precondition(
                        "SUBNET_CIDR_OVERLAP", "the CIDR overlaps subnet \(sibling.id) of the VPC", field: "cidr")
                }
            }
            try await tx.insertSubnet(subnet)
        }
        return subnet
    }

    public func listSubnets(_ ctx: CallContext, vpcID: String?, page: PageRequest) async throws(RegistryError) -> ListResult<Subnet> {
        let scope = try scope(ctx)
        let query = try Validation.page(page, region: scope.region, ownerID: scope.listOwner)
        let vpcID = nonEmpty(vpcID)
        return try await read { reader in try await reader.listSubnets(query, vpcID: vpcID) }
    }

    public func createBackend(
        _ ctx: CallContext, kind: BackendKind, vpcID: String, subnetID: String, name: String, ip: String?,
        ingressCIDRs: [String]
    ) async throws(RegistryError) -> Backend {
        let scope = try scope(ctx)
        guard !vpcID.isEmpty else { throw .invalid("VPC_ID_REQUIRED", "vpc_id is required", field: "vpc_id") }
        guard !subnetID.isEmpty else {
            throw .invalid("SUBNET_ID_REQUIRED", "subnet_id is required", field: "subnet_id")
        }
        try Validation.resourceName(name)
        let requested: IPv4Address?
        if let ip = nonEmpty(ip) {
            guard let address = IPv4Address(ip) else {
                throw .invalid("IP_INVALID", "not an IPv4 address", field: "ip")
            }
            requested = address
        } else {
            requested = nil
        }
        let ingress = try Validation.ingressCIDRs(ingressCIDRs)
        let now = now()
        let id = makeID()
        let region = scope.region
        let ownerID = scope.ownerID
        return try await write { tx in
            _ = try await Self.ownedVPC(tx, id: vpcID, scope: scope)
            guard let subnet = try await tx.subnet(id: subnetID), scope.owns(region: subnet.region, ownerID: subnet.ownerID)
            else {
                throw RegistryError.notFound("SUBNET_NOT_FOUND", "no such subnet", field: "subnet_id")
            }
            guard subnet.vpcID == vpcID else {
                throw RegistryError.invalid("SUBNET_NOT_IN_VPC", "the subnet is not in the VPC", field: "subnet_id")
            }
            let block = try Self.storedCIDR(subnet.cidr)
            let taken = Set(try await tx.allocatedIPs(subnetID: subnetID).compactMap { IPv4Address($0)?.value })
            // The network address, the gateway (.1) and the broadcast address are never assigned.
            let usable = (block.first + 2)...(block.last - 1)
            let address: UInt32
            if let requested {
                guard block.contains(requested) else {
                    throw RegistryError.invalid("IP_OUTSIDE_SUBNET", "the address is not inside the subnet", field: "ip")
                }
                guard usable.contains(requested.value) else {
                    throw RegistryError.invalid(
                        "IP_RESERVED", "the network, gateway (.1) and broadcast addresses are reserved", field: "ip")
                }
                guard !taken.contains(requested.value) else {
                    throw RegistryError.precondition("IP_IN_USE", "the address is already in use in the subnet", field: "ip")
                }
                address = requested.value
            } else {
                guard let free = usable.first(where: { !taken.contains($0) }) else {
                    throw RegistryError(
                        code: .resourceExhausted, reason: "SUBNET_FULL", message: "the subnet has no free address",
                        field: "subnet_id")
                }
                address = free
            }
            let backend = Backend(
                id: id, kind: kind, vpcID: vpcID, subnetID: subnetID, name: name,
                ip: IPv4Address(value: address).description, ingressCIDRs: ingress.map(\.description),
                region: region, ownerID: ownerID, createdAt: now, updatedAt: now)
            try await tx.insertBackend(backend)
            return backend
        }
    }

    public func listBackends(
        _ ctx: CallContext, kind: BackendKind, vpcID: String?, page: PageRequest
    ) async throws(RegistryError) -> ListResult<Backend> {
        let scope = try scope(ctx)
        let query = try Validation.page(page, region: scope.region, ownerID: scope.listOwner)
        let vpcID = nonEmpty(vpcID)
        return try await read { reader in try await reader.listBackends(query, kind: kind, vpcID: vpcID) }
    }

    /// The caller's own VPC in the call's region, or `VPC_NOT_FOUND`.
    static func ownedVPC(_ reader: any RegistryReader, id: String, scope: Scope) async throws -> VPC {
        guard let vpc = try await reader.vpc(id: id), scope.owns(region: vpc.region, ownerID: vpc.ownerID) else {
            throw RegistryError.notFound("VPC_NOT_FOUND", "no such VPC", field: "vpc_id")
        }
        return vpc
    }

    /// A CIDR read back from the store; it was validated on the way in.
    static func storedCIDR(_ text: String) throws(RegistryError) -> IPv4CIDR {
        guard let cidr = try? IPv4CIDR.parse(text, acceptAddress: true) else {
            throw RegistryError(code: .internalError, reason: "STORED_DATA_INVALID", message: "internal error")
        }
        return cidr
    }
}
