import NIOCore

/// Runs a task's jobs on one event loop. The head reader's rounds run on the loop of its connection, so
/// that postgres-nio's answer resumes them on the thread it arrives on, with no hand-off to the global
/// executor and back (two thread wake-ups a round otherwise).
final class EventLoopExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
