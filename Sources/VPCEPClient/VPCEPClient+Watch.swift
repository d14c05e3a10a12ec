import VPCEPRPC

extension VPCEPClient {
    /// Follows the change log: the changes `request` selects (filters; `start` and `afterSeq` say
    /// where to begin), as an `AsyncSequence` that resumes by itself. After a resumable end of its
    /// stream (UNAVAILABLE of any reason: the server shutting down or too slow a consumer, a lost
    /// connection, GOAWAY, a keepalive timeout) it reconnects with the retry policy's backoff and
    /// asks for the changes after the last sequence it delivered, so each event reaches the caller
    /// once and in order. A watch has no deadline: `defaultTimeout` does not apply; cancel the
    /// iterating task to end it.
    ///
    ///     for try await change in client.watchChanges(WatchRequest(serviceId: id, start: .snapshot)) {
    ///         if case .event(let entry) = change { print(entry.seq, entry.type, entry.resourceId) }
    ///     }
    ///
    /// The generated `watch(_:options:)` is the single stream, without resuming.
    public func watchChanges(_ request: WatchRequest, options: WatchOptions = WatchOptions()) -> WatchChanges {
        let region = options.region ?? configuration.region
        let policy = configuration.retryPolicy
        return WatchChanges(
            request, options: options,
            open: { request in
                // No timeout: a stream's deadline would bound the whole watch (docs/PROTOCOL.md §4.5).
                let metadata = CallMetadata(region: region, timeout: nil)
                return ResponseStream { () async throws(VPCEPError) in
                    // With several servers, a connection that failed or said GOAWAY sends the next
                    // attempt to another one (VPCEPClient+Failover.swift).
                    try await self.currentConnection(before: nil, requestID: metadata.requestID)
                        .connection.startServerStreaming(HistoryAPI.watch, request, metadata: metadata)
                }
            },
            backoff: { policy.backoff(attempt: $0, hint: $1) }
        )
    }
}
