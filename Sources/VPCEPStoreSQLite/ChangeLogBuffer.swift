internal import SQLiteNIO
import Synchronization
import VPCEPRegistry

/// The change log's writes of the open batch, held in memory and written in one multi-row `INSERT` (and
/// one `UPDATE log_head`) just before the batch commits. Every statement runs on the thread pool and
/// comes back (`StoreConnection`), and those hand-offs were most of a durable create's CPU: two statements per
/// transaction for the log had doubled it (BENCHMARKS.md, 2026-11-30).
///
/// Numbers are given out from `head`, which is the log's head as the open batch sees it. Members run
/// one at a time under the store's write lock, so a member that rolls back gives its numbers back
/// before the next one takes any: the log stays gapless and in commit order. `head` is kept across
/// commits, because the data directory's lock makes this store the database's only writer; after
/// anything but a clean commit it is forgotten and read again.
final class ChangeLogBuffer: Sendable {
    /// What `flushForCommit` must write: the rows in sequence order, and the head after them.
    struct Pending {
        var rows: [[SQLiteData]]
        var head: UInt64
    }

    private struct State {
        /// The log's head with the held events counted; nil when it must be read from the database.
        var head: UInt64?
        /// Numbered events of the batch not yet written, as `change_events` row values.
        var rows: [[SQLiteData]] = []
        /// Every numbered event of the batch, written or not, for `RecentEvents` once it commits.
        var events: [ChangeEvent] = []
        var memberEvents = 0
        /// Where the current member began, to go back to if it rolls back.
        var memberHead: UInt64?
        var memberRows = 0
        /// Earlier members' rows written during the current member (a read of the log inside it): its
        /// rollback undoes their `INSERT` as well, so they are held again.
        var writtenInMember: [[SQLiteData]] = []
        /// `log_head` lags `head` by the held events, and by those written early.
        var headWritten = true
    }

    private let state = Mutex(State())
    /// The events of the last commits, for the change feed (`RegistryStore.recentEvents`).
    let recent = RecentEvents()
    /// The services the batch's events name, members rolled back included (a superset does no harm):
    /// what the registry's read cache drops when the batch commits. Kept apart from `state`, which
    /// `forget` resets.
    private let services = Mutex<Set<String>>([])

    var head: UInt64? { state.withLock { $0.head } }

    /// The head as read from `log_head` at the start of a batch that had forgotten it.
    func learnHead(_ head: UInt64) {
        state.withLock { state in
            guard state.head == nil else { return }
            state.head = head
            if state.memberHead == nil { state.memberHead = head }
        }
    }

    /// Holds `rows` (the row values of `events`), numbered from `head + 1`, whose head was read with
    /// `head` just before.
    func append(_ rows: [[SQLiteData]], events: [ChangeEvent], after head: UInt64) {
        state.withLock { state in
            precondition(state.head == head, "the change log's head moved while a member numbered its events")
            state.rows += rows
            state.events += events
            state.head = head + UInt64(rows.count)
            state.headWritten = false
        }
    }

    func memberBegan() {
        state.withLock { state in
            state.memberHead = state.head
            state.memberRows = state.rows.count
            state.memberEvents = state.events.count
            state.writtenInMember = []
        }
    }

    func memberReleased() {
        state.withLock { $0.writtenInMember = [] }
    }

    /// The member's savepoint was rolled back: its events and numbers are gone.
    func memberRolledBack() {
        state.withLock { state in
            state.rows = state.writtenInMember + state.rows[..<state.memberRows]
            state.memberRows = state.rows.count
            state.events.removeSubrange(state.memberEvents...)
            state.writtenInMember = []
            state.head = state.memberHead
        }
    }

    /// Everything held, to be written now, inside the current member (so that a read of the log sees it).
    func takeForRead() -> [[SQLiteData]] {
        state.withLock { state in
            defer {
                state.writtenInMember += state.rows[..<state.memberRows]
                state.rows = []
                state.memberRows = 0
            }
            return state.rows
        }
    }

    /// What the batch's commit must write first; nil when `log_head` is already current.
    func pendingForCommit() -> Pending? {
        state.withLock { state in
            guard !state.headWritten, let head = state.head else { return nil }
            return Pending(rows: state.rows, head: head)
        }
    }

    func noteServices(_ ids: some Sequence<String>) {
        services.withLock { $0.formUnion(ids) }
    }

    /// The services noted since the last call.
    func takeServices() -> Set<String> {
        services.withLock { services in
            defer { services = [] }
            return services
        }
    }

    /// The batch committed with everything held: its events go to `recent`, before any member's
    /// commit is acknowledged.
    func committed() {
        let events = state.withLock { state in
            defer {
                state.rows = []
                state.memberRows = 0
                state.events = []
                state.memberEvents = 0
                state.writtenInMember = []
                state.headWritten = true
            }
            return state.events
        }
        recent.committed(events)
    }

    /// The batch rolled back, or the writer is in doubt: the head is read again, and `recent` vouches
    /// for nothing until the next commit.
    func forget() {
        state.withLock { $0 = State() }
        recent.forget()
    }
}
