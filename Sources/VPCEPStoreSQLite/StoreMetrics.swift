import Metrics

/// Store latency as swift-metrics reports it: how long transactions and reads take, including the
/// wait for the writer lock and the commit.
enum StoreMetrics {
    static let transactionDuration = Timer(label: "vpcep_store_transaction_duration_seconds", preferredDisplayUnit: .seconds)
    static let readDuration = Timer(label: "vpcep_store_read_duration_seconds", preferredDisplayUnit: .seconds)
    static let transactionFailures = Counter(label: "vpcep_store_transaction_failures_total")

    /// Times `body`, recording into `timer`.
    static func measure<T>(_ timer: Timer, _ body: () async throws -> T) async rethrows -> T {
        let start = ContinuousClock.now
        defer {
            let elapsed = ContinuousClock.now - start
            timer.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        return try await body()
    }
}
