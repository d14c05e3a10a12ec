internal import NIOPosix

/// Runs a store transaction's own code on the thread pool that runs its statements, so that each
/// statement runs on the thread the transaction is already on instead of being handed to the pool
/// and back.
///
/// A write used to be some twenty hand-offs (each statement, each savepoint and release, the commit),
/// and on two busy cores each one waits for the scheduler: under issue 14's mixed load a write spent
/// most of its 70 ms queued for a CPU between its statements. With the store's `read` and `transaction`
/// running under this executor's preference, a transaction costs a hand-off onto the pool and one back.
///
/// A statement may run inline only on a thread of the pool (it blocks, and only the pool's threads
/// are meant for that); `isCurrentThread` says whether the calling code runs on one. Swift tasks run
/// on the pool's threads only through this executor, so a thread it has run a job on is one of them.
final class StoreExecutor: TaskExecutor {
    static let shared = StoreExecutor()

    /// The threads the store's statements block: one each for what can run at once, the writer's task,
    /// a read and a background checkpoint (each serialized on its own connection), whatever the
    /// number of cores. NIO's shared pool has one thread per core: on two cores a checkpoint (a few
    /// milliseconds of page copies) held up every read queued behind it while the writer held the
    /// other thread, and lists waited twice as long under writes (BENCHMARKS.md, "One task runs a
    /// batch's writes"). Never shut down, like NIO's.
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 3)
        pool.start()
        return pool
    }()

    private static let marker = ThreadSpecificVariable<PoolThread>()

    /// Whether the calling code runs on one of the pool's threads, where a statement may block.
    static var isCurrentThread: Bool { marker.currentValue != nil }

    private init() {}

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        Self.pool.submit { _ in
            // The pool is never shut down, so every job runs.
            if Self.marker.currentValue == nil { Self.marker.currentValue = PoolThread() }
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }

    /// `body` with its code on the pool; the caller's own executor resumes afterwards.
    static func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await withTaskExecutorPreference(shared) { try await body() }
    }
}

private final class PoolThread: Sendable {}
