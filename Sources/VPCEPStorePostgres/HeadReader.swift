import Logging
import PostgresNIO
import Synchronization
import VPCEPRegistry

/// The connection, outside the pool, on which the store reads the change log's head for the read
/// cache. Heads are read in rounds, one at a time (`CoalescedQuery`), so one connection serves them all,
/// without a pool lease (and its wait's timer task) per round. A connection that failed is dropped and
/// the next round makes a new one.
final class HeadReader: Sendable {
    private let configuration: PostgresRegistryStore.Configuration
    private let logger: Logger
    private let current = Mutex<GuardedConnection?>(nil)
    private let isClosed = Atomic<Bool>(false)

    init(configuration: PostgresRegistryStore.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// `log_head.seq` now. Rounds must not overlap (the caller's `CoalescedQuery` runs one at a time).
    func read() async throws -> UInt64 {
        let connection = try await usableConnection()
        do {
            let rows = try await connection.query("SELECT seq FROM log_head WHERE id = 1", logger: logger)
            guard let row = rows.first else {
                throw StoreError(code: .internalError, message: "the change log has no head row")
            }
            return UInt64(try PGRow(row.makeRandomAccess()).int("seq"))
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
        let made = try await PostgresConnection.connect(configuration: try configuration.connection(), id: 0, logger: logger)
        let connection = GuardedConnection(made)
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
