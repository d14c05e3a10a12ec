import Foundation
import SQLiteNIO
import Synchronization
import Testing
import VPCEPRegistry
@testable import VPCEPStoreSQLite
import VPCEPTestSupport

/// A cancelled call ends the call, never the store (issue 10, defect 1): transactions and reads
/// whose tasks are cancelled at any moment leave no transaction open, no work done late, and
/// nothing for other callers but success.
@Suite("SQLite store under cancellation")
struct StoreCancellationTests {
    /// Opens cancelled at moments spread over the open (connect, configure, migrate): none traps on a
    /// connection released unclosed (a fresh-clone run did), and each leaves the directory's lock
    /// released and the database openable.
    @Test func opensCancelledPartwayLeaveNothingOpen() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for round in 0..<40 {
            let task = Task { try await SQLiteRegistryStore.open(directory: directory) }
            try await Task.sleep(for: .microseconds(250 * (round % 20)))
            task.cancel()
            if let store = try? await task.value { try await store.close() }
        }
        let store = try await SQLiteRegistryStore.open(directory: directory)
        try await store.close()
    }

    @Test func callsCancelledAtRandomMomentsLeaveTheStoreWorking() async throws {
        try await withRegistry { registry, store in
            let tally = Tally()
            // Creates and lists, each cancelled after 0-3 ms: some before their transaction
            // begins, some inside it, some after it is done; beside them, calls nobody cancels.
            await withTaskGroup(of: Void.self) { group in
                for round in 0..<40 {
                    var tasks: [Task<Void, Never>] = []
                    for index in 0..<12 {
                        tasks.append(Task {
                            do {
                                if index.isMultiple(of: 3) {
                                    _ = try await registry.listVPCs(tenantA, page: PageRequest(limit: 100))
                                } else {
                                    _ = try await registry.createVPC(tenantA, name: "v\(round)-\(index)", cidr: "10.0.0.0/16")
                                    tally.succeeded.add(1, ordering: .relaxed)
                                }
                            } catch let error as RegistryError {
                                tally.cancelledCallFailed(error)
                            } catch {
                                tally.unexpected.withLock { $0.append("\(error)") }
                            }
                        })
                    }
                    for task in tasks {
                        group.addTask {
                            try? await Task.sleep(for: .microseconds(Int.random(in: 0...3000)))
                            task.cancel()
                            await task.value
                        }
                    }
                    for index in 0..<4 {
                        group.addTask {
                            do {
                                _ = try await registry.createVPC(tenantB, name: "b\(round)-\(index)", cidr: "10.1.0.0/16")
                                _ = try await registry.listVPCs(tenantB, page: PageRequest(limit: 5))
                            } catch {
                                tally.unexpected.withLock { $0.append("uncancelled: \(error)") }
                            }
                        }
                    }
                    await group.waitForAll()
                }
            }
            #expect(tally.unexpected.withLock { $0 } == [])

            // Every write that reported success is stored, and none that failed.
            let stored = try await registry.listVPCs(tenantA, page: PageRequest(limit: 1)).totalCount
            #expect(stored == tally.succeeded.load(ordering: .relaxed))
            #expect(try await registry.listVPCs(tenantB, page: PageRequest(limit: 1)).totalCount == 40 * 4)
            #expect(store.readinessProblem == nil)
            // And no transaction is left open: another connection can take the write lock.
            try await expectNoTransactionLeftOpen(store.path)
        }
    }

    @Test func aWriteCancelledWhileItQueuesIsDroppedNotDoneLate() async throws {
        try await withRegistry { registry, store in
            let holder = try await WriteLockHolder(store)
            let late = Task { try await registry.createVPC(tenantA, name: "late", cidr: "10.0.0.0/16") }
            // Give it time to queue behind the holder, then cancel it as a deadline would.
            try await Task.sleep(for: .milliseconds(50))
            late.cancel()
            try await holder.release()
            do {
                _ = try await late.value
                Issue.record("a write cancelled while it queued was done")
            } catch let error as RegistryError {
                #expect(error.code == .cancelled)
                #expect(error.reason.rawValue == "CANCELLED")
            }
            #expect(try await registry.listVPCs(tenantA, page: PageRequest(limit: 10)).totalCount == 0)
            _ = try await registry.createVPC(tenantA, name: "next", cidr: "10.0.0.0/16")
            try await expectNoTransactionLeftOpen(store.path)
        }
    }

    @Test func aWriteWhoseDeadlinePassesWhileItQueuesIsNotMade() async throws {
        try await withRegistry { registry, store in
            let holder = try await WriteLockHolder(store)
            // Nobody cancels it: only its deadline passes while it waits for the holder.
            var ctx = tenantA
            ctx.deadline = .now + .milliseconds(20)
            let late = Task { [ctx] in try await registry.createVPC(ctx, name: "late", cidr: "10.0.0.0/16") }
            try await Task.sleep(for: .milliseconds(60))
            try await holder.release()
            do {
                _ = try await late.value
                Issue.record("a write whose deadline had passed was made")
            } catch let error as RegistryError {
                #expect(error.code == .deadlineExceeded)
                #expect(error.reason.rawValue == "DEADLINE_EXCEEDED")
            }
            #expect(try await registry.listVPCs(tenantA, page: PageRequest(limit: 10)).totalCount == 0)
            // With a key too, and the key stays free for a retry that is in time.
            var keyed = tenantA
            keyed.idempotencyKey = "k-1"
            keyed.deadline = .now - .milliseconds(1)
            await #expect(throws: RegistryError.self) { try await registry.createVPC(keyed, name: "k", cidr: "10.0.0.0/16") }
            keyed.deadline = nil
            #expect(try await registry.createVPC(keyed, name: "k", cidr: "10.0.0.0/16").name == "k")
        }
    }

    /// The writer runs the bodies of a batch in a task of its own, not in their callers' tasks; a
    /// caller's cancellation still reaches its running body, and no other. Whether the cancelled
    /// body leads its batch (no savepoint) or follows another (in a savepoint), it is undone alone,
    /// and the writes queued behind it commit.
    @Test(arguments: [true, false])
    func aCallerCancelledWhileItsBodyRunsIsTheOnlyOneCancelled(leads: Bool) async throws {
        try await withRegistry { registry, store in
            let holder = leads ? nil : try await WriteLockHolder(store)
            let started = AsyncStream<Void>.makeStream()
            let running = Task {
                try await store.transaction { tx in
                    try await tx.insertVPC(storedVPC("vpc-running"))
                    started.continuation.yield()
                    // Ends only by cancellation.
                    try await Task.sleep(for: .seconds(60))
                }
            }
            // Queued behind the holder (when there is one), so that `running` follows it in its batch
            // (whose commit, and so the holder's answer, waits for `running`).
            try await Task.sleep(for: .milliseconds(20))
            holder?.letGo()
            var iterator = started.stream.makeAsyncIterator()
            await iterator.next()
            let queued = (0..<8).map { i in
                Task { try await registry.createVPC(tenantA, name: "queued-\(i)", cidr: "10.0.0.0/16") }
            }
            try await Task.sleep(for: .milliseconds(50))
            running.cancel()
            await #expect(throws: CancellationError.self) { try await running.value }
            try await holder?.release()
            for write in queued { _ = try await write.value }
            #expect(try await registry.listVPCs(tenantA, page: PageRequest(limit: 100)).totalCount == 8)
            #expect(try await store.read { try await $0.vpc(id: "vpc-running", visibleTo: .anyOwner(in: "r1")) } == nil)
            _ = try await registry.createVPC(tenantA, name: "after", cidr: "10.0.0.0/16")
            try await expectNoTransactionLeftOpen(store.path)
        }
    }

    /// Writes that queue while one runs join its batch and run one after another in the writer's one
    /// task, committed once: no hand-off between them (on two busy cores each waits for the scheduler).
    @Test func writesQueuedBehindARunningOneRunInItsTaskAndCommitOnce() async throws {
        try await withRegistry { _, store in
            let holder = try await WriteLockHolder(store)
            let tasks = TaskIdentities()
            let writes = (0..<16).map { i in
                Task {
                    try await store.transaction { tx in
                        tasks.noteCurrent()
                        try await tx.insertVPC(storedVPC("vpc-\(i)"))
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            let before = store.commitVersion
            try await holder.release()
            for write in writes { try await write.value }
            #expect(tasks.count == 1)
            #expect(store.commitVersion == before.map { $0 + 1 })
            #expect(try await store.read { try await $0.listVPCs(ListQuery(region: "r1", ownerID: nil, sortKey: .createdAt, ascending: true, limit: 1, offset: 0)) }.totalCount == 16)
        }
    }

    @Test func aLockedDatabaseMakesTheStoreNotReadyUntilItRecoversByItself() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try await SQLiteRegistryStore.open(directory: directory, logger: nil, busyTimeoutMilliseconds: 100)
        let registry = Registry(store: store, regions: servedRegions)
        #expect(store.readinessProblem == nil)

        // Another process's connection (SQLite's own locks know nothing of our lock file) holds
        // the write lock, as the audit's wedged store did.
        let other = try await SQLiteConnection.open(storage: .file(path: store.path))
        _ = try await other.query("BEGIN IMMEDIATE", [])
        do {
            _ = try await registry.createVPC(tenantA, name: "blocked", cidr: "10.0.0.0/16")
            Issue.record("a write went through a locked database")
        } catch {
            #expect(error.code == .unavailable)
        }
        #expect(store.readinessProblem != nil)

        _ = try await other.query("ROLLBACK", [])
        try await other.close()
        // No call is needed for the store to notice.
        let giveUp = ContinuousClock.now + .seconds(10)
        while store.readinessProblem != nil, ContinuousClock.now < giveUp {
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(store.readinessProblem == nil)
        _ = try await registry.createVPC(tenantA, name: "after", cidr: "10.0.0.0/16")
        try await store.close()
    }
}

private final class Tally: Sendable {
    let succeeded = Atomic<Int>(0)
    let unexpected = Mutex<[String]>([])

    /// A cancelled call may fail only as cancelled, never as a broken store.
    func cancelledCallFailed(_ error: RegistryError) {
        if error.code != .cancelled { unexpected.withLock { $0.append("\(error.code) \(error.reason)") } }
    }
}

/// The tasks that code ran in.
private final class TaskIdentities: Sendable {
    private let seen = Mutex<Set<Int>>([])

    func noteCurrent() {
        withUnsafeCurrentTask { task in _ = seen.withLock { $0.insert(task?.hashValue ?? 0) } }
    }

    var count: Int { seen.withLock { $0.count } }
}

private func storedVPC(_ id: String) -> VPC {
    VPC(
        id: id, name: "v", cidr: "10.0.0.0/16", region: "r1", ownerID: "tenant-a",
        createdAt: Date(timeIntervalSince1970: 1), updatedAt: Date(timeIntervalSince1970: 1))
}

/// A transaction that holds the store's write lock from `init` until `release`, so that other
/// writes queue behind it.
private struct WriteLockHolder {
    private let task: Task<Void, any Error>
    private let letGoSignal: AsyncStream<Void>.Continuation

    init(_ store: SQLiteRegistryStore) async throws {
        let holding = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
        task = Task {
            try await store.transaction { _ in
                holding.continuation.yield()
                for await _ in release.stream { break }
            }
        }
        letGoSignal = release.continuation
        for await _ in holding.stream { break }
    }

    func release() async throws {
        letGo()
        try await task.value
    }

    /// Lets the transaction end, without waiting for it to commit.
    func letGo() {
        letGoSignal.yield()
    }
}
