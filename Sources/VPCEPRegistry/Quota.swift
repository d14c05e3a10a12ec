public enum QuotaType: String, Sendable, Hashable, Codable, CaseIterable {
    case endpointService = "endpoint_service"
    case endpoint = "endpoint"

    /// Used when no per-tenant, per-region override is set.
    public var defaultLimit: Int {
        switch self {
        case .endpointService: 20
        case .endpoint: 50
        }
    }
}

public struct Quota: Sendable, Hashable, Codable {
    public var type: QuotaType
    public var used: Int
    public var limit: Int

    public init(type: QuotaType, used: Int, limit: Int) {
        self.type = type
        self.used = used
        self.limit = limit
    }
}
