import Foundation
import Synchronization
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// Keyset paging (page tokens), tag filters matching any or all keys, and endpoint revisions, the
/// same in every store (issue 13).
@Suite("Store contract: page tokens, tag matching, endpoint revisions")
struct PagingContractTests {
    /// `after` starts the page strictly after the cursor in the list's order (ties by id, in the same
    /// direction), `next` marks the page's last row while more follow, and `totalCount` ignores the cursor.
    @Test(arguments: StoreKind.underTest)
    func keysetPagesContinueAfterTheCursor(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            try await store.transaction { tx in
                // Pairs of equal times, so the cursor must break ties by id.
                for i in 0..<7 { try await tx.insertVPC(vpc("vpc-\(i)", at: Double(10 + i / 2))) }
                try await tx.insertVPC(vpc("vpc-other", owner: "tenant-b"))
            }
            for ascending in [true, false] {
                var query = listQuery(owner: "tenant-a", ascending: ascending, limit: 3)
                var seen: [String] = []
                var pages = 0
                while true {
                    let page = try await store.read { [query] in try await $0.listVPCs(query) }
                    #expect(page.totalCount == 7)
                    seen += page.items.map(\.id)
                    pages += 1
                    guard let next = page.next else { break }
                    #expect(next.id == page.items.last?.id)
                    query.after = next
                }
                let expected = (0..<7).map { "vpc-\($0)" }
                #expect(seen == (ascending ? expected : expected.reversed()))
                #expect(pages == 3)
            }
            // The last page of an exact fit says no more follow.
            let whole = try await store.read { try await $0.listVPCs(listQuery(owner: "tenant-a", limit: 7)) }
            #expect(whole.items.count == 7 && whole.next == nil)
        }
    }

    /// Paging by token through a list while another task inserts and deletes rows of the same list
    /// sees every row that existed throughout exactly once, and no row twice; walking by offset
    /// under the same churn does not (rows deleted before the position shift later ones past it).
    @Test(arguments: StoreKind.underTest, [true, false])
    func tokenPagingIsStableWhileRowsComeAndGo(_ kind: StoreKind, ascending: Bool) async throws {
        try await withRegistry(kind) { registry, _ in
            // Stable rows and churn rows interleaved, so deletions land before and after any position.
            var stable: Set<String> = []
            var churn: [String] = []
            for i in 0..<40 {
                let vpc = try await registry.createVPC(tenantA, name: "v\(i)", cidr: "10.\(i).0.0/16")
                if i % 2 == 0 { stable.insert(vpc.id) } else { churn.append(vpc.id) }
            }
            let direction = ascending ? "asc" : "desc"
            let tokenWalk = try await walkWhileChurning(registry, churn: churn) { token, _ in
                try await registry.listVPCs(tenantA, page: PageRequest(limit: 4, sortDir: direction, pageToken: token))
            }
            let seenStable = tokenWalk.filter { stable.contains($0) }
            #expect(Set(seenStable) == stable)
            #expect(seenStable.count == stable.count)
            #expect(Set(tokenWalk).count == tokenWalk.count, "a row was listed twice")

            // The same walk by offset, against the churn the token walk left (its churn rows are now
            // the newest and the oldest that remain), misses or repeats rows: the churn matters.
            let remaining = try await registry.listVPCs(tenantA, page: PageRequest(limit: 1000, sortDir: "asc")).items
                .map(\.id).filter { !stable.contains($0) }
            let offsetWalk = try await walkWhileChurning(registry, churn: remaining) { _, offset in
                try await registry.listVPCs(tenantA, page: PageRequest(limit: 4, offset: offset, sortDir: direction))
            }
            let offsetStable = offsetWalk.filter { stable.contains($0) }
            #expect(Set(offsetStable) != stable || offsetStable.count != stable.count || Set(offsetWalk).count != offsetWalk.count)
        }
    }

    /// Pages through with `page` (given the last page's token, and the offset a walk by offset would
    /// use) while a second task deletes `churn` rows oldest first and creates new ones: one round (a
    /// delete and a create) between every two pages, each asked for and awaited (a handshake, no timing).
    private func walkWhileChurning(
        _ registry: Registry, churn: [String],
        page: @escaping @Sendable (String, Int) async throws -> ListResult<VPC>
    ) async throws -> [String] {
        let handshake = Handshake()
        let churner = Task {
            var old = churn
            var round = 0
            while !handshake.done.load(ordering: .acquiring) {
                guard handshake.asked.load(ordering: .acquiring) > round else {
                    try await Task.sleep(for: .milliseconds(1))
                    continue
                }
                // The oldest churn row lies before any position in ascending order and after it in
                // descending order; the new one is the newest row.
                if !old.isEmpty { try await registry.deleteVPC(tenantA, id: old.removeFirst()) }
                let added = try await registry.createVPC(tenantA, name: "churn\(round)", cidr: "10.200.0.0/16")
                old.append(added.id)
                round += 1
                handshake.completed.store(round, ordering: .releasing)
            }
        }
        var seen: [String] = []
        do {
            var token = ""
            for round in 1...100 {
                let result = try await page(token, seen.count)
                seen += result.items.map(\.id)
                token = result.nextPageToken
                if token.isEmpty { break }
                handshake.asked.store(round, ordering: .releasing)
                while handshake.completed.load(ordering: .acquiring) < round {
                    try await Task.sleep(for: .milliseconds(1))
                }
            }
        } catch {
            handshake.done.store(true, ordering: .releasing)
            _ = await churner.result
            throw error
        }
        handshake.done.store(true, ordering: .releasing)
        try await churner.value
        return seen
    }

    /// `any` matches a resource carrying at least one of the keys named (with one of its values),
    /// `all` (the default) every one, for services and endpoints alike.
    @Test(arguments: StoreKind.underTest)
    func tagFiltersMatchAnyOrAllKeys(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            let story = try await makeStory(registry, approval: false)
            var made: [String: EndpointService] = [:]
            for (i, (name, tags)) in [
                ("blue", [Tag(key: "team", value: "blue")]), ("prod", [Tag(key: "env", value: "prod")]),
                ("both", [Tag(key: "team", value: "blue"), Tag(key: "env", value: "prod")]),
                ("red", [Tag(key: "team", value: "red")]),
            ].enumerated() {
                var request = spec(story.provider, ports: [PortMapping(terminalPort: 90 + i, servicePort: 9100 + i)])
                request.name = name
                request.tags = tags
                made[name] = try await registry.createEndpointService(tenantA, request)
            }
            func services(_ tags: [Tag], _ match: TagMatch) async throws -> Set<String> {
                let filter = EndpointServiceFilter(tags: tags, tagMatch: match)
                let ids = try await store.read { try await $0.listEndpointServices(listQuery(), filter: filter) }.items.map(\.id)
                return Set(ids.compactMap { id in made.first { $0.value.id == id }?.key })
            }
            let blueOrProd = [Tag(key: "team", value: "blue"), Tag(key: "env", value: "prod")]
            #expect(try await services(blueOrProd, .all) == ["both"])
            #expect(try await services(blueOrProd, .any) == ["blue", "prod", "both"])
            // A key's values stay alternatives under either mode; an empty value is any value.
            let teams = [Tag(key: "team", value: "red"), Tag(key: "team", value: "blue")]
            #expect(try await services(teams, .all) == ["blue", "both", "red"])
            #expect(try await services(teams + [Tag(key: "env", value: "")], .any) == ["blue", "prod", "both", "red"])
            #expect(try await services([Tag(key: "env", value: "dev"), Tag(key: "owner", value: "")], .any).isEmpty)

            var endpointSpec = endpointSpec(story)
            endpointSpec.tags = [Tag(key: "app", value: "web")]
            let web = try await registry.createEndpoint(tenantB, endpointSpec)
            endpointSpec.tags = [Tag(key: "tier", value: "db")]
            let db = try await registry.createEndpoint(tenantB, endpointSpec)
            func endpoints(_ match: TagMatch) async throws -> Set<String> {
                let filter = EndpointFilter(tags: [Tag(key: "app", value: "web"), Tag(key: "tier", value: "db")], tagMatch: match)
                return Set(try await store.read { try await $0.listEndpoints(listQuery(owner: "tenant-b"), filter: filter) }
                    .items.map(\.id))
            }
            #expect(try await endpoints(.any) == [web.id, db.id])
            #expect(try await endpoints(.all).isEmpty)
        }
    }

    /// A tag filter sees every write that sets tags (create, add, remove, delete), in the default order
    /// over the region (read from the tag table's index, issue 14) and in one owner's list or by
    /// updated_at (each row's tags probed), with an exact `totalCount` and token pages that neither
    /// repeat nor skip; status counts follow decisions and deletes.
    @Test(arguments: StoreKind.underTest)
    func tagFiltersFollowEveryTagWrite(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            let story = try await makeStory(registry, approval: true)
            var made: [Endpoint] = []
            for i in 0..<5 {
                var request = endpointSpec(story)
                request.tags = [Tag(key: "env", value: i % 2 == 0 ? "dev" : "prod"), Tag(key: "app", value: "a\(i)")]
                made.append(try await registry.createEndpoint(tenantB, request))
            }
            let queries = [
                listQuery(ascending: false, limit: 2), listQuery(owner: "tenant-b", limit: 2),
                listQuery(sortKey: .updatedAt, limit: 2),
            ]
            func matches(_ tags: [Tag], _ match: TagMatch = .all) async throws -> [Set<String>] {
                var results: [Set<String>] = []
                for query in queries {
                    var query = query
                    var seen: [String] = []
                    var total: Set<Int> = []
                    while true {
                        let page = try await store.read { [query] in
                            try await $0.listEndpoints(query, filter: EndpointFilter(tags: tags, tagMatch: match))
                        }
                        seen += page.items.map(\.id)
                        total.insert(page.totalCount)
                        guard let next = page.next else { break }
                        query.after = next
                    }
                    #expect(Set(seen).count == seen.count, "\(query): a row repeated")
                    #expect(total == [seen.count], "\(query): totalCount \(total), rows \(seen.count)")
                    results.append(Set(seen))
                }
                return results
            }
            let ids = made.map(\.id)
            let dev = [Tag(key: "env", value: "dev")]
            #expect(try await matches(dev) == Array(repeating: [ids[0], ids[2], ids[4]], count: 3))
            _ = try await registry.addEndpointTags(tenantB, id: ids[1], tags: [Tag(key: "env", value: "dev")])
            _ = try await registry.removeEndpointTags(tenantB, id: ids[0], TagRemoval(keys: ["env"]))
            try await registry.deleteEndpoint(tenantB, id: ids[4])
            #expect(try await matches(dev) == Array(repeating: [ids[1], ids[2]], count: 3))
            #expect(try await matches(dev + [Tag(key: "app", value: "a2")]) == Array(repeating: [ids[2]], count: 3))
            #expect(try await matches([Tag(key: "env", value: "prod")]) == Array(repeating: [ids[3]], count: 3))
            #expect(try await matches([Tag(key: "env", value: "")]) == Array(repeating: [ids[1], ids[2], ids[3]], count: 3))

            // Status filters' counts follow decisions (an update of the status) and deletes.
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [ids[1], ids[2]], accept: true)
            try await registry.deleteEndpoint(tenantB, id: ids[0])
            for owner in [nil, "tenant-b"] {
                for (status, expected) in [(EndpointStatus.accepted, [ids[1], ids[2]]), (.pendingAcceptance, [ids[3]])] {
                    let page = try await store.read {
                        try await $0.listEndpoints(listQuery(owner: owner), filter: EndpointFilter(status: status))
                    }
                    #expect(Set(page.items.map(\.id)) == Set(expected), "\(status) \(owner ?? "region")")
                    #expect(page.totalCount == expected.count, "\(status) \(owner ?? "region")")
                }
                let all = try await store.read { try await $0.listEndpoints(listQuery(owner: owner), filter: EndpointFilter()) }
                #expect(all.totalCount == 3 && all.items.count == 3)
            }
        }
    }

    /// An endpoint's revision is stored and read back as written.
    @Test(arguments: StoreKind.underTest)
    func endpointRevisionsAreStored(_ kind: StoreKind) async throws {
        try await withRegistry(kind) { registry, store in
            let story = try await makeStory(registry, approval: true)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            #expect(endpoint.revision == 1)
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: true)
            let tagged = try await registry.addEndpointTags(tenantB, id: endpoint.id, tags: [Tag(key: "k", value: "v")])
            #expect(tagged.revision == 3)
            let stored = try await store.read { try await $0.endpoint(id: endpoint.id, visibleTo: .anyOwner(in: "r1")) }
            #expect(stored?.revision == 3)
            #expect(stored?.tags == [Tag(key: "k", value: "v")])
        }
    }
}

/// The pager's and the churner's counters: rounds asked for, rounds completed, and the end.
private final class Handshake: Sendable {
    let asked = Atomic<Int>(0)
    let completed = Atomic<Int>(0)
    let done = Atomic<Bool>(false)
}
