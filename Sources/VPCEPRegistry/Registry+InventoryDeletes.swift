/// Deleting network inventory: refused while anything still uses it.
extension Registry {
    public func deleteVPC(_ ctx: CallContext, id: String) async throws(RegistryError) {
        let scope = try scope(ctx)
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        try await write(ctx, "deleteVPC", request: [id]) { tx in
            guard let vpc = try await tx.vpc(id: id, visibleTo: scope.reading), scope.canRead(region: vpc.region, ownerID: vpc.ownerID) else {
                throw RegistryError.notFound(.vpcNotFound, "no such VPC", field: "id")
            }
            try Self.requireOwner(scope, ownerID: vpc.ownerID)
            try Self.refuseInUse(try await tx.usage(vpcID: id), what: "VPC")
            try await tx.deleteVPC(id: id)
            try await log(tx, ctx, [ChangeEvent(type: .deleted, state: .vpc(vpc))])
        }
    }

    public func deleteSubnet(_ ctx: CallContext, id: String) async throws(RegistryError) {
        let scope = try scope(ctx)
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        try await write(ctx, "deleteSubnet", request: [id]) { tx in
            guard let subnet = try await tx.subnet(id: id, visibleTo: scope.reading), scope.canRead(region: subnet.region, ownerID: subnet.ownerID)
            else {
                throw RegistryError.notFound(.subnetNotFound, "no such subnet", field: "id")
            }
            try Self.requireOwner(scope, ownerID: subnet.ownerID)
            try Self.refuseInUse(try await tx.usage(subnetID: id), what: "subnet")
            try await tx.deleteSubnet(id: id)
            try await log(tx, ctx, [ChangeEvent(type: .deleted, state: .subnet(subnet))])
        }
    }

    /// Deletes a load balancer or a VM (`kind` must match) and frees its address.
    public func deleteBackend(_ ctx: CallContext, kind: BackendKind, id: String) async throws(RegistryError) {
        let scope = try scope(ctx)
        guard !id.isEmpty else { throw .invalid(.idRequired, "id is required", field: "id") }
        try await write(ctx, "deleteBackend", request: [kind, id]) { tx in
            guard let backend = try await tx.backend(id: id, visibleTo: scope.reading), backend.kind == kind,
                scope.canRead(region: backend.region, ownerID: backend.ownerID)
            else {
                throw RegistryError.notFound(
                    .backendNotFound, "no such \(kind == .vm ? "VM" : "load balancer")", field: "id")
            }
            try Self.requireOwner(scope, ownerID: backend.ownerID)
            try Self.refuseInUse(try await tx.usage(backendID: id), what: kind == .vm ? "VM" : "load balancer")
            try await tx.deleteBackend(id: id)
            try await log(tx, ctx, [ChangeEvent(type: .deleted, state: .backend(backend))])
        }
    }

    private static func refuseInUse(_ usage: InventoryUsage, what: String) throws(RegistryError) {
        guard !usage.isEmpty else { return }
        let parts = [
            (usage.subnets, "subnet(s)"), (usage.backends, "load balancer(s) or VM(s)"),
            (usage.services, "endpoint service(s)"), (usage.endpoints, "endpoint(s)"),
        ].filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }
        throw RegistryError.precondition(
            .resourceInUse, "the \(what) is still used by \(parts.joined(separator: ", "))", field: "id")
    }
}
