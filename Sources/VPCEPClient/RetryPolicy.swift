import VPCEPContracts

/// When and how often the client repeats a failed call by itself.
///
/// Only calls that are safe to repeat are retried: those proto/ marks with the standard option
/// `idempotency_level = NO_SIDE_EFFECTS` (or `IDEMPOTENT`), which the generator puts into each
/// `MethodDescriptor` (`MethodIdempotency`); writes that carry an idempotency key; and any call
/// the server provably never processed (the connection could not be made, the server's GOAWAY
/// said the call was not accepted, or the server refused it as overloaded:
/// `VPCEPError.wasNeverProcessed`). Only transient failures are retried: `UNAVAILABLE`, and
/// statuses that carry a retry-after hint.
public struct RetryPolicy: Sendable {
    /// Attempts in all, the first included; 1 disables retries.
    public var maxAttempts: Int = 4
    public var initialBackoff: Duration = .milliseconds(50)
    public var maxBackoff: Duration = .seconds(2)
    public var multiplier: Double = 2

    public init() {}

    public static let disabled: RetryPolicy = {
        var policy = RetryPolicy()
        policy.maxAttempts = 1
        return policy
    }()

    /// Whether a call of `method` may be sent again after `error`.
    func shouldRetry(method: some MethodDescribing, hasIdempotencyKey: Bool, error: VPCEPError) -> Bool {
        let transient = error.code == .unavailable || error.retryAfter != nil
        guard transient, !Self.permanent.contains(error.reason) else { return false }
        if error.wasNeverProcessed { return true }
        return hasIdempotencyKey || method.idempotency.isSafeToRetry
    }

    /// UNAVAILABLE failures that another attempt cannot heal: the server's certificate does not
    /// verify against the configured CA or name. Retrying only repeats the handshake until the
    /// deadline, which then hides the reason the caller needs to fix its configuration.
    static let permanent: Set<Reason> = [.serverCertificateInvalid]

    /// The pause before attempt `attempt` (1 = the first retry), with full jitter, never shorter
    /// than the server's retry-after hint.
    func backoff(attempt: Int, hint: Duration?) -> Duration {
        var ceiling = initialBackoff
        for _ in 1..<max(1, attempt) { ceiling = min(maxBackoff, ceiling * multiplier) }
        let jittered = ceiling * Double.random(in: 0.5...1.0)
        return max(jittered, hint ?? .zero)
    }
}
