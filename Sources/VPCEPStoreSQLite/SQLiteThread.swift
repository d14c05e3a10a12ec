import Logging
internal import NIOCore
internal import NIOPosix
internal import SQLiteNIO

/// One thread of its own for one SQLite connection: sqlite-nio runs the connection's statements on
/// it, and code that prefers it as its task executor (`withTaskExecutorPreference`) runs there too.
///
/// sqlite-nio runs each statement as a job of a thread pool and resumes the caller on its executor:
/// with the shared pool and the global executor, every statement of a read or a write was two thread
/// hand-offs, each waiting its turn behind the server's other work (the mixed scenario's profile:
/// futex waits and `pthread_cond_signal`, no SQL hot spot). Here a transaction's statements and the
/// code between them run one after the other on this thread, hand-offs become queue pushes, and the
/// writer never waits behind a read's job, nor one reader behind another's.
final class SQLiteThread: TaskExecutor {
    let pool: NIOThreadPool

    init() {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool._start(threadNamePrefix: "vpcep-sqlite")
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        pool.submit { state in
            guard case .active = state else {
                // Shut down (the store is closed): whatever still runs goes on elsewhere rather than nowhere.
                globalConcurrentExecutor.enqueue(ExecutorJob(job))
                return
            }
            job.runSynchronously(on: executor)
        }
    }

    /// Opens a connection whose statements run on this thread.
    func open(path: String, logger: Logger) async throws -> SQLiteConnection {
        try await SQLiteConnection.open(
            storage: .file(path: path), threadPool: pool, logger: logger, on: MultiThreadedEventLoopGroup.singleton.any())
    }

    /// Ends the thread once its queued work is done; for a closed store.
    func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    /// Ends the thread without waiting (a store dropped without `close`).
    func shutdownSoon() {
        pool.shutdownGracefully { _ in }
    }
}

extension SQLiteConnection {
    /// Runs one statement that must run even when the calling task is cancelled (sqlite-nio's async
    /// `query` skips queued work once its task is cancelled): for statements that open or end a
    /// transaction, so that a cancelled call never leaves one open. It runs in a task of its own on
    /// `thread`, the connection's, which a caller already there reaches without a hand-off.
    func executeAlways(_ sql: String, _ binds: [SQLiteData] = [], on thread: SQLiteThread) async throws {
        try await Task(executorPreference: thread) { try await self.query(sql, binds) { _ in } }.value
    }
}
