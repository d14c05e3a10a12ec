import Synchronization

/// The plain `INSERT`s of a write batch that are not sent yet.
///
/// A row a body inserts is not needed by PostgreSQL until something reads after it, so in a batch that
/// defers (`PostgresRegistryStore.runDeferring`) it waits here, and every statement that is not such
/// an insert sends all waiting rows first, in one statement; the rest go with the batch's `log_head`
/// update just before its commit. Most creates then cost the batch no statement of their own, where
/// each cost a round trip per insert and one for its savepoint. Only plain inserts are held (no
/// `ON CONFLICT`, no `RETURNING`): one statement of them has the effect of the same inserts one after
/// another, or fails, and a failure makes the batch run again with a savepoint per member.
///
/// Every insert has a number in the batch (`total` counts them, sent or not), so a member that fails
/// before anything of its own was sent takes its rows back (`drop(from:)`) and the batch goes on.
final class DeferredInserts: Sendable {
    /// Rows for one table's columns, `binds.count / width` of them.
    struct Insert: Sendable, Equatable {
        let table: String
        let columns: String
        let width: Int
        var binds: [PGBind]
    }

    /// Binds held before they are sent, well under PostgreSQL's 65,535 per statement even with the
    /// largest single insert (a member's events, at most 500 rows of 17) on top.
    static let maxBinds = 30_000

    private struct State {
        var waiting: [Insert] = []
        /// The number of `waiting[0]`.
        var first = 0
        var binds = 0
    }

    private let state = Mutex(State())

    /// How many inserts were ever added: the number the next one gets.
    var total: Int { state.withLock { $0.first + $0.waiting.count } }

    var isEmpty: Bool { state.withLock { $0.waiting.isEmpty } }

    /// Holds an insert; true when enough binds wait that they must be sent now.
    func add(_ insert: Insert) -> Bool {
        state.withLock { state in
            state.waiting.append(insert)
            state.binds += insert.binds.count
            return state.binds > Self.maxBinds
        }
    }

    /// Everything waiting, to be sent, and the numbers it spans.
    func take() -> (inserts: [Insert], numbers: Range<Int>) {
        state.withLock { state in
            let taken = state.waiting
            let numbers = state.first..<(state.first + taken.count)
            state.first += taken.count
            state.waiting = []
            state.binds = 0
            return (taken, numbers)
        }
    }

    /// Forgets the inserts numbered `mark` and after; none of them may have been taken.
    func drop(from mark: Int) {
        state.withLock { state in
            precondition(mark >= state.first, "deferred inserts taken back after they were sent")
            let dropped = state.waiting[(mark - state.first)...]
            state.binds -= dropped.reduce(0) { $0 + $1.binds.count }
            state.waiting.removeLast(dropped.count)
        }
    }

    /// One statement for `inserts` (a table's rows in one multi-row `INSERT`, tables in the order they
    /// first appear, several as data-modifying `WITH` parts) and, when `head` is given, the head's
    /// update, with `returning` as its `RETURNING` list; nil when there is nothing to send. `?`
    /// placeholders, binds in their order.
    static func statement(_ inserts: [Insert], head: Int64? = nil, returning: (sql: String, binds: [PGBind])? = nil)
        -> (sql: String, binds: [PGBind])?
    {
        var groups: [Insert] = []
        var index: [String: Int] = [:]
        for insert in inserts {
            let key = insert.table + " (" + insert.columns + ")"
            if let at = index[key] {
                groups[at].binds += insert.binds
            } else {
                index[key] = groups.count
                groups.append(insert)
            }
        }
        var parts: [String] = []
        var binds: [PGBind] = []
        for group in groups {
            let row = "(" + PostgresAccess.placeholders(group.width) + ")"
            let rows = Array(repeating: row, count: group.binds.count / group.width).joined(separator: ", ")
            parts.append("INSERT INTO \(group.table) (\(group.columns)) VALUES \(rows)")
            binds += group.binds
        }
        if let head {
            parts.append("UPDATE log_head SET seq = ? WHERE id = 1" + (returning.map { " RETURNING " + $0.sql } ?? ""))
            binds.append(.integer(head))
            binds += returning?.binds ?? []
        }
        guard let last = parts.last else { return nil }
        // Parts of a WITH run to completion whether or not anything reads them; they see one snapshot,
        // which is why only plain inserts (which read nothing) are held back.
        let with = parts.dropLast().enumerated().map { "w\($0.offset) AS (\($0.element))" }
        return (with.isEmpty ? last : "WITH " + with.joined(separator: ", ") + " " + last, binds)
    }
}
