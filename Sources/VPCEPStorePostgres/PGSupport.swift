import Foundation
import PostgresNIO
import VPCEPRegistry

/// A statement parameter. Statements are written with `?` placeholders, numbered `$1`, `$2`, … when
/// they are sent, so that the SQL reads like the SQLite store's (no statement uses a literal `?`).
enum PGBind: Sendable, Equatable {
    case text(String)
    case integer(Int64)
    case null

    /// Milliseconds since 1970, as the SQLite store keeps them.
    static func date(_ date: Date) -> PGBind {
        .integer(Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    static func json(_ value: some Encodable) throws -> PGBind {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return .text(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    static func query(_ sql: String, _ binds: [PGBind]) throws -> PostgresQuery {
        // By UTF-8 byte, not by Character: `?` is one byte in UTF-8 and never part of another
        // character's; a batch's statement can be long (this function was 4% of the server's CPU in creates).
        var numbered: [UInt8] = []
        numbered.reserveCapacity(sql.utf8.count + binds.count * 4)
        var next = 1
        for byte in sql.utf8 {
            if byte == UInt8(ascii: "?") {
                numbered.append(UInt8(ascii: "$"))
                numbered.append(contentsOf: String(next).utf8)
                next += 1
            } else {
                numbered.append(byte)
            }
        }
        guard next - 1 == binds.count else {
            throw StoreError(code: .internalError, message: "a statement has \(next - 1) placeholders and \(binds.count) values")
        }
        var bindings = PostgresBindings(capacity: binds.count)
        for bind in binds {
            switch bind {
            case .text(let value): bindings.append(value)
            case .integer(let value): bindings.append(value)
            case .null: bindings.appendNull()
            }
        }
        return PostgresQuery(unsafeSQL: String(decoding: numbered, as: UTF8.self), binds: bindings)
    }
}

/// One result row, read by column name like the SQLite store's rows.
struct PGRow: Sendable {
    private let row: PostgresRandomAccessRow

    init(_ row: PostgresRandomAccessRow) {
        self.row = row
    }

    /// The value as text, integer (booleans as 0/1) or null; `nil` when there is no such column.
    func column(_ name: String) -> PGBind? {
        guard row.contains(name) else { return nil }
        let cell = row[name]
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8:
            return (try? cell.decode(Int64.self)).map { .integer($0) }
        case .bool:
            return (try? cell.decode(Bool.self)).map { .integer($0 ? 1 : 0) }
        default:
            return (try? cell.decode(String.self)).map { .text($0) }
        }
    }

    func text(_ column: String) throws -> String {
        guard case .text(let value)? = self.column(column) else { throw StoreError.corrupt(column) }
        return value
    }

    func int(_ column: String) throws -> Int {
        guard case .integer(let value)? = self.column(column) else { throw StoreError.corrupt(column) }
        return Int(value)
    }

    func date(_ column: String) throws -> Date {
        Date(timeIntervalSince1970: Double(try int(column)) / 1000)
    }

    func json<T: Decodable>(_ column: String) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(try text(column).utf8))
        } catch {
            throw StoreError.corrupt(column)
        }
    }
}

extension StoreError {
    static let closed = StoreError(code: .unavailable, message: "the store is closed")

    /// SQLSTATEs of a transaction that lost to a concurrent one: serialization failure, deadlock.
    private static let retryableStates: Set<String> = ["40001", "40P01"]

    static func isSerializationFailure(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, error.code == .server, let state = error.serverInfo?[.sqlState] else {
            return false
        }
        return retryableStates.contains(state)
    }

    /// Maps an error from postgres-nio (or already a `StoreError`) to the store's error classes: a
    /// server that cannot be reached, or a connection that broke, is `unavailable`; uniqueness and
    /// serialization conflicts are `conflict`; the rest (SQL errors, decoding) is internal.
    init(postgres error: any Error) {
        if let error = error as? StoreError {
            self = error
            return
        }
        guard let error = error as? PSQLError else {
            // The pool's own failures (no connection could be made, the pool is shut down).
            self.init(code: .unavailable, message: "PostgreSQL: \(String(describing: error))")
            return
        }
        guard error.code == .server else {
            // The underlying error says why (refused, a TLS handshake that failed): PSQLError's own
            // description is deliberately generic.
            let why = error.underlying.map { ": \(String(describing: $0))" } ?? ""
            self.init(code: .unavailable, message: "PostgreSQL connection: \(error.code)\(why)")
            return
        }
        let state = error.serverInfo?[.sqlState] ?? "?????"
        let message = error.serverInfo?[.message] ?? ""
        let code: Code
        switch state {
        case "23505", "40001", "40P01":
            code = .conflict
        case _ where state.hasPrefix("08") || state.hasPrefix("53") || state.hasPrefix("57") || state == "25006":
            // Connection exceptions, insufficient resources, operator intervention (shutdown), read-only.
            code = .unavailable
        default:
            code = .internalError
        }
        self.init(code: code, message: "PostgreSQL \(state): \(message)")
    }
}
