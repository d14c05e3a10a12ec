import Foundation
import Testing
@testable import VPCEPRegistry
import VPCEPStoreSQLite
import VPCEPTestSupport

/// The read cache's own rules: which entries a commit drops, which reads it refuses to keep, and what
/// it evicts when its byte budget is reached.
@Suite("Service read cache")
struct ServiceReadCacheTests {
    private static func service(_ id: String, name: String? = nil, description: String = "") -> EndpointService {
        EndpointService(
            id: id, serviceName: "r1.\(name ?? id).\(id)", name: name ?? id, ownerID: "tenant-a", region: "r1",
            vpcID: "vpc-1", serviceType: .interface, backendKind: .loadBalancer, backendID: "lb-1",
            ports: [PortMapping(terminalPort: 80, servicePort: 8080)], approvalEnabled: true, clientIPMode: .close,
            description: description, tags: [], status: .available, connectionCount: 0,
            createdAt: Date(timeIntervalSince1970: 1), updatedAt: Date(timeIntervalSince1970: 1), revision: 1,
            warnings: [], clientIPNote: "")
    }

    @Test func aCommitDropsOnlyTheServicesItChanged() {
        let cache = ServiceReadCache()
        cache.advance(from: 0, to: CommitChanges(version: 1, services: nil))
        cache.insert(Self.service("a"), readAt: 1)
        cache.insert(Self.service("b"), readAt: 1)
        cache.advance(from: 1, to: CommitChanges(version: 2, services: ["a"]))
        #expect(cache.lookup(.id("a"), version: 2) == nil)
        #expect(cache.lookup(.name("r1.a.a"), version: 2) == nil)
        #expect(cache.lookup(.id("b"), version: 2) == Self.service("b"))
        #expect(cache.lookup(.name("r1.b.b"), version: 2) == Self.service("b"))
    }

    @Test func aCommitTheStoreCannotDescribeDropsEverything() {
        let cache = ServiceReadCache()
        cache.insert(Self.service("a"), readAt: 0)
        cache.advance(from: 0, to: CommitChanges(version: 1, services: nil))
        #expect(cache.lookup(.id("a"), version: 1) == nil)
        #expect(cache.usage.entries == 0)
        #expect(cache.usage.bytes == 0)
    }

    @Test func nothingIsServedForAVersionNotYetApplied() {
        let cache = ServiceReadCache()
        cache.insert(Self.service("a"), readAt: 0)
        #expect(cache.lookup(.id("a"), version: 1) == nil)
        #expect(cache.lookup(.id("a"), version: 0) != nil)
    }

    /// A read that began before a change it may not show is not kept, even after the change was applied.
    @Test func aReadOlderThanAnAppliedChangeOfItsServiceIsNotKept() {
        let cache = ServiceReadCache()
        cache.advance(from: 0, to: CommitChanges(version: 5, services: ["a"]))
        cache.insert(Self.service("a", description: "old"), readAt: 4)
        #expect(cache.lookup(.id("a"), version: 5) == nil)
        // Other services read at the same version did not change since: kept.
        cache.insert(Self.service("b"), readAt: 4)
        #expect(cache.lookup(.id("b"), version: 5) != nil)
        // A read from after the change is kept.
        cache.insert(Self.service("a", description: "new"), readAt: 5)
        #expect(cache.lookup(.id("a"), version: 5)?.description == "new")
        // A read older than the cache's first applied version is never kept (nothing is known before it).
        let fresh = ServiceReadCache()
        fresh.advance(from: 0, to: CommitChanges(version: 9, services: nil))
        fresh.insert(Self.service("c"), readAt: 8)
        #expect(fresh.lookup(.id("c"), version: 9) == nil)
    }

    @Test func advancingFromAnOlderLookStillAppliesWhatChanged() {
        let cache = ServiceReadCache()
        cache.insert(Self.service("a"), readAt: 0)
        cache.insert(Self.service("b"), readAt: 0)
        cache.advance(from: 0, to: CommitChanges(version: 2, services: ["a"]))
        // A read that asked from version 0, answered with version 3: its set covers (0, 3].
        cache.advance(from: 0, to: CommitChanges(version: 3, services: ["a", "b"]))
        #expect(cache.lookup(.id("b"), version: 3) == nil)
        // One that got no further than what was applied changes nothing.
        cache.insert(Self.service("b"), readAt: 3)
        cache.advance(from: 0, to: CommitChanges(version: 2, services: ["b"]))
        #expect(cache.lookup(.id("b"), version: 3) != nil)
    }

    @Test func aRenameLeavesNoStaleName() {
        let cache = ServiceReadCache()
        cache.insert(Self.service("a", name: "old"), readAt: 0)
        cache.advance(from: 0, to: CommitChanges(version: 1, services: ["a"]))
        cache.insert(Self.service("a", name: "new"), readAt: 1)
        #expect(cache.lookup(.name("r1.old.a"), version: 1) == nil)
        #expect(cache.lookup(.name("r1.new.a"), version: 1)?.name == "new")
    }

    @Test func theBudgetEvictsSingleEntriesAndSparesRecentlyRead() {
        let size = ServiceReadCache.approximateBytes(Self.service("s0"))
        let cache = ServiceReadCache(byteBudget: size * 4)
        for index in 0..<4 { cache.insert(Self.service("s\(index)"), readAt: 0) }
        #expect(cache.usage.entries == 4)
        // Read since the hand last passed: s0 and s2 get another round.
        _ = cache.lookup(.id("s0"), version: 0)
        _ = cache.lookup(.id("s2"), version: 0)
        cache.insert(Self.service("s4"), readAt: 0)
        #expect(cache.usage.entries == 4)
        #expect(cache.usage.bytes <= size * 4)
        #expect(cache.lookup(.id("s0"), version: 0) != nil)
        #expect(cache.lookup(.id("s2"), version: 0) != nil)
        #expect(cache.lookup(.id("s4"), version: 0) != nil)
        #expect([cache.lookup(.id("s1"), version: 0), cache.lookup(.id("s3"), version: 0)].compactMap { $0 }.count == 1)
        // Many more: the cache stays within its budget, never starting over.
        for index in 5..<200 { cache.insert(Self.service("s\(index)"), readAt: 0) }
        #expect(cache.usage.entries == 4)
        #expect(cache.lookup(.id("s199"), version: 0) != nil)
    }

    @Test func aBudgetOfNothingKeepsNothing() {
        let cache = ServiceReadCache(byteBudget: 0)
        cache.insert(Self.service("a"), readAt: 0)
        #expect(cache.usage.entries == 0)
    }

    @Test func theEstimateGrowsWithWhatTheServiceHolds() {
        var big = Self.service("a")
        let small = ServiceReadCache.approximateBytes(big)
        big.description = String(repeating: "x", count: 1000)
        big.tags = (0..<10).map { Tag(key: "key-number-\($0)-long", value: "value-number-\($0)-long") }
        #expect(ServiceReadCache.approximateBytes(big) >= small + 1000 + 10 * 2 * 48)
    }

    /// Through the registry on SQLite: a write to one service leaves every other one cached, and the
    /// changed one is read again.
    @Test func aWriteToOneServiceKeepsTheOthersCached() async throws {
        try await withRegistry { registry, store in
            let network = try await makeNetwork(registry, tenantA)
            let first = try await registry.createEndpointService(tenantA, spec(network))
            let second = try await registry.createEndpointService(
                tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 8081)]))
            _ = try await registry.getEndpointService(tenantA, id: first.id, serviceName: nil)
            _ = try await registry.getEndpointService(tenantA, id: second.id, serviceName: nil)
            _ = try await registry.updateEndpointService(tenantA, id: first.id, EndpointServiceUpdate(description: "changed"))
            _ = try await registry.createVPC(tenantB, name: "unrelated", cidr: "10.9.0.0/16")
            let changes = try #require(try await store.commitChanges(since: registry.serviceCache.validThrough))
            registry.serviceCache.advance(from: registry.serviceCache.validThrough, to: changes)
            #expect(registry.serviceCache.lookup(.id(second.id), version: changes.version) != nil)
            #expect(registry.serviceCache.lookup(.id(first.id), version: changes.version) == nil)
            #expect(try await registry.getEndpointService(tenantA, id: first.id, serviceName: nil).description == "changed")
        }
    }
}

@Suite("Service change history")
struct ServiceChangeHistoryTests {
    @Test func changesAfterAVersionAreTheUnionOfLaterCommits() {
        let history = ServiceChangeHistory(startingAt: 0)
        history.record(through: 1, services: ["a"])
        history.record(through: 2, services: [])
        history.record(through: 3, services: ["b"])
        #expect(history.changes(after: 0, through: 3) == ["a", "b"])
        // A superset is allowed: version 3's changes may be counted for a look up to 2.
        #expect(history.changes(after: 1, through: 2)?.isSubset(of: ["b"]) == true)
        #expect(history.changes(after: 1, through: 3) == ["b"])
        #expect(history.changes(after: 3, through: 3) == [])
        // Not recorded yet: unknown.
        #expect(history.changes(after: 3, through: 4) == nil)
    }

    @Test func anUnknownCommitOrAForgottenOneAnswersNil() {
        let history = ServiceChangeHistory(startingAt: 0, capacity: 2)
        history.record(through: 1, services: ["a"])
        history.record(through: 2, services: nil)
        history.record(through: 3, services: ["b"])
        #expect(history.changes(after: 1, through: 3) == nil)
        #expect(history.changes(after: 2, through: 3) == ["b"])
        history.record(through: 4, services: ["c", "d"])
        // Over capacity: the oldest is forgotten.
        #expect(history.changes(after: 2, through: 4) == nil)
        #expect(history.changes(after: 3, through: 4) == ["c", "d"])
    }

    @Test func aHistoryWithoutAStartKnowsNothingBeforeItsFirstRecord() {
        let history = ServiceChangeHistory(startingAt: nil)
        #expect(history.changes(after: 0, through: 5) == nil)
        history.record(through: 5, services: ["ignored"])
        #expect(history.changes(after: 0, through: 5) == nil)
        #expect(history.changes(after: 5, through: 5) == [])
        history.record(through: 7, services: ["a"])
        #expect(history.changes(after: 5, through: 7) == ["a"])
    }
}

/// Not a check but a measurement, run on demand (`VPCEP_MEASURE_CACHE_RSS=100000 swift test --filter
/// ServiceReadCacheMeasurement`): fills a cache with services shaped like the scale benchmark's and
/// prints the resident memory it took against the estimate.
@Suite("Service read cache measurement")
struct ServiceReadCacheMeasurement {
    static let count = ProcessInfo.processInfo.environment["VPCEP_MEASURE_CACHE_RSS"].flatMap { Int($0) }

    @Test("the estimate against RSS", .enabled(if: count != nil))
    func estimateAgainstRSS() throws {
        let count = try #require(Self.count)
        let cache = ServiceReadCache(byteBudget: Int.max / 2)
        let before = try Self.residentBytes()
        for index in 0..<count {
            let id = UUID().uuidString.lowercased()
            // Each string built afresh, as a decoded row's are.
            cache.insert(EndpointService(
                id: id, serviceName: "eu-west-1.svc-\(index).\(id)", name: "svc-\(index)", ownerID: "tenant-\(index % 1000)",
                region: "eu-west-1", vpcID: UUID().uuidString.lowercased(), serviceType: .interface,
                backendKind: .loadBalancer, backendID: UUID().uuidString.lowercased(),
                ports: [PortMapping(terminalPort: 80, servicePort: 8080, protocol: "TCP")], approvalEnabled: index % 5 == 0,
                clientIPMode: .close, description: "scale benchmark service \(index)",
                tags: [Tag(key: "env", value: "prod"), Tag(key: "team", value: "team-\(index % 50)")], status: .available,
                connectionCount: 3, createdAt: Date(), updatedAt: Date(), revision: 1, warnings: [],
                clientIPNote: Registry.clientIPNote(backendKind: .loadBalancer, mode: .close)), readAt: 0)
        }
        let after = try Self.residentBytes()
        let usage = cache.usage
        print("service cache: \(usage.entries) entries, estimate \(usage.bytes / usage.entries) B each, "
            + "RSS grew \((after - before) / usage.entries) B each (\((after - before) >> 20) MiB in all)")
    }

    private static func residentBytes() throws -> Int {
        let statm = try String(contentsOfFile: "/proc/self/statm", encoding: .utf8)
        let pages = try #require(Int(statm.split(separator: " ")[1]))
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}
