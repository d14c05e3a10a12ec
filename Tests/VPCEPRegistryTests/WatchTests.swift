import Foundation
import Synchronization
import Testing
@testable import VPCEPRegistry
import VPCEPStoreSQLite
import VPCEPTestSupport

/// A running watch: its messages as they come, and the task running it.
private struct Watching {
    let messages: AsyncThrowingStream<WatchMessage, any Error>
    let task: Task<Void, Never>

    init(
        _ registry: Registry, _ ctx: CallContext, filter: WatchFilter = WatchFilter(), start: WatchStart,
        send: (@Sendable (WatchMessage) async throws -> Void)? = nil
    ) {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchMessage.self)
        messages = stream
        task = Task {
            do {
                try await registry.watch(ctx, filter: filter, start: start) { message in
                    try await send?(message)
                    continuation.yield(message)
                }
            } catch {
                continuation.finish(throwing: error)
            }
        }
    }
}

extension AsyncThrowingStream<WatchMessage, any Error>.Iterator {
    /// Event sequences up to and including the first bookmark at or past `seq`.
    mutating func events(untilBookmark seq: UInt64) async throws -> [HistoryEntry] {
        var events: [HistoryEntry] = []
        while let message = try await next() {
            switch message {
            case .event(let entry): events.append(entry)
            case .bookmark(let reached) where reached >= seq: return events
            default: continue
            }
        }
        return events
    }
}

private func history(_ registry: Registry, _ ctx: CallContext) async throws -> [HistoryEntry] {
    try await registry.listHistory(ctx, resourceID: nil, since: nil, until: nil, page: PageRequest(limit: 1000, sortDir: "asc"))
        .items
}

private func head(_ store: SQLiteRegistryStore) async throws -> UInt64 {
    try await store.read { try await $0.logHead() }
}

/// Returns once the feed has read the log up to `seq`.
private func feedReads(_ feed: ChangeFeed, through seq: UInt64) async throws {
    while true {
        if case .events = feed.batch(after: seq - 1, limit: 1) { return }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// Changes of every kind, by two tenants, with a refused one among them.
private func someChanges(_ registry: Registry) async throws {
    let story = try await makeStory(registry, approval: true)
    let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
    _ = try await registry.decideConnections(
        tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: true)
    _ = try? await registry.createVPC(tenantB, name: "bad", cidr: "not-a-cidr")
    _ = try await registry.updateEndpointService(
        tenantA, id: story.service.id, EndpointServiceUpdate(description: "changed"))
    try await registry.deleteEndpoint(tenantB, id: endpoint.id)
    _ = try await registry.createVPC(tenantAInR2, name: "elsewhere", cidr: "10.9.0.0/16")
}

/// A clock the test sets.
private final class ManualClock: Sendable {
    private let time = Mutex(Date(timeIntervalSince1970: 1_700_000_000))
    func now() -> Date { time.withLock { $0 } }
    func set(_ date: Date) { time.withLock { $0 = date } }
}

/// Long enough that neither the poll nor a bookmark wakes anybody during a test.
private let stillFeed = ChangeFeedConfiguration.defaults {
    $0.pollInterval = .seconds(600)
    $0.bookmarkInterval = .seconds(600)
}

private let quick = ChangeFeedConfiguration.defaults {
    $0.pollInterval = .milliseconds(10)
    $0.bookmarkInterval = .milliseconds(50)
}

/// Watch (docs/DOMAIN.md, "Watch").
@Suite("Watch", .timeLimit(.minutes(3)))  // a guard against hangs; a loaded 2-core CI machine took over a minute
struct WatchTests {
    @Test("resuming from every sequence gives the tail ListHistory shows, for every identity")
    func resumeFromEverySequence() async throws {
        try await withRegistry(changeFeed: quick) { registry, store in
            try await someChanges(registry)
            let last = try await head(store)
            for ctx in [operatorR1, tenantA, tenantB, tenantAInR2] {
                let all = try await history(registry, ctx)
                for seq in 0...last {
                    let watch = Watching(registry, ctx, start: .afterSeq(seq))
                    var iterator = watch.messages.makeAsyncIterator()
                    let events = try await iterator.events(untilBookmark: last)
                    watch.task.cancel()
                    await watch.task.value
                    #expect(events == all.filter { $0.seq > seq }, "\(ctx.caller) after \(seq)")
                }
            }
            #expect(registry.changeFeed.watcherCount == 0)
        }
    }

    @Test("a live watcher sees exactly its view of concurrent writes, then an idle bookmark at the head")
    func liveWithConcurrentWriters() async throws {
        try await withRegistry(changeFeed: quick) { registry, store in
            let watchers = [operatorR1, tenantA, tenantB].map { ($0, Watching(registry, $0, start: .now)) }
            // Each watch has read its start before the writes begin: the first bookmark says so.
            var iterators = watchers.map { $0.1.messages.makeAsyncIterator() }
            for index in iterators.indices { _ = try await iterators[index].events(untilBookmark: 0) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        for round in 0..<5 {
                            let ctx = writer % 2 == 0 ? tenantA : tenantB
                            let vpc = try await registry.createVPC(ctx, name: "w\(writer)-\(round)", cidr: "10.\(writer).0.0/16")
                            if round % 2 == 0 { try await registry.deleteVPC(ctx, id: vpc.id) }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let last = try await head(store)
            for (index, (ctx, watch)) in watchers.enumerated() {
                let events = try await iterators[index].events(untilBookmark: last)
                watch.task.cancel()
                #expect(events == (try await history(registry, ctx)), "\(ctx.caller)")
            }
        }
    }

    @Test("a snapshot start: current state, a bookmark at its head, then every later change, none twice")
    func snapshotThenLive() async throws {
        try await withRegistry(changeFeed: quick) { registry, store in
            for index in 0..<5 { _ = try await registry.createVPC(tenantA, name: "v\(index)", cidr: "10.\(index).0.0/16") }
            let writer = Task {
                for index in 5..<25 { _ = try await registry.createVPC(tenantA, name: "v\(index)", cidr: "10.\(index).0.0/16") }
            }
            let watch = Watching(registry, tenantA, filter: WatchFilter(kinds: [.vpc]), start: .snapshot)
            var iterator = watch.messages.makeAsyncIterator()
            var snapshot: [String] = []
            var bookmark: UInt64 = 0
            loop: while let message = try await iterator.next() {
                switch message {
                case .snapshot(let entry): snapshot.append(entry.resourceID)
                case .bookmark(let seq):
                    bookmark = seq
                    break loop
                case .event: Issue.record("an event before the snapshot's bookmark")
                }
            }
            try await writer.value
            let events = try await iterator.events(untilBookmark: try await head(store))
            watch.task.cancel()
            let all = try await history(registry, tenantA)
            #expect(events == all.filter { $0.seq > bookmark })
            let ids = snapshot + events.map(\.resourceID)
            #expect(ids.count == 25 && Set(ids).count == 25)
        }
    }

    @Test("filters and views: a service's events, endpoints only, a provider sees connections")
    func filtersAndViews() async throws {
        try await withRegistry(changeFeed: quick) { registry, store in
            let story = try await makeStory(registry, approval: true)
            let watchService = Watching(registry, tenantA, filter: WatchFilter(serviceID: story.service.id), start: .afterSeq(0))
            let watchEndpoints = Watching(registry, tenantA, filter: WatchFilter(kinds: [.endpoint]), start: .afterSeq(0))
            let watchOther = Watching(registry, tenantB, filter: WatchFilter(types: [.created]), start: .afterSeq(0))
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: false)
            let last = try await head(store)
            var service = watchService.messages.makeAsyncIterator()
            let serviceEvents = try await service.events(untilBookmark: last)
            #expect(serviceEvents.map(\.type) == [.created, .permissionAdded, .connectionRequested, .connectionRejected])
            var endpoints = watchEndpoints.messages.makeAsyncIterator()
            let endpointEvents = try await endpoints.events(untilBookmark: last)
            #expect(endpointEvents.map(\.type) == [.connectionRequested, .connectionRejected])
            // The provider sees the endpoint as its connection, never the consumer's endpoint.
            #expect(endpointEvents.allSatisfy { if case .connection = $0.state { true } else { false } })
            var other = watchOther.messages.makeAsyncIterator()
            let otherEvents = try await other.events(untilBookmark: last)
            #expect(otherEvents.allSatisfy { $0.type == .created && $0.actor == "tenant-b" })
            #expect(otherEvents.count == 4)
            for watch in [watchService, watchEndpoints, watchOther] { watch.task.cancel() }
        }
    }

    @Test("a watcher behind the window catches up from the store, in order, nothing missed")
    func windowOverflow() async throws {
        let tiny = ChangeFeedConfiguration.defaults {
            $0.windowEvents = 2
            $0.pageSize = 3
            $0.pollInterval = .milliseconds(10)
            $0.bookmarkInterval = .milliseconds(50)
        }
        try await withRegistry(changeFeed: tiny) { registry, store in
            let (gate, open) = AsyncStream.makeStream(of: Void.self)
            let held = Mutex(true)
            let watch = Watching(registry, tenantA, start: .now) { message in
                // The first event waits until the writes have pushed it out of the window.
                guard case .event = message, held.withLock({ $0 }) else { return }
                for await _ in gate { break }
            }
            var iterator = watch.messages.makeAsyncIterator()
            _ = try await iterator.events(untilBookmark: 0)
            for index in 0..<12 { _ = try await registry.createVPC(tenantA, name: "v\(index)", cidr: "10.\(index).0.0/16") }
            held.withLock { $0 = false }
            open.yield()
            let events = try await iterator.events(untilBookmark: try await head(store))
            watch.task.cancel()
            #expect(events == (try await history(registry, tenantA)))
            #expect(events.count == 12)
        }
    }

    @Test("a start now is bookmarked at once with the head, long before an idle bookmark would be due")
    func nowStartsWithBookmark() async throws {
        let slowBookmarks = ChangeFeedConfiguration.defaults {
            $0.pollInterval = .milliseconds(10)
            $0.bookmarkInterval = .seconds(3600)
        }
        try await withRegistry(changeFeed: slowBookmarks) { registry, store in
            for index in 0..<3 { _ = try await registry.createVPC(tenantA, name: "v\(index)", cidr: "10.\(index).0.0/16") }
            let watch = Watching(registry, tenantA, start: .now)
            var messages = watch.messages.makeAsyncIterator()
            guard case .bookmark(let position)? = try await messages.next() else {
                Issue.record("the first message of a start now is not a bookmark")
                return
            }
            #expect(position == (try await head(store)))
            watch.task.cancel()
        }
    }

    @Test("compaction: a resume from before it fails with SEQUENCE_COMPACTED; history keeps the rest")
    func compaction() async throws {
        let clock = ManualClock()
        try await withRegistry(clock: { clock.now() }, changeFeed: quick) { registry, store in
            for index in 0..<3 { _ = try await registry.createVPC(tenantA, name: "old\(index)", cidr: "10.\(index).0.0/16") }
            clock.set(Date(timeIntervalSince1970: 1_700_001_000))
            for index in 3..<5 { _ = try await registry.createVPC(tenantA, name: "new\(index)", cidr: "10.\(index).0.0/16") }
            #expect(try await registry.compactChangeLog(retention: .seconds(500)) == 3)
            #expect(try await store.read { try await $0.logCompacted() } == 3)
            #expect(try await history(registry, tenantA).map(\.seq) == [4, 5])

            let stale = Watching(registry, tenantA, start: .afterSeq(2))
            var staleMessages = stale.messages.makeAsyncIterator()
            await expectError(.outOfRange, "SEQUENCE_COMPACTED", field: "after_seq") {
                _ = try await staleMessages.next()
            }
            let fresh = Watching(registry, tenantA, start: .afterSeq(3))
            var freshMessages = fresh.messages.makeAsyncIterator()
            #expect(try await freshMessages.events(untilBookmark: 5).map(\.seq) == [4, 5])
            fresh.task.cancel()
            let ahead = Watching(registry, tenantA, start: .afterSeq(6))
            var aheadMessages = ahead.messages.makeAsyncIterator()
            await expectError(.outOfRange, "SEQUENCE_BEYOND_HEAD", field: "after_seq") {
                _ = try await aheadMessages.next()
            }
        }
    }

    @Test("idle: a filtered watcher gets bookmarks at the head it has passed")
    func idleBookmarks() async throws {
        try await withRegistry(changeFeed: quick) { registry, store in
            let watch = Watching(registry, tenantA, filter: WatchFilter(kinds: [.endpoint]), start: .now)
            var iterator = watch.messages.makeAsyncIterator()
            _ = try await iterator.events(untilBookmark: 0)
            _ = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let last = try await head(store)
            #expect(try await iterator.events(untilBookmark: last).isEmpty)
            watch.task.cancel()
        }
    }

    @Test("a reader that does not read ends with WATCH_TOO_SLOW, naming its last sequence")
    func slowWatcher() async throws {
        let slow = ChangeFeedConfiguration.defaults {
            $0.pollInterval = .milliseconds(10)
            $0.slowWatcherTimeout = .milliseconds(50)
        }
        try await withRegistry(changeFeed: slow) { registry, _ in
            _ = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let watch = Watching(registry, tenantA, start: .afterSeq(0)) { message in
                if case .event = message { try await Task.sleep(for: .seconds(3600)) }
            }
            var iterator = watch.messages.makeAsyncIterator()
            do {
                while try await iterator.next() != nil {}
                Issue.record("the watch ended without an error")
            } catch let error as RegistryError {
                #expect(error.code == .unavailable && error.reason == .watchTooSlow)
                // The event whose send blocked is not counted as delivered.
                #expect(error.message.hasSuffix("resume after sequence 0"))
            }
            await watch.task.value
            #expect(registry.changeFeed.watcherCount == 0)
        }
    }

    @Test("shutdown ends idle watches with SERVER_SHUTTING_DOWN; cancelling frees the watcher")
    func shutdownAndCancel() async throws {
        try await withRegistry(changeFeed: quick) { registry, _ in
            let cancelled = Watching(registry, tenantA, start: .now)
            var first = cancelled.messages.makeAsyncIterator()
            _ = try await first.events(untilBookmark: 0)
            #expect(registry.changeFeed.watcherCount == 1)
            cancelled.task.cancel()
            await cancelled.task.value
            #expect(registry.changeFeed.watcherCount == 0)

            let watch = Watching(registry, tenantB, start: .now)
            var iterator = watch.messages.makeAsyncIterator()
            _ = try await iterator.events(untilBookmark: 0)
            registry.changeFeed.shutDown()
            await expectError(.unavailable, "SERVER_SHUTTING_DOWN", field: nil) {
                while try await iterator.next() != nil {}
            }
            #expect(registry.changeFeed.watcherCount == 0)
        }
    }
}

/// The fan-out's costs (issue 11): a write wakes only the watchers that may see it, and the watchers
/// of one view share one encoding of an event.
@Suite("Watch fan-out", .timeLimit(.minutes(3)))  // as "Watch": a hang guard, and a loaded run took 52 s
struct WatchFanOutTests {
    private static let still = stillFeed

    @Test("a write the watcher may not see does not wake it; one it may see does, with no gap")
    func unseenWriteWakesNobody() async throws {
        try await withRegistry(changeFeed: Self.still) { registry, store in
            let feed = registry.changeFeed
            let watch = Watching(registry, tenantB, filter: WatchFilter(kinds: [.vpc]), start: .now)
            var messages = watch.messages.makeAsyncIterator()
            _ = try await messages.events(untilBookmark: 0)
            let before = feed.wakeUpCount

            // Another tenant's VPC: not in tenant B's view.
            _ = try await registry.createVPC(tenantA, name: "theirs", cidr: "10.1.0.0/16")
            try await feedReads(feed, through: try await head(store))
            #expect(feed.wakeUpCount == before)

            let mine = try await registry.createVPC(tenantB, name: "mine", cidr: "10.2.0.0/16")
            let seq = try await head(store)
            try await feedReads(feed, through: seq)
            #expect(feed.wakeUpCount > before)
            guard case .event(let entry) = try await messages.next() else {
                Issue.record("no event for tenant B's own VPC")
                return
            }
            #expect(entry.resourceID == mine.id)
            #expect(entry.seq == seq)
            watch.task.cancel()
            await watch.task.value
        }
    }

    @Test("a local commit reaches the feed and wakes its watcher before the write returns: no hop through a task of the feed's")
    func aLocalCommitIsTakenBeforeTheWriteReturns() async throws {
        // The poll never runs here, so only the write's own call can have taken its events.
        try await withRegistry(changeFeed: Self.still) { registry, store in
            let feed = registry.changeFeed
            let watch = Watching(registry, tenantA, filter: WatchFilter(kinds: [.vpc]), start: .now)
            var messages = watch.messages.makeAsyncIterator()
            _ = try await messages.events(untilBookmark: 0)
            var last = try await head(store)
            for index in 0..<20 {
                let before = feed.wakeUpCount
                let vpc = try await registry.createVPC(tenantA, name: "v\(index)", cidr: "10.\(index).0.0/16")
                // Asked at once: any await here would give a task of the feed's the time to run.
                guard case .events(let events, let seq) = feed.batch(after: last, limit: 10) else {
                    Issue.record("write \(index): the feed had not taken its commit when the write returned")
                    break
                }
                #expect(events.map(\.resourceID) == [vpc.id])
                #expect(try await head(store) == seq)
                last = seq
                guard case .event(let entry) = try await messages.next() else {
                    Issue.record("no event for \(vpc.id)")
                    break
                }
                #expect(entry.seq == seq)
                // Woken by this write, or already running from the last one's wake-up.
                #expect(feed.wakeUpCount - before <= 1)
            }
            watch.task.cancel()
            await watch.task.value
        }
    }

    @Test("watchers of one view share one encoding of an event; another view encodes its own")
    func oneEncodingPerView() async throws {
        try await withRegistry(changeFeed: Self.still) { registry, store in
            let encodings = EncodeCounts()
            func watch(_ ctx: CallContext, _ start: WatchStart) -> (AsyncThrowingStream<WatchMessage, any Error>, Task<Void, Never>) {
                let (stream, continuation) = AsyncThrowingStream.makeStream(of: WatchMessage.self)
                let task = Task { [registry] in
                    do {
                        try await registry.watch(ctx, filter: WatchFilter(), start: start, encode: { message in
                            if case .event(let entry) = message { encodings.count(entry.seq) }
                            return message
                        }, send: { continuation.yield($0) })
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
                return (stream, task)
            }
            func firstEvent(_ stream: AsyncThrowingStream<WatchMessage, any Error>) async throws -> HistoryEntry? {
                for try await message in stream { if case .event(let entry) = message { return entry } }
                return nil
            }

            let (first, firstTask) = watch(tenantA, .now)
            var iterator = first.makeAsyncIterator()
            _ = try await iterator.events(untilBookmark: 0)
            _ = try await registry.createVPC(tenantA, name: "shared", cidr: "10.1.0.0/16")
            let seq = try await head(store)
            var seen: HistoryEntry?
            while let message = try await iterator.next() {
                if case .event(let entry) = message, entry.seq == seq { seen = entry; break }
            }
            #expect(encodings[seq] == 1)

            // Started after the first had it: reads it from the feed's window, as the first did.
            let (second, secondTask) = watch(tenantA, .afterSeq(seq - 1))
            #expect(try await firstEvent(second) == seen)
            #expect(encodings[seq] == 1)

            let (other, otherTask) = watch(operatorR1, .afterSeq(seq - 1))
            #expect(try await firstEvent(other)?.seq == seq)
            #expect(encodings[seq] == 2)
            for task in [firstTask, secondTask, otherTask] {
                task.cancel()
                await task.value
            }
        }
    }
}

extension WatchFanOutTests {
    @Test("watchers of one view that encode differently each get their own encoding")
    func differentEncodingsAreNotShared() async throws {
        try await withRegistry(changeFeed: Self.still) { registry, store in
            let plain = Watching(registry, tenantA, start: .now)
            var messages = plain.messages.makeAsyncIterator()
            _ = try await messages.events(untilBookmark: 0)
            _ = try await registry.createVPC(tenantA, name: "one", cidr: "10.1.0.0/16")
            let seq = try await head(store)
            var entry: HistoryEntry?
            while let message = try await messages.next() {
                if case .event(let event) = message, event.seq == seq { entry = event; break }
            }

            let (names, continuation) = AsyncThrowingStream.makeStream(of: String.self)
            let named = Task { [registry] in
                do {
                    try await registry.watch(tenantA, filter: WatchFilter(), start: .afterSeq(seq - 1), encode: { message in
                        if case .event(let event) = message { return "event \(event.seq) \(event.resourceID)" }
                        return "other"
                    }, send: { continuation.yield($0) })
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            var iterator = names.makeAsyncIterator()
            #expect(try await iterator.next() == "event \(seq) \(entry?.resourceID ?? "?")")
            for task in [plain.task, named] {
                task.cancel()
                await task.value
            }
        }
    }
}

/// A watch that waits holds no task (issue 11's idle cost): caught up, it parks on the feed.
@Suite("Watch: parked watchers", .timeLimit(.minutes(3)))
struct ParkedWatchTests {
    private static let still = stillFeed

    @Test("a caught-up watch is parked with no task; an event wakes it, it sends and parks again; a cancel ends it at once")
    func parkedWatchHoldsNoTask() async throws {
        try await withRegistry(changeFeed: Self.still) { registry, store in
            let feed = registry.changeFeed
            let (messages, continuation) = AsyncStream.makeStream(of: WatchMessage.self)
            let (ends, ended) = AsyncStream.makeStream(of: (any Error).self)
            let watch = try registry.makeWatch(
                tenantA, filter: WatchFilter(), start: .now, encode: { $0 }, send: { continuation.yield($0) })
            watch.start { error in ended.yield(error) }
            var iterator = messages.makeAsyncIterator()
            guard case .bookmark = await iterator.next() else { throw CancellationError() }
            try await parked(watch, feed)

            let vpc = try await registry.createVPC(tenantA, name: "one", cidr: "10.1.0.0/16")
            guard case .event(let entry) = await iterator.next() else { throw CancellationError() }
            let seq = try await head(store)
            #expect(entry.resourceID == vpc.id && entry.seq == seq)
            try await parked(watch, feed)

            watch.cancel()
            var endings = ends.makeAsyncIterator()
            #expect(await endings.next() is CancellationError)
            #expect(feed.watcherCount == 0 && feed.parkedCount == 0)
        }
    }

    @Test("watchers of a resource each: a write wakes only its own; one parked through the others' writes gets its own with no gap")
    func aWriteWakesOnlyTheWatchersOfItsResource() async throws {
        try await withRegistry(changeFeed: Self.still) { registry, store in
            let feed = registry.changeFeed
            var vpcs: [VPC] = []
            for index in 0..<8 { vpcs.append(try await registry.createVPC(tenantA, name: "v\(index)", cidr: "10.\(index).0.0/16")) }
            // Watchers of one VPC each, and one of a service filter nobody writes to, and one of everything.
            var streams: [AsyncStream<WatchMessage>.Iterator] = []
            var watches: [Watch] = []
            let filters = vpcs.map { WatchFilter(resourceID: $0.id) } + [WatchFilter(serviceID: "eps-none"), WatchFilter()]
            for filter in filters {
                let (messages, continuation) = AsyncStream.makeStream(of: WatchMessage.self)
                let watch = try registry.makeWatch(tenantA, filter: filter, start: .now, encode: { $0 }, send: { continuation.yield($0) })
                watch.start { _ in continuation.finish() }
                var iterator = messages.makeAsyncIterator()
                guard case .bookmark = await iterator.next() else { throw CancellationError() }
                streams.append(iterator)
                watches.append(watch)
            }
            let all = watches
            @Sendable func allParked() async throws {
                while all.contains(where: \.hasTask) || feed.parkedCount != filters.count {
                    try await Task.sleep(for: .milliseconds(2))
                }
            }
            try await allParked()

            // VPCs 1...7 deleted one by one, a new VPC nobody follows between them; VPC 0's watcher sleeps through it all.
            for index in 1..<8 {
                var before = feed.wakeUpCount
                try await registry.deleteVPC(tenantA, id: vpcs[index].id)
                try await feedReads(feed, through: try await head(store))
                // Its own watcher and the watcher of everything; nobody else.
                #expect(feed.wakeUpCount - before == 2)
                guard case .event(let entry) = await streams[index].next() else { throw CancellationError() }
                #expect(entry.resourceID == vpcs[index].id && entry.type == .deleted)
                guard case .event(let seen) = await streams[filters.count - 1].next() else { throw CancellationError() }
                #expect(seen.seq == entry.seq)
                try await allParked()

                before = feed.wakeUpCount
                let other = try await registry.createVPC(tenantA, name: "other\(index)", cidr: "10.\(100 + index).0.0/16")
                try await feedReads(feed, through: try await head(store))
                #expect(feed.wakeUpCount - before == 1)
                guard case .event(let created) = await streams[filters.count - 1].next() else { throw CancellationError() }
                #expect(created.resourceID == other.id)
                try await allParked()
            }
            let before = feed.wakeUpCount
            try await registry.deleteVPC(tenantA, id: vpcs[0].id)
            let seq = try await head(store)
            try await feedReads(feed, through: seq)
            #expect(feed.wakeUpCount - before == 2)
            guard case .event(let entry) = await streams[0].next() else { throw CancellationError() }
            #expect(entry.resourceID == vpcs[0].id && entry.seq == seq)
            for watch in watches { watch.cancel() }
            while feed.watcherCount != 0 { try await Task.sleep(for: .milliseconds(2)) }
            #expect(feed.parkedCount == 0)
        }
    }

    /// Returns once `watch` is parked (its task ends just after it parks).
    private func parked(_ watch: Watch, _ feed: ChangeFeed) async throws {
        while watch.hasTask || feed.parkedCount != 1 { try await Task.sleep(for: .milliseconds(2)) }
    }

    @Test("watches cancelled at random moments while writes run each end once, and the feed lets every one go")
    func cancelledAtRandom() async throws {
        try await withRegistry(changeFeed: .defaults { $0.pollInterval = .milliseconds(20) }) { registry, _ in
            let feed = registry.changeFeed
            let endings = EncodeCounts()
            let writes = Task {
                for index in 0..<40 {
                    _ = try await registry.createVPC(tenantA, name: "w\(index)", cidr: "10.\(index).0.0/16")
                }
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<60 {
                    group.addTask {
                        let start: WatchStart = index % 3 == 0 ? .snapshot : index % 3 == 1 ? .now : .afterSeq(0)
                        let watch = try registry.makeWatch(
                            index % 2 == 0 ? tenantA : tenantB, filter: WatchFilter(), start: start, encode: { $0 },
                            send: { _ in if index % 4 == 0 { await Task.yield() } })
                        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                            watch.start { _ in
                                endings.count(UInt64(index))
                                done.resume()
                            }
                            Task {
                                try? await Task.sleep(for: .microseconds(Int.random(in: 0...30_000)))
                                watch.cancel()
                                if index % 5 == 0 { watch.cancel() }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await writes.value
            #expect((0..<60).allSatisfy { endings[UInt64($0)] == 1 })
            #expect(feed.watcherCount == 0 && feed.parkedCount == 0)
        }
    }
}

/// How many times each event was encoded, across watchers (or anything else counted by number).
private final class EncodeCounts: Sendable {
    private let counts = Mutex<[UInt64: Int]>([:])

    func count(_ seq: UInt64) { counts.withLock { $0[seq, default: 0] += 1 } }

    subscript(seq: UInt64) -> Int { counts.withLock { $0[seq] ?? 0 } }
}
