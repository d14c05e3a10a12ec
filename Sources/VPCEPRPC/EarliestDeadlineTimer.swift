import NIOCore

/// One timer for all the deadlines of a connection's calls, armed at the earliest. Calls on one
/// connection mostly carry the same timeout, so a new call's deadline is rarely earlier than the
/// one armed: the timer moves only then, instead of a timer being scheduled and cancelled per call.
/// Owned by a connection handler and used on its event loop only.
struct EarliestDeadlineTimer {
    private var scheduled: Scheduled<Void>?
    private var armedAt: NIODeadline?

    /// Arms the timer at `deadline` unless it is armed at that time or earlier already.
    /// `makeHandler` is asked for the firing handler only when the timer moves.
    mutating func arm(at deadline: NIODeadline, on eventLoop: any EventLoop,
                      _ makeHandler: () -> @Sendable () -> Void) {
        if let armedAt, armedAt <= deadline { return }
        scheduled?.cancel()
        armedAt = deadline
        scheduled = eventLoop.scheduleTask(deadline: deadline, makeHandler())
    }

    /// The owner calls this first thing when the timer fires (and then re-arms it at `due`'s `next`).
    mutating func fired() {
        scheduled = nil
        armedAt = nil
    }

    mutating func cancel() {
        scheduled?.cancel()
        fired()
    }

    /// Of `calls` (an id and an optional deadline each), those due at `now`, and the earliest
    /// deadline of the others.
    static func due<ID>(_ calls: some Sequence<(ID, NIODeadline?)>, now: NIODeadline) -> (due: [ID], next: NIODeadline?) {
        var due: [ID] = []
        var next: NIODeadline?
        for case let (id, deadline?) in calls {
            if deadline <= now {
                due.append(id)
            } else if next.map({ deadline < $0 }) ?? true {
                next = deadline
            }
        }
        return (due, next)
    }
}

/// A connection handler whose calls may carry deadlines, timed by one `EarliestDeadlineTimer`.
/// Everything here runs on the handler's event loop.
protocol CallDeadlineOwner: AnyObject {
    var deadlineTimer: EarliestDeadlineTimer { get set }
    /// The calls due at `now`, and the earliest deadline of the others.
    func callsDue(at now: NIODeadline) -> (due: [UInt32], next: NIODeadline?)
    /// Ends a call whose deadline has passed.
    func expire(_ callID: UInt32, context: ChannelHandlerContext)
}

extension CallDeadlineOwner {
    func armDeadlineTimer(at deadline: NIODeadline, context: ChannelHandlerContext) {
        deadlineTimer.arm(at: deadline, on: context.eventLoop) {
            // As an existential: a closure that names `Self` would capture its metatype.
            let owner: any CallDeadlineOwner = self
            let bound = NIOLoopBound((owner, context), eventLoop: context.eventLoop)
            return {
                let (owner, context) = bound.value
                owner.deadlineTimerFired(context: context)
            }
        }
    }

    private func deadlineTimerFired(context: ChannelHandlerContext) {
        deadlineTimer.fired()
        let (due, next) = callsDue(at: context.eventLoop.now)
        for callID in due { expire(callID, context: context) }
        if let next, context.channel.isActive { armDeadlineTimer(at: next, context: context) }
    }
}
