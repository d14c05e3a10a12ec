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
                    used = 0  // endpoints do not exist yet
                }
                let limit = try await reader.quotaLimit(ownerID: scope.ownerID, region: scope.region, type: type)
                quotas.append(Quota(type: type, used: used, limit: limit ?? type.defaultLimit))
            }
            return quotas
        }
    }
}
