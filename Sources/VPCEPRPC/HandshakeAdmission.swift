import NIOCore

/// Which connections that have not finished their TLS handshake the server keeps
/// (docs/PROTOCOL.md §8.1), so that connections which send nothing cannot take the slots of
/// clients that do.
///
/// A connection still in its handshake costs its peer one TCP connect and the server a slot, so
/// a flood of them is cheap to send. Limits: so many pending overall, and so many per source
/// address. A new connection is never refused for being one too many: the oldest pending one
/// (of its address when that address is at its limit, else overall) is closed instead. A client
/// that completes its handshake needs a few milliseconds, so it is never the oldest for long; a
/// connection that sends nothing is. Under pressure (half of either limit taken) a new connection
/// gets the short timeout, and pending ones older than it are closed.
///
/// A value type without clocks or channels: the server keeps one under a lock and passes in the
/// time; tests pass in any time they like.
struct HandshakeAdmission<ID: Hashable> {
    struct Limits: Sendable {
        var maxPending: Int
        var maxPendingPerAddress: Int
        var timeout: TimeAmount
        var timeoutUnderPressure: TimeAmount
    }

    struct Decision: Equatable {
        /// The handshake timeout of the admitted connection.
        var timeout: TimeAmount
        /// Pending connections to close now, oldest first.
        var evict: [ID]
    }

    private struct Entry {
        var address: String
        var since: NIODeadline
        var sequence: UInt64
    }

    let limits: Limits
    private var pending: [ID: Entry] = [:]
    private var countByAddress: [String: Int] = [:]
    private var nextSequence: UInt64 = 0

    init(limits: Limits) {
        self.limits = limits
    }

    var pendingCount: Int { pending.count }

    func pendingCount(from address: String) -> Int { countByAddress[address] ?? 0 }

    /// A new connection from `address` at `now`. It counts as pending until `completed` or
    /// `closed`, and so do the evicted ones until the caller reports them closed.
    mutating func admit(_ id: ID, address: String, now: NIODeadline) -> Decision {
        var evict: [ID] = []
        let underPressure = pending.count >= limits.maxPending / 2
            || pendingCount(from: address) >= limits.maxPendingPerAddress / 2
        if underPressure {
            let stale = pending.filter { now - $0.value.since >= limits.timeoutUnderPressure }
            for (staleID, entry) in stale.sorted(by: { $0.value.sequence < $1.value.sequence }) {
                forget(staleID, entry)
                evict.append(staleID)
            }
        }
        if pendingCount(from: address) >= limits.maxPendingPerAddress,
           let oldest = oldest(where: { $0.address == address }) {
            forget(oldest.id, oldest.entry)
            evict.append(oldest.id)
        }
        if pending.count >= limits.maxPending, let oldest = oldest(where: { _ in true }) {
            forget(oldest.id, oldest.entry)
            evict.append(oldest.id)
        }
        pending[id] = Entry(address: address, since: now, sequence: nextSequence)
        nextSequence += 1
        countByAddress[address, default: 0] += 1
        return Decision(timeout: underPressure ? limits.timeoutUnderPressure : limits.timeout, evict: evict)
    }

    /// The connection finished its handshake (or closed): it no longer counts.
    mutating func remove(_ id: ID) {
        guard let entry = pending[id] else { return }
        forget(id, entry)
    }

    private func oldest(where matches: (Entry) -> Bool) -> (id: ID, entry: Entry)? {
        var found: (id: ID, entry: Entry)?
        for (id, entry) in pending where matches(entry) {
            if found.map({ entry.sequence < $0.entry.sequence }) ?? true { found = (id, entry) }
        }
        return found
    }

    private mutating func forget(_ id: ID, _ entry: Entry) {
        pending[id] = nil
        let left = (countByAddress[entry.address] ?? 1) - 1
        countByAddress[entry.address] = left > 0 ? left : nil
    }
}
