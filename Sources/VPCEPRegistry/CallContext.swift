/// Who is calling, as proven by the verified client certificate (never by a request field).
public enum Caller: Sendable, Hashable {
    /// `vpcep://tenant/<tenant-id>`.
    case tenant(String)
    /// `vpcep://operator/<name>`: O&M, may read across tenants and create gateway services.
    case `operator`(String)

    /// The key resources are owned by: the tenant id, or `operator:<name>`.
    public var ownerID: String {
        switch self {
        case .tenant(let id): id
        case .operator(let name): "operator:\(name)"
        }
    }

    public var isOperator: Bool {
        if case .operator = self { return true }
        return false
    }
}

/// What every registry call carries besides its request: the caller, the region named by the call, the
/// call's request id and, for mutations, the caller's idempotency key.
public struct CallContext: Sendable {
    public var caller: Caller
    public var region: String
    /// Empty: none given. Otherwise a mutation returns the first outcome of the same request made with this key
    /// by the same caller in the same region (see `Registry.write(_:_:request:_:)`). Reads ignore it.
    public var idempotencyKey: String
    /// When the caller stops waiting; nil for none. A mutation whose transaction would begin after it
    /// is not made (see `Registry.write(_:_:request:_:)`).
    public var deadline: ContinuousClock.Instant?
    /// The call's request id (chosen by the caller or made by the server); recorded with the events a
    /// mutation writes to the change log (docs/DOMAIN.md, "Change log"). Empty: none known.
    public var requestID: String

    public init(
        caller: Caller, region: String, idempotencyKey: String = "", deadline: ContinuousClock.Instant? = nil,
        requestID: String = ""
    ) {
        self.caller = caller
        self.region = region
        self.idempotencyKey = idempotencyKey
        self.deadline = deadline
        self.requestID = requestID
    }
}

/// The resolved view of a call: which region it is for, who owns what it creates, and what it may read.
struct Scope: Sendable {
    let region: String
    let ownerID: String
    let isOperator: Bool

    /// Owner filter for lists: operators list every owner in the region.
    var listOwner: String? { isOperator ? nil : ownerID }

    /// Reads: the resource is in this region and is the caller's, or the caller is an operator (`reading`).
    func canRead(region: String, ownerID: String) -> Bool {
        reading.admits(region: region, ownerID: ownerID)
    }

    /// Building on a resource (a subnet in a VPC, a service on a backend) needs it to be the caller's own
    /// (`owning`).
    func owns(region: String, ownerID: String) -> Bool {
        owning.admits(region: region, ownerID: ownerID)
    }
}
