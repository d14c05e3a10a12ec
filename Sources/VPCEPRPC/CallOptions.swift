/// Per-call settings of a client call.
public struct CallOptions: Sendable {
    /// How long the caller waits; sent to the server, which stops working on the call then.
    /// nil uses the client's default.
    public var timeout: Duration?
    /// The region of the call; nil uses the client's default region.
    public var region: String?
    /// Makes a retried mutation safe to retry.
    public var idempotencyKey: String?
    /// Echoed in the server's logs and the final status; generated when nil.
    public var requestID: String?

    public init(timeout: Duration? = nil, region: String? = nil, idempotencyKey: String? = nil, requestID: String? = nil) {
        self.timeout = timeout
        self.region = region
        self.idempotencyKey = idempotencyKey
        self.requestID = requestID
    }
}
