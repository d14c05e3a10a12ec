/// The position of a resuming watch and the decisions that follow from it, without I/O: which
/// request opens the next stream, which responses reach the caller, and what a stream's end means
/// (docs/PROTOCOL.md §9, "Resuming a watch").
struct WatchCursor: Sendable {
    enum Phase: Sendable, Equatable {
        /// Started "now" and no sequence seen yet: a new stream can only start "now" again.
        case now
        /// Delivered everything up to this sequence; the next stream starts after it.
        case after(UInt64)
        /// A snapshot is under way (its bookmark not yet seen); `items` of it were delivered.
        case snapshot(items: Int)
    }

    /// What to do when a stream ended.
    enum EndAction: Sendable, Equatable {
        /// Open a new stream with `request` after a pause.
        case reconnect
        /// Open a new stream with `request` at once, after telling the caller that what it holds of
        /// an earlier snapshot is void (`WatchChange.resync`).
        case resync
        /// End the watch with the error.
        case fail
    }

    private(set) var phase: Phase
    /// The filters; `start` and `afterSeq` come from `phase`.
    private let filter: WatchRequest
    private let resyncOnCompaction: Bool

    init(_ request: WatchRequest, resyncOnCompaction: Bool) {
        filter = request
        self.resyncOnCompaction = resyncOnCompaction
        switch request.start {
        case .afterSeq: phase = .after(request.afterSeq)
        case .snapshot: phase = .snapshot(items: 0)
        default: phase = .now
        }
    }

    /// The last sequence delivered (from an event or a bookmark), if any.
    var position: UInt64? {
        if case .after(let seq) = phase { return seq }
        return nil
    }

    /// The request that opens the next stream.
    var request: WatchRequest {
        var request = filter
        switch phase {
        case .now:
            request.start = .unspecified
            request.afterSeq = 0
        case .after(let seq):
            request.start = .afterSeq
            request.afterSeq = seq
        case .snapshot:
            request.start = .snapshot
            request.afterSeq = 0
        }
        return request
    }

    /// What the caller sees of `response`; nil for a response it must not see again (an event at
    /// or before the position: a server that resent it) or cannot use (an unknown kind).
    mutating func accept(_ response: WatchResponse) -> WatchChange? {
        switch response.kind {
        case .event:
            guard let entry = response.entry else { return nil }
            if let position, entry.seq <= position { return nil }
            phase = .after(entry.seq)
            return .event(entry)
        case .snapshot:
            guard let entry = response.entry else { return nil }
            if case .snapshot(let items) = phase { phase = .snapshot(items: items + 1) }
            return .snapshot(entry)
        case .bookmark:
            if let position, response.seq < position { return nil }
            phase = .after(response.seq)
            return .bookmark(response.seq)
        default:
            return nil
        }
    }

    /// What to do after the stream ended with `error`, and the position to start from next.
    mutating func end(_ error: VPCEPError) -> EndAction {
        if Self.isPositionLost(error) {
            guard resyncOnCompaction else { return .fail }
            phase = .snapshot(items: 0)
            return .resync
        }
        guard Self.isResumable(error) else { return .fail }
        if case .snapshot(let items) = phase, items > 0 {
            // The bookmark did not arrive, so the items do not describe one moment: start over.
            phase = .snapshot(items: 0)
            return .resync
        }
        return .reconnect
    }

    /// The position cannot be served: compacted away, or beyond the log of a server restored from
    /// an older copy (docs/DOMAIN.md, "Watch"). Only a snapshot recovers.
    static func isPositionLost(_ error: VPCEPError) -> Bool {
        error.code == .outOfRange && (error.reason == .sequenceCompacted || error.reason == .sequenceBeyondHead)
    }

    /// A stream that ended this way may be resumed: the server or the connection went away
    /// (UNAVAILABLE, whatever the reason: shutdown, GOAWAY, a closed connection, a keepalive
    /// timeout, a too-slow watcher), or the server asked to come back later.
    static func isResumable(_ error: VPCEPError) -> Bool {
        error.code == .unavailable || error.retryAfter != nil
    }
}
