/// Per-owner, per-region quotas.
extension Registry {
    /// The caller's usage and limits in the call's region; every type when `type` is nil.
    public func listQuotas(_ ctx: CallContext, type: QuotaType?) async throws(RegistryError) -> [Quota] {
        let scope = try scope(ctx)
        let types = type.map { [$0] } ?? QuotaType.allCases
        return try await read { reader in
            var quotas: [Quota] = []
            for type in types {
                let used: Int
                switch type {
                case .endpointService:
                    used = try await reader.countEndpointServices(ownerID: scope.ownerID, region: scope.region)
                case .endpoint:
                    used = try await reader.countEndpoints(ownerID: scope.ownerID, region: scope.region)
                }
                let limit = try await reader.quotaLimit(ownerID: scope.ownerID, region: scope.region, type: type)
                quotas.append(Quota(type: type, used: used, limit: limit ?? type.defaultLimit))
            }
            return quotas
        }
    }

    /// Sets a tenant's limit of `type` in the call's region. Operators only. A limit below current usage
    /// blocks new creates and leaves existing resources alone.
    public func setQuota(_ ctx: CallContext, tenantID: String, type: QuotaType?, limit: Int) async throws(RegistryError) -> Quota {
        let scope = try scope(ctx)
        guard scope.isOperator else {
            throw RegistryError(code: .permissionDenied, reason: .operatorRequired, message: "only operators set quotas")
        }
        guard Validation.isTenantID(tenantID) else {
            throw .invalid(.tenantIDInvalid, "tenant_id must be 1-64 of A-Z, a-z, 0-9, '_', '-'", field: "tenant_id")
        }
        guard let type else { throw .invalid(.quotaTypeRequired, "type is required", field: "type") }
        guard (0...Validation.maxQuotaLimit).contains(limit) else {
            throw .invalid(.quotaLimitOutOfRange, "limit must be 0-\(Validation.maxQuotaLimit)", field: "limit")
        }
        let region = scope.region
        return try await write(ctx, "setQuota", request: [tenantID, type, limit]) { tx in
            let stored = try await tx.quotaLimit(ownerID: tenantID, region: region, type: type)
            try await tx.setQuotaLimit(ownerID: tenantID, region: region, type: type, limit: limit)
            let used = switch type {
            case .endpointService: try await tx.countEndpointServices(ownerID: tenantID, region: region)
            case .endpoint: try await tx.countEndpoints(ownerID: tenantID, region: region)
            }
            // Setting the limit that is already set changes nothing, so is not a change in the log.
            if stored != limit {
                let setting = QuotaSetting(tenantID: tenantID, region: region, type: type, limit: limit, used: used)
                try await log(tx, ctx, [ChangeEvent(type: .quotaChanged, state: .quota(setting))])
            }
            return Quota(type: type, used: used, limit: limit)
        }
    }
}
