import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// Tags after create (issue 13): adding and removing tags of services and endpoints, with revision
/// checks, idempotency keys and `updated` events; refused calls change nothing.
@Suite("Tags after create")
struct TagChangeTests {
    @Test func addingSetsNewKeysAndNewValuesAndMovesTheRevision() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var request = spec(network)
            request.tags = [Tag(key: "env", value: "dev"), Tag(key: "team", value: "blue")]
            let service = try await registry.createEndpointService(tenantA, request)
            #expect(service.revision == 1)

            let added = try await registry.addEndpointServiceTags(
                tenantA, id: service.id, tags: [Tag(key: "env", value: "prod"), Tag(key: "cost", value: "42")])
            // An existing key keeps its place and takes the new value; new keys follow.
            #expect(added.tags == [Tag(key: "env", value: "prod"), Tag(key: "team", value: "blue"), Tag(key: "cost", value: "42")])
            #expect(added.revision == 2)
            #expect(added.updatedAt > service.updatedAt)
            #expect(try await registry.getEndpointService(tenantA, id: service.id, serviceName: nil).tags == added.tags)

            // What is already there is no change: no new revision, no event.
            let head = try await registry.listHistory(tenantA, resourceID: service.id, since: nil, until: nil, page: PageRequest()).totalCount
            let again = try await registry.addEndpointServiceTags(tenantA, id: service.id, tags: [Tag(key: "env", value: "prod")])
            #expect(again.revision == 2 && again.updatedAt == added.updatedAt)
            #expect(try await registry.listHistory(tenantA, resourceID: service.id, since: nil, until: nil, page: PageRequest()).totalCount == head)
        }
    }

    @Test func removingByKeyOrByExactValueAndAbsentKeysAreNoError() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var request = spec(network)
            request.tags = [Tag(key: "a", value: "1"), Tag(key: "b", value: "2"), Tag(key: "c", value: "3")]
            let service = try await registry.createEndpointService(tenantA, request)

            // A key named with another value than it has, and a key it does not carry: nothing changes.
            let unchanged = try await registry.removeEndpointServiceTags(
                tenantA, id: service.id, TagRemoval(keys: ["absent"], tags: [Tag(key: "b", value: "other")]))
            #expect(unchanged.tags == request.tags && unchanged.revision == 1)

            let removed = try await registry.removeEndpointServiceTags(
                tenantA, id: service.id, TagRemoval(keys: ["a", "absent"], tags: [Tag(key: "c", value: "3")]))
            #expect(removed.tags == [Tag(key: "b", value: "2")])
            #expect(removed.revision == 2)
        }
    }

    @Test func tagChangesAreUpdatedEventsWithTheStateBefore() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false)
            _ = try await registry.addEndpointServiceTags(tenantA, id: story.service.id, tags: [Tag(key: "k", value: "v")])
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.addEndpointTags(tenantB, id: endpoint.id, tags: [Tag(key: "k", value: "v")])
            _ = try await registry.removeEndpointTags(tenantB, id: endpoint.id, TagRemoval(keys: ["k"]))

            let serviceHistory = try await registry.listHistory(
                tenantA, resourceID: story.service.id, since: nil, until: nil, page: PageRequest(sortDir: "asc"))
            let serviceUpdate = try #require(serviceHistory.items.last)
            #expect(serviceUpdate.type == .updated)
            #expect(serviceUpdate.revisionBefore == 1 && serviceUpdate.revisionAfter == 2)
            guard case .endpointService(let before)? = serviceUpdate.previous, case .endpointService(let after) = serviceUpdate.state else {
                Issue.record("expected service states, got \(serviceUpdate)")
                return
            }
            #expect(before.tags.isEmpty && after.tags == [Tag(key: "k", value: "v")])

            let endpointHistory = try await registry.listHistory(
                tenantB, resourceID: endpoint.id, since: nil, until: nil, page: PageRequest(sortDir: "asc"))
            #expect(endpointHistory.items.map(\.type) == [.created, .updated, .updated])
            guard case .endpoint(let tagged) = endpointHistory.items[1].state,
                case .endpoint(let untagged) = endpointHistory.items[2].state
            else {
                Issue.record("expected endpoint states")
                return
            }
            #expect(tagged.tags == [Tag(key: "k", value: "v")] && tagged.revision == 2)
            #expect(untagged.tags.isEmpty && untagged.revision == 3)
        }
    }

    @Test func endpointTagsFollowTheEndpointsRevision() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: true)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            #expect(endpoint.revision == 1)
            let tagged = try await registry.addEndpointTags(
                tenantB, id: endpoint.id, tags: [Tag(key: "app", value: "web")], expectedRevision: 1)
            #expect(tagged.revision == 2 && tagged.tags == [Tag(key: "app", value: "web")])
            // The provider's decision is a change of the endpoint too: a tag change made against the
            // revision before it is refused, and changes nothing.
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: true)
            let before = try await snapshot(registry)
            await expectError(.aborted, "REVISION_MISMATCH", field: "expected_revision") {
                try await registry.addEndpointTags(tenantB, id: endpoint.id, tags: [Tag(key: "x", value: "")], expectedRevision: 2)
            }
            await expectError(.aborted, "REVISION_MISMATCH", field: "expected_revision") {
                try await registry.removeEndpointTags(tenantB, id: endpoint.id, TagRemoval(keys: ["app"]), expectedRevision: 2)
            }
            #expect(try await snapshot(registry) == before)
            let current = try await registry.getEndpoint(tenantB, id: endpoint.id)
            #expect(current.revision == 3)
            let removed = try await registry.removeEndpointTags(
                tenantB, id: endpoint.id, TagRemoval(tags: [Tag(key: "app", value: "web")]), expectedRevision: 3)
            #expect(removed.tags.isEmpty && removed.revision == 4)
            // An endpoint update moves the revision as well.
            let updated = try await registry.updateEndpoint(tenantB, id: endpoint.id, EndpointUpdate(description: "d"))
            #expect(updated.revision == 5)
        }
    }

    /// Every rule, refused with its reason and field; every refusal leaves the stored state as it was.
    @Test func refusedTagChangesChangeNothing() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false)
            let service = story.service
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let nineteen = (0..<19).map { Tag(key: "k\($0)", value: "v") }
            _ = try await registry.addEndpointServiceTags(tenantA, id: service.id, tags: nineteen)
            let before = try await snapshot(registry)

            await expectError(.invalidArgument, "ID_REQUIRED", field: "id") {
                try await registry.addEndpointServiceTags(tenantA, id: "", tags: [Tag(key: "a", value: "")])
            }
            await expectError(.invalidArgument, "TAGS_REQUIRED", field: "tags") {
                try await registry.addEndpointServiceTags(tenantA, id: service.id, tags: [])
            }
            await expectError(.invalidArgument, "TAGS_REQUIRED", field: "keys") {
                try await registry.removeEndpointTags(tenantB, id: endpoint.id, TagRemoval())
            }
            await expectError(.invalidArgument, "TAG_INVALID", field: "tags[1].key") {
                try await registry.addEndpointTags(tenantB, id: endpoint.id, tags: [Tag(key: "ok", value: ""), Tag(key: "_sys_x", value: "")])
            }
            await expectError(.invalidArgument, "TAG_INVALID", field: "tags[0].value") {
                try await registry.addEndpointServiceTags(tenantA, id: service.id, tags: [Tag(key: "ok", value: "<b>")])
            }
            await expectError(.invalidArgument, "TAG_DUPLICATE_KEY", field: "tags[1].key") {
                try await registry.addEndpointServiceTags(tenantA, id: service.id, tags: [Tag(key: "d", value: "1"), Tag(key: "d", value: "2")])
            }
            await expectError(.invalidArgument, "TAG_INVALID", field: "keys[0]") {
                try await registry.removeEndpointServiceTags(tenantA, id: service.id, TagRemoval(keys: [""]))
            }
            // 19 + 2 new keys is over the limit of 20; re-valuing an existing key is not a new one.
            await expectError(.invalidArgument, "TOO_MANY_TAGS", field: "tags") {
                try await registry.addEndpointServiceTags(
                    tenantA, id: service.id, tags: [Tag(key: "n1", value: ""), Tag(key: "n2", value: "")])
            }
            await expectError(.aborted, "REVISION_MISMATCH", field: "expected_revision") {
                try await registry.addEndpointServiceTags(tenantA, id: service.id, tags: [Tag(key: "a", value: "")], expectedRevision: 1)
            }
            // Another tenant's resources are not found, an operator's change of a tenant's is owner-only.
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.addEndpointServiceTags(tenantB, id: service.id, tags: [Tag(key: "a", value: "")])
            }
            await expectError(.notFound, "ENDPOINT_NOT_FOUND", field: "id") {
                try await registry.addEndpointTags(tenantA, id: endpoint.id, tags: [Tag(key: "a", value: "")])
            }
            await expectError(.notFound, "ENDPOINT_NOT_FOUND", field: "id") {
                try await registry.removeEndpointTags(tenantA, id: endpoint.id, TagRemoval(keys: ["a"]))
            }
            await expectError(.permissionDenied, "OWNER_ONLY", field: nil) {
                try await registry.removeEndpointServiceTags(operatorR1, id: service.id, TagRemoval(keys: ["k1"]))
            }
            #expect(try await snapshot(registry) == before)

            // At the limit exactly is fine, and so is re-valuing at the limit.
            let full = try await registry.addEndpointServiceTags(tenantA, id: service.id, tags: [Tag(key: "n1", value: "")])
            #expect(full.tags.count == 20)
            #expect(try await registry.addEndpointServiceTags(tenantA, id: service.id, tags: [Tag(key: "k0", value: "w")]).tags.count == 20)
        }
    }

    @Test func idempotencyKeysReturnTheFirstOutcome() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let service = try await registry.createEndpointService(tenantA, spec(network))
            var keyed = tenantA
            keyed.idempotencyKey = "tag-1"
            let first = try await registry.addEndpointServiceTags(keyed, id: service.id, tags: [Tag(key: "a", value: "1")])
            _ = try await registry.removeEndpointServiceTags(tenantA, id: service.id, TagRemoval(keys: ["a"]))
            // The retry returns the first result and does not add the tag again.
            let retried = try await registry.addEndpointServiceTags(keyed, id: service.id, tags: [Tag(key: "a", value: "1")])
            #expect(retried == first)
            #expect(try await registry.getEndpointService(tenantA, id: service.id, serviceName: nil).tags.isEmpty)
            await expectError(.invalidArgument, "IDEMPOTENCY_KEY_REUSED", field: "idempotency_key") {
                try await registry.addEndpointServiceTags(keyed, id: service.id, tags: [Tag(key: "a", value: "2")])
            }
            await expectError(.invalidArgument, "IDEMPOTENCY_KEY_REUSED", field: "idempotency_key") {
                try await registry.removeEndpointServiceTags(keyed, id: service.id, TagRemoval(keys: ["a"]))
            }
        }
    }

    /// Concurrent tag changes against one revision: exactly one wins, the others are refused.
    @Test func concurrentChangesAgainstOneRevisionLetOneWin() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let service = try await registry.createEndpointService(tenantA, spec(network))
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<10 {
                    group.addTask {
                        do {
                            _ = try await registry.addEndpointServiceTags(
                                tenantA, id: service.id, tags: [Tag(key: "k\(i)", value: "")], expectedRevision: 1)
                            return true
                        } catch {
                            return false
                        }
                    }
                }
                return await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 }.count == 1)
            let final = try await registry.getEndpointService(tenantA, id: service.id, serviceName: nil)
            #expect(final.revision == 2 && final.tags.count == 1)
        }
    }

    /// List filters: `all` (the default) needs every key named, `any` one of them; tags changed after
    /// create are what the filters see.
    @Test func tagFiltersMatchAllOrAnyKeyAfterChanges() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false)
            let other = try await registry.createEndpointService(
                tenantA, spec(story.provider, ports: [PortMapping(terminalPort: 81, servicePort: 9001)]))
            _ = try await registry.addEndpointServiceTags(tenantA, id: story.service.id, tags: [Tag(key: "team", value: "blue")])
            _ = try await registry.addEndpointServiceTags(
                tenantA, id: other.id, tags: [Tag(key: "team", value: "blue"), Tag(key: "env", value: "prod")])
            let filter = [Tag(key: "team", value: "blue"), Tag(key: "env", value: "prod")]
            func services(_ match: TagMatch) async throws -> Set<String> {
                Set(try await registry.listEndpointServices(
                    tenantA, filter: EndpointServiceFilter(tags: filter, tagMatch: match), page: PageRequest()).items.map(\.id))
            }
            #expect(try await services(.all) == [other.id])
            #expect(try await services(.any) == [story.service.id, other.id])
            _ = try await registry.removeEndpointServiceTags(tenantA, id: other.id, TagRemoval(keys: ["team", "env"]))
            #expect(try await services(.all).isEmpty)
            #expect(try await services(.any) == [story.service.id])

            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.addEndpointTags(tenantB, id: endpoint.id, tags: [Tag(key: "env", value: "prod")])
            let any = try await registry.listEndpoints(tenantB, filter: EndpointFilter(tags: filter, tagMatch: .any), page: PageRequest())
            #expect(any.items.map(\.id) == [endpoint.id] && any.totalCount == 1)
            let all = try await registry.listEndpoints(tenantB, filter: EndpointFilter(tags: filter), page: PageRequest())
            #expect(all.items.isEmpty && all.totalCount == 0)
            // The filters' own limits hold in either mode.
            await expectError(.invalidArgument, "TAG_FILTER_INVALID", field: "tags[0].key") {
                try await registry.listEndpoints(
                    tenantB, filter: EndpointFilter(tags: [Tag(key: "", value: "x")], tagMatch: .any), page: PageRequest())
            }
        }
    }
}
