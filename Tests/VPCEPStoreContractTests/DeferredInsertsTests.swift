import Testing
@testable import VPCEPStorePostgres

/// How a write batch's held-back inserts become one statement, and how a failed member takes its own back.
@Suite("Deferred inserts")
struct DeferredInsertsTests {
    private func vpc(_ id: String) -> DeferredInserts.Insert {
        DeferredInserts.Insert(table: "vpcs", columns: "id, name", width: 2, binds: [.text(id), .text("n-" + id)])
    }

    private func events(_ seqs: Int64...) -> DeferredInserts.Insert {
        DeferredInserts.Insert(table: "change_events", columns: "seq", width: 1, binds: seqs.map { .integer($0) })
    }

    @Test func oneTableIsOneMultiRowInsert() throws {
        let statement = try #require(DeferredInserts.statement([vpc("a"), vpc("b")]))
        #expect(statement.sql == "INSERT INTO vpcs (id, name) VALUES (?, ?), (?, ?)")
        #expect(statement.binds == [.text("a"), .text("n-a"), .text("b"), .text("n-b")])
    }

    /// A table's rows keep their order, tables come in the order they first appear, and the head's
    /// update goes with them; the binds follow the placeholders.
    @Test func severalTablesAndTheHeadAreOneStatement() throws {
        let statement = try #require(DeferredInserts.statement([vpc("a"), events(1), vpc("b"), events(2, 3)], head: 3))
        #expect(
            statement.sql == "WITH w0 AS (INSERT INTO vpcs (id, name) VALUES (?, ?), (?, ?)), "
                + "w1 AS (INSERT INTO change_events (seq) VALUES (?), (?), (?)) UPDATE log_head SET seq = ? WHERE id = 1")
        #expect(
            statement.binds == [
                .text("a"), .text("n-a"), .text("b"), .text("n-b"), .integer(1), .integer(2), .integer(3), .integer(3),
            ])
        // `$1` … `$8`, one for each bind.
        let query = try PGBind.query(statement.sql, statement.binds)
        #expect(query.sql.contains("$8 WHERE"))
        #expect(!query.sql.contains("?"))
    }

    @Test func nothingWaitingIsNoStatement() throws {
        #expect(DeferredInserts.statement([]) == nil)
        let head = try #require(DeferredInserts.statement([], head: 9))
        #expect(head.sql == "UPDATE log_head SET seq = ? WHERE id = 1")
        #expect(head.binds == [.integer(9)])
    }

    /// A member's inserts are numbered; taking them back leaves the earlier members' to be sent, and
    /// numbers go on across what was already sent.
    @Test func aFailedMemberTakesBackOnlyItsOwn() {
        let deferred = DeferredInserts()
        _ = deferred.add(vpc("a"))
        let sent = deferred.take()
        #expect(sent.inserts == [vpc("a")])
        #expect(sent.numbers == 0..<1)
        _ = deferred.add(vpc("b"))
        let mark = deferred.total
        #expect(mark == 2)
        _ = deferred.add(vpc("c"))
        _ = deferred.add(events(1))
        deferred.drop(from: mark)
        let rest = deferred.take()
        #expect(rest.inserts == [vpc("b")])
        #expect(rest.numbers == 1..<2)
        #expect(deferred.isEmpty)
    }

    /// Enough binds waiting to approach PostgreSQL's limit per statement must be sent.
    @Test func tooManyBindsAskToBeSent() {
        let deferred = DeferredInserts()
        let row = DeferredInserts.Insert(
            table: "t", columns: "c", width: 1, binds: Array(repeating: .integer(0), count: DeferredInserts.maxBinds / 2))
        #expect(!deferred.add(row))
        #expect(!deferred.add(row))
        #expect(deferred.add(vpc("x")))
    }
}
