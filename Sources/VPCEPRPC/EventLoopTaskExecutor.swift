import NIOCore

/// Runs a call's task on the event loop of its connection. A handler that does not suspend (a
/// read answered from memory) then decodes, runs and answers on the thread that read the request,
/// with no hand-off to the global executor and back; one that does suspend (on the store) resumes
/// here too. Handlers must not block (they never do: store work runs on its own threads).
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
