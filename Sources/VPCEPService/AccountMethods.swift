import VPCEPProto
import VPCEPRPC
import VPCEPRegistry

/// The Quotas service.
struct QuotaMethods: Sendable {
    let registry: Registry

    func register(into router: inout RPCRouter) {
        let registry = registry
        router.register(QuotasAPI.listQuotas) { request, context in
            let type = try WireMapping.quotaType(request.type, field: "type")
            let quotas = try await registry.listQuotas(context.registryContext, type: type)
            return ListQuotasResponse(items: quotas.map {
                Quota(type: WireMapping.quotaType($0.type), used: UInt32(clamping: $0.used), quota: UInt32(clamping: $0.limit))
            })
        }
        router.register(QuotasAPI.setQuota) { request, context in
            let quota = try await registry.setQuota(
                context.registryContext, tenantID: request.tenantId,
                type: try WireMapping.quotaType(request.type, field: "type"), limit: Int(request.limit))
            return Quota(type: WireMapping.quotaType(quota.type), used: UInt32(clamping: quota.used),
                         quota: UInt32(clamping: quota.limit))
        }
    }
}

/// The Health service: liveness for probes and "who am I" for people.
struct HealthMethods: Sendable {
    let registry: Registry

    func register(into router: inout RPCRouter) {
        let regions = registry.regions.sorted()
        // Like every call, these name a region the server serves (docs/PROTOCOL.md §4.3); the
        // refusal names the served regions, so a caller that guessed wrong learns them anyway.
        router.register(HealthAPI.check) { _, context in
            try registry.checkScope(context.registryContext)
            return HealthCheckResponse(status: .serving)
        }
        router.register(HealthAPI.whoAmI) { _, context in
            try registry.checkScope(context.registryContext)
            return WhoAmIResponse(kind: context.peer.kind == .operator ? .operator : .tenant, id: context.peer.id,
                                  region: context.region, regions: regions)
        }
    }
}
