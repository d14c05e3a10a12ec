import Logging
import PostgresNIO
import Synchronization
import VPCEPRegistry

/// The connection, outside the pool, on which the store reads the change log's head, and which
/// services the events since the last round name, for the read cache. Heads are read in rounds, one at a time (`CoalescedQuery`), so one connection serves them all,
/// without a pool lease (and its wait's timer task) per round. A connection that failed is dropped and
/// the next round makes a new one.
final class HeadReader: Sendable {
    private let configuration: PostgresRegistryStore.Configuration
    private let logger: Logger
    private let current = Mutex<GuardedConnection?>(nil)
    private let isClosed = Atomic<Bool>(false)
    /// The loop every connection of this reader runs on, and an executor on it for the rounds, so that a
    /// round and its statement's answer stay on one thread.
    let executor: EventLoopExecutor

    init(configuration: PostgresRegistryStore.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        executor = EventLoopExecutor(PostgresConnection.defaultEventLoopGroup.next())
    }

    /// What one round learns: the log's head now, and the services its events after the previous
    /// round's head name (nil when the log cannot say: compacted past it, or too many to list).
    struct Round: Sendable {
        var head: UInt64
        var services: Set<String>?
    }

    /// How many services one round lists at most; beyond that the cache is dropped as a whole.
    static let maxServicesPerRound = 4096
    /// How many events one round looks through at most (after a long quiet spell of this server's
    /// reads, say); beyond that the cache is dropped as a whole rather than the log scanned.
    static let maxEventsPerRound: Int64 = 65_536

    /// `log_head.seq` now and, when `previous` is given, the services named by events after it, in one
    /// statement (one snapshot). Rounds must not overlap (the caller's `CoalescedQuery` runs one at a time).
    func read(after previous: UInt64?) async throws -> Round {
        let connection = try await usableConnection()
        do {
            // Without a previous head the lateral part finds nothing (no sequence is above Int64.max).
            let after = previous.map { Int64(clamping: $0) } ?? Int64.max
            let rows = try await connection.execute(HeadQuery(after: after), logger: logger)
            var head: UInt64?
            var compacted: UInt64 = 0
            var services = Set<String>()
            for row in rows {
                if head == nil {
                    head = UInt64(max(row.head, 0))
                    compacted = UInt64(max(row.compacted, 0))
                }
                if let id = row.serviceID { services.insert(id) }
            }
            guard let head else {
                throw StoreError(code: .internalError, message: "the change log has no head row")
            }
            guard let previous, compacted <= previous, services.count <= Self.maxServicesPerRound,
                head <= previous || Int64(clamping: head - previous) <= Self.maxEventsPerRound
            else {
                return Round(head: head, services: nil)
            }
            return Round(head: head, services: services)
        } catch {
            await drop(connection)
            throw error
        }
    }

    func close() async {
        isClosed.store(true, ordering: .sequentiallyConsistent)
        if let connection = current.withLock({ $0 }) { await drop(connection) }
    }

    private func usableConnection() async throws -> GuardedConnection {
        if let connection = current.withLock({ $0 }) {
            guard connection.connection.isClosed else { return connection }
            await drop(connection)
        }
        guard !isClosed.load(ordering: .sequentiallyConsistent) else { throw StoreError.closed }
        let made = try await PostgresConnection.connect(
            on: executor.eventLoop, configuration: try configuration.connection(), id: 0, logger: logger)
        let connection = GuardedConnection(made, executor: executor)
        current.withLock { $0 = connection }
        // Closed while connecting: this connection is the last, and nobody else will close it.
        if isClosed.load(ordering: .sequentiallyConsistent) {
            await drop(connection)
            throw StoreError.closed
        }
        return connection
    }

    private func drop(_ connection: GuardedConnection) async {
        current.withLock { if $0 === connection { $0 = nil } }
        connection.end()
        try? await connection.connection.close()
    }
}

/// The head query, prepared once per connection (postgres-nio names it and prepares it on first use):
/// PostgreSQL parses and plans it once instead of every round, and each round sends only Bind and
/// Execute. `$1` is the previous round's head; without one (`Int64.max`) the lateral part finds nothing.
struct HeadQuery: PostgresPreparedStatement {
    static let name = "vpcep_head_round"
    static let sql = """
        SELECT h.seq AS head, c.seq AS compacted, d.service_id AS service_id
        FROM log_head h CROSS JOIN log_compaction c
        LEFT JOIN LATERAL (
            SELECT DISTINCT e.service_id FROM change_events e
            WHERE e.seq > $1 AND e.seq <= h.seq AND h.seq - $1 <= \(HeadReader.maxEventsPerRound)
                AND e.service_id IS NOT NULL
            LIMIT \(HeadReader.maxServicesPerRound + 1)
        ) d ON TRUE
        WHERE h.id = 1 AND c.id = 1
        """
    static let bindingDataTypes: [PostgresDataType] = [.int8]

    struct Row: Sendable {
        var head: Int64
        var compacted: Int64
        var serviceID: String?
    }

    var after: Int64

    func makeBindings() -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 1)
        bindings.append(after)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let (head, compacted, serviceID) = try row.decode((Int64, Int64, String?).self)
        return Row(head: head, compacted: compacted, serviceID: serviceID)
    }
}
