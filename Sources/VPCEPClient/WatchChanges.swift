import VPCEPRPC

/// One thing a watch tells its caller.
public enum WatchChange: Sendable {
    /// A committed change; `entry.seq` is its position in the change log. Each reaches the caller
    /// once, in commit order, across reconnections.
    case event(HistoryEntry)
    /// The current state of one resource, at a start with a snapshot (`entry.seq` is 0).
    case snapshot(HistoryEntry)
    /// Nothing the caller may see is missing up to this sequence. The first bookmark after
    /// snapshot items ends the snapshot: the items are the state at that sequence.
    case bookmark(UInt64)
    /// The snapshot items received so far are void and a complete new snapshot follows: the
    /// position was compacted away (with `WatchOptions.resyncOnCompaction`), or the stream broke
    /// before the snapshot's bookmark. The error says which.
    case resync(VPCEPError)
}

/// How a watch resumes.
public struct WatchOptions: Sendable {
    /// The region watched; nil uses the client's default region.
    public var region: String?
    /// When the position was compacted (`OUT_OF_RANGE` / `SEQUENCE_COMPACTED`), or is beyond the
    /// log of a server restored from an older copy (`SEQUENCE_BEYOND_HEAD`), start over with a
    /// snapshot, announced by `WatchChange.resync`, instead of failing.
    public var resyncOnCompaction = false
    /// Failed reconnections in a row (no message received in between) after which the watch
    /// fails with the last error; nil retries for as long as the caller iterates.
    public var maxConsecutiveFailures: Int?

    public init(region: String? = nil, resyncOnCompaction: Bool = false, maxConsecutiveFailures: Int? = nil) {
        self.region = region
        self.resyncOnCompaction = resyncOnCompaction
        self.maxConsecutiveFailures = maxConsecutiveFailures
    }
}

/// The changes of a watch, resumed after every resumable end of its stream (docs/PROTOCOL.md §9,
/// "Resuming a watch"). Iteration throws a non-resumable status as a `VPCEPError`; cancelling the
/// iterating task cancels the current call (a CANCEL frame) and ends the iteration with
/// `CANCELLED`. Iterate it once.
public struct WatchChanges: AsyncSequence, Sendable {
    public typealias Element = WatchChange
    public typealias Failure = VPCEPError

    /// Opens one stream for a request.
    typealias Open = @Sendable (WatchRequest) -> ResponseStream<WatchResponse>
    /// The pause before a reconnection: attempt 1 is the first after a failure; the hint is the
    /// server's retry-after.
    typealias Backoff = @Sendable (_ attempt: Int, _ hint: Duration?) -> Duration
    typealias Sleep = @Sendable (Duration) async -> Void

    private let request: WatchRequest
    private let options: WatchOptions
    private let open: Open
    private let backoff: Backoff
    private let sleep: Sleep

    init(
        _ request: WatchRequest, options: WatchOptions, open: @escaping Open, backoff: @escaping Backoff,
        sleep: @escaping Sleep = { try? await Task.sleep(for: $0) }
    ) {
        self.request = request
        self.options = options
        self.open = open
        self.backoff = backoff
        self.sleep = sleep
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(
            cursor: WatchCursor(request, resyncOnCompaction: options.resyncOnCompaction),
            maxConsecutiveFailures: options.maxConsecutiveFailures, open: open, backoff: backoff, sleep: sleep)
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Failure = VPCEPError

        private var cursor: WatchCursor
        private let maxConsecutiveFailures: Int?
        private let open: Open
        private let backoff: Backoff
        private let sleep: Sleep
        private var stream: ResponseStream<WatchResponse>.AsyncIterator?
        /// Failed streams since the last message received.
        private var failures = 0
        /// The backoff still owed before the next stream, after a resync was handed out first.
        private var pause: Duration?
        private var finished = false

        init(cursor: WatchCursor, maxConsecutiveFailures: Int?, open: @escaping Open, backoff: @escaping Backoff,
             sleep: @escaping Sleep) {
            self.cursor = cursor
            self.maxConsecutiveFailures = maxConsecutiveFailures
            self.open = open
            self.backoff = backoff
            self.sleep = sleep
        }

        /// The last sequence delivered (from an event or a bookmark); where a later watch resumes.
        public var position: UInt64? { cursor.position }

        public mutating func next() async throws(VPCEPError) -> WatchChange? {
            try await next(isolation: nil)
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async throws(VPCEPError) -> WatchChange? {
            while !finished {
                if let pause {
                    self.pause = nil
                    await sleep(pause)
                }
                if Task.isCancelled { try fail(Self.cancelled) }
                var current = stream ?? open(cursor.request).makeAsyncIterator()
                let ended: VPCEPError
                do {
                    if let response = try await current.next(isolation: actor) {
                        stream = current
                        failures = 0
                        if let change = cursor.accept(response) { return change }
                        continue
                    }
                    // A watch does not end by itself; a stream that ended OK is resumed like a lost one.
                    ended = VPCEPError(code: .unavailable, reason: .connectionClosed, message: "the watch stream ended")
                } catch {
                    ended = error
                }
                stream = nil
                if Task.isCancelled || ended.code == .cancelled { try fail(ended.code == .cancelled ? ended : Self.cancelled) }
                switch cursor.end(ended) {
                case .fail:
                    try fail(ended)
                case .resync:
                    // A lost position is answered at once; a broken snapshot is a failure like any other.
                    if !WatchCursor.isPositionLost(ended) { pause = try backOff(after: ended) }
                    return .resync(ended)
                case .reconnect:
                    await sleep(try backOff(after: ended))
                }
            }
            return nil
        }

        /// Counts a failed stream and returns the pause before the next, or fails the watch at the limit.
        private mutating func backOff(after error: VPCEPError) throws(VPCEPError) -> Duration {
            failures += 1
            if let maxConsecutiveFailures, failures >= maxConsecutiveFailures { try fail(error) }
            return backoff(failures, error.retryAfter)
        }

        private mutating func fail(_ error: VPCEPError) throws(VPCEPError) -> Never {
            finished = true
            stream = nil
            throw error
        }

        private static let cancelled = VPCEPError(code: .cancelled, reason: .cancelled, message: "the watch was cancelled by the caller")
    }
}
