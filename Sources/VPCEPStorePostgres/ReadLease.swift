/// Whether this replica may answer reads from its cache now, by its own monotonic clock.
///
/// A grant asked at instant `t` is trusted until `t + trusted`, which ends before the grant's expiry
/// in PostgreSQL (`term` after PostgreSQL ran the statement, itself after `t`) by the margin between the
/// two durations. A renewal keeps the lease trusted only when it was answered while the lease still
/// was; otherwise writers may have stopped waiting for this replica meanwhile, and the lease is
/// trusted again only once the replica has caught up with the log (`caughtUp(askedAt:)`).
struct ReadLease: Sendable {
    let trusted: Duration
    private(set) var trustedUntil: ContinuousClock.Instant?

    init(trusted: Duration) {
        self.trusted = trusted
    }

    func serves(at now: ContinuousClock.Instant) -> Bool {
        trustedUntil.map { now < $0 } ?? false
    }

    /// A renewal asked at `askedAt` succeeded, answered at `answeredAt`. True when the lease was trusted
    /// throughout and now lasts longer; false when it had lapsed (then it stays untrusted until the
    /// replica has caught up).
    mutating func renewed(askedAt: ContinuousClock.Instant, answeredAt: ContinuousClock.Instant) -> Bool {
        guard let until = trustedUntil, answeredAt < until else {
            trustedUntil = nil
            return false
        }
        trustedUntil = max(until, askedAt + trusted)
        return true
    }

    /// The replica read the log after a grant asked at `askedAt` was made (a registration, or a renewal
    /// that came too late): trusted for the rest of that grant.
    mutating func caughtUp(askedAt: ContinuousClock.Instant) {
        trustedUntil = askedAt + trusted
    }

    /// Not trusted until the next grant and catch-up: the grant is gone, or this replica may have
    /// missed a change.
    mutating func lapse() {
        trustedUntil = nil
    }
}
