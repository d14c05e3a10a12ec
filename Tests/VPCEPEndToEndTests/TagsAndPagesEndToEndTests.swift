import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// Tags after create, tag filters matching any or all keys, and page tokens (issue 13), through a real
/// server process: the RPCs with the client library, and the CLI (`vpcep tag`, `--match`, `--page-token`,
/// `--all`).
@Suite("Tags and page tokens end to end", .timeLimit(.minutes(3)))
struct TagsAndPagesEndToEndTests {
    @Test("tag RPCs: add, remove, revision checks, idempotency keys, errors; refusals change nothing")
    func tagRPCs() async throws {
        try await withServer { server in
            let alice = try server.client("alice")
            let bob = try server.client("bob")
            let (service, endpoint) = try await Network.endpointOnProvidersService(provider: alice, consumer: bob)

            let tagged = try await alice.addEndpointServiceTags(AddTagsRequest(
                id: service.id, tags: [Tag(key: "env", value: "prod"), Tag(key: "team", value: "blue")], expectedRevision: 1))
            #expect(tagged.tags == [Tag(key: "env", value: "prod"), Tag(key: "team", value: "blue")])
            #expect(tagged.revision == 2)
            let untagged = try await alice.removeEndpointServiceTags(RemoveTagsRequest(
                id: service.id, keys: ["team", "absent"], tags: [Tag(key: "env", value: "dev")]))
            #expect(untagged.tags == [Tag(key: "env", value: "prod")] && untagged.revision == 3)

            #expect(endpoint.revision == 1)
            var keyed = CallOptions()
            keyed.idempotencyKey = "tag-endpoint-1"
            let endpointTagged = try await bob.addEndpointTags(
                AddTagsRequest(id: endpoint.id, tags: [Tag(key: "app", value: "web")]), options: keyed)
            #expect(endpointTagged.tags == [Tag(key: "app", value: "web")] && endpointTagged.revision == 2)
            // A retry with the key returns the first result and changes nothing more.
            #expect(try await bob.addEndpointTags(
                AddTagsRequest(id: endpoint.id, tags: [Tag(key: "app", value: "web")]), options: keyed) == endpointTagged)
            #expect(try await bob.getEndpoint(GetEndpointRequest(id: endpoint.id)).revision == 2)

            let serviceBefore = try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id))
            let endpointBefore = try await bob.getEndpoint(GetEndpointRequest(id: endpoint.id))
            await expectFailure(.aborted, "REVISION_MISMATCH", field: "expected_revision") { () async throws(VPCEPError) in
                try await alice.addEndpointServiceTags(AddTagsRequest(id: service.id, tags: [Tag(key: "x", value: "")], expectedRevision: 1))
            }
            await expectFailure(.aborted, "REVISION_MISMATCH", field: "expected_revision") { () async throws(VPCEPError) in
                try await bob.removeEndpointTags(RemoveTagsRequest(id: endpoint.id, keys: ["app"], expectedRevision: 1))
            }
            await expectFailure(.invalidArgument, "TAG_INVALID", field: "tags[0].key") { () async throws(VPCEPError) in
                try await alice.addEndpointServiceTags(AddTagsRequest(id: service.id, tags: [Tag(key: " lead", value: "")]))
            }
            await expectFailure(.invalidArgument, "TOO_MANY_TAGS", field: "tags") { () async throws(VPCEPError) in
                try await bob.addEndpointTags(AddTagsRequest(
                    id: endpoint.id, tags: (0..<20).map { Tag(key: "k\($0)", value: "") }))
            }
            await expectFailure(.invalidArgument, "TAGS_REQUIRED", field: "keys") { () async throws(VPCEPError) in
                try await bob.removeEndpointTags(RemoveTagsRequest(id: endpoint.id))
            }
            await expectFailure(.notFound, "SERVICE_NOT_FOUND", field: "id") { () async throws(VPCEPError) in
                try await bob.addEndpointServiceTags(AddTagsRequest(id: service.id, tags: [Tag(key: "mine", value: "")]))
            }
            await expectFailure(.notFound, "ENDPOINT_NOT_FOUND", field: "id") { () async throws(VPCEPError) in
                try await alice.removeEndpointTags(RemoveTagsRequest(id: endpoint.id, keys: ["app"]))
            }
            #expect(try await alice.getEndpointService(GetEndpointServiceRequest(id: service.id)) == serviceBefore)
            #expect(try await bob.getEndpoint(GetEndpointRequest(id: endpoint.id)) == endpointBefore)

            // The history shows each change as `updated`, tags among the changed fields.
            let history = try await alice.listHistory(ListHistoryRequest(resourceId: service.id, page: PageRequest(sortDir: "asc")))
            let updates = history.items.filter { $0.type == .updated }
            #expect(updates.count == 2)
            #expect(updates.allSatisfy { $0.changedFields.contains("tags") })
        }
    }

    @Test("tag filters: ALL by default, ANY on request, unknown modes refused")
    func tagMatch() async throws {
        try await withServer { server in
            let alice = try server.client("alice")
            let network = try await Network.make(alice)
            var ids: [String: String] = [:]
            for (i, (name, tags)) in [
                ("blue", [Tag(key: "team", value: "blue")]), ("prod", [Tag(key: "env", value: "prod")]),
                ("both", [Tag(key: "team", value: "blue"), Tag(key: "env", value: "prod")]),
            ].enumerated() {
                var request = network.serviceRequest(name: name, ports: [(UInt32(80 + i), UInt32(8080 + i))])
                request.tags = tags
                ids[name] = try await alice.createEndpointService(request).id
            }
            let filter = [Tag(key: "team", value: "blue"), Tag(key: "env", value: "prod")]
            func names(_ match: TagMatch) async throws -> Set<String> {
                let listed = try await alice.listEndpointServices(ListEndpointServicesRequest(tags: filter, tagMatch: match))
                return Set(listed.items.map(\.name))
            }
            #expect(try await names(.unspecified) == ["both"])
            #expect(try await names(.all) == ["both"])
            #expect(try await names(.any) == ["blue", "prod", "both"])
            await expectFailure(.invalidArgument, "ENUM_VALUE_UNKNOWN", field: "tag_match") { () async throws(VPCEPError) in
                try await alice.listEndpoints(ListEndpointsRequest(tags: filter, tagMatch: TagMatch(rawValue: 7)))
            }

            let table = try await server.cli("alice", "service", "list", "--tag", "team=blue", "--tag", "env=prod", "--match", "any", "--quiet")
            #expect(table.status == 0, "\(table.stderr)")
            #expect(Set(table.stdout.split(separator: "\n").map(String.init)) == Set(ids.values))
        }
    }

    @Test("page tokens over the wire and in the CLI: --page-token, --all, refusals")
    func pageTokens() async throws {
        try await withServer { server in
            let alice = try server.client("alice")
            var created: [String] = []
            for i in 0..<7 {
                created.append(try await alice.createVpc(CreateVpcRequest(name: "v\(i)", cidr: "10.\(i).0.0/16")).id)
            }
            let first = try await alice.listVpcs(ListVpcsRequest(page: PageRequest(limit: 3, sortDir: "asc")))
            #expect(first.items.map(\.id) == Array(created[0..<3]) && first.totalCount == 7)
            let second = try await alice.listVpcs(ListVpcsRequest(page: PageRequest(limit: 3, sortDir: "asc", pageToken: first.nextPageToken)))
            #expect(second.items.map(\.id) == Array(created[3..<6]) && second.totalCount == 7)
            let third = try await alice.listVpcs(ListVpcsRequest(page: PageRequest(limit: 3, sortDir: "asc", pageToken: second.nextPageToken)))
            #expect(third.items.map(\.id) == [created[6]] && third.nextPageToken.isEmpty)
            await expectFailure(.invalidArgument, "PAGE_TOKEN_MISMATCH", field: "page.page_token") { () async throws(VPCEPError) in
                try await alice.listVpcs(ListVpcsRequest(page: PageRequest(limit: 3, sortDir: "desc", pageToken: first.nextPageToken)))
            }
            await expectFailure(.invalidArgument, "PAGE_TOKEN_WITH_OFFSET", field: "page.offset") { () async throws(VPCEPError) in
                try await alice.listVpcs(ListVpcsRequest(page: PageRequest(offset: 3, sortDir: "asc", pageToken: first.nextPageToken)))
            }

            // The CLI: a table says how to go on; --page-token continues; --all follows every token.
            let table = try await server.cli("alice", "vpc", "list", "--limit", "3", "--sort-dir", "asc")
            #expect(table.status == 0, "\(table.stderr)")
            #expect(table.stdout.contains("--page-token \(first.nextPageToken)"), "\(table.stdout)")
            let next = try await server.cli(
                "alice", "vpc", "list", "--limit", "3", "--sort-dir", "asc", "--page-token", first.nextPageToken, "--quiet")
            #expect(next.stdout.split(separator: "\n").map(String.init) == Array(created[3..<6]))
            let all = try await server.cliJSON("alice", "vpc", "list", "--limit", "2", "--sort-dir", "asc", "--all")
            #expect(all.items.compactMap { $0["id"] as? String } == created)
            #expect((all["next_page_token"] as? String ?? "").isEmpty)
            try await server.cliFailure(
                "alice", "vpc", "list", "--offset", "1", "--page-token", first.nextPageToken,
                exit: 3, code: "INVALID_ARGUMENT", reason: "PAGE_TOKEN_WITH_OFFSET", field: "page.offset")
            try await server.cliFailure(
                "alice", "vpc", "list", "--page-token", "not-a-token",
                exit: 3, code: "INVALID_ARGUMENT", reason: "PAGE_TOKEN_INVALID", field: "page.page_token")
        }
    }

    @Test("vpcep tag add|remove finds whether ID is a service or an endpoint")
    func tagCLI() async throws {
        try await withServer { server in
            let net = try await server.cliNetwork("alice")
            let service = try await server.cliID(
                "alice", "service", "create", "--vpc", net.vpc, "--backend-type", "lb", "--backend", net.loadBalancer,
                "--port", "80:8080", "--no-approval", "--tag", "env=dev")
            _ = try await server.cliJSON("alice", "permission", "add", service, "iam:domain::bob")
            let bobNet = try await server.cliNetwork("bob", loadBalancer: false)
            let endpoint = try await server.cliID(
                "bob", "endpoint", "create", "--service", service, "--vpc", bobNet.vpc, "--subnet", bobNet.subnet)

            let added = try await server.cliJSON("alice", "tag", "add", service, "env=prod", "team=blue")
            #expect(added["id"] as? String == service)
            #expect(added["revision"] as? Int == 2)
            #expect((added["tags"] as? [[String: Any]])?.compactMap { $0["key"] as? String } == ["env", "team"])
            let removed = try await server.cliJSON("alice", "tag", "remove", service, "team", "env=other", "--revision", "2")
            #expect((removed["tags"] as? [[String: Any]])?.compactMap { $0["value"] as? String } == ["prod"])
            #expect(removed["revision"] as? Int == 3)

            let onEndpoint = try await server.cliJSON("bob", "tag", "add", endpoint, "app=web")
            #expect(onEndpoint["id"] as? String == endpoint && onEndpoint["revision"] as? Int == 2)
            #expect(onEndpoint["marker_id"] != nil, "an endpoint comes back")

            let before = try await server.cli("alice", "service", "get", service, "--output", "json")
            try await server.cliFailure(
                "alice", "tag", "add", service, "x=1", "--revision", "1",
                exit: 5, code: "ABORTED", reason: "REVISION_MISMATCH", field: "expected_revision")
            try await server.cliFailure(
                "bob", "tag", "add", service, "x=1", exit: 4, code: "NOT_FOUND", reason: "ENDPOINT_NOT_FOUND", field: "id")
            try await server.cliFailure(
                "alice", "tag", "add", service, "_sys_x=1", exit: 3, code: "INVALID_ARGUMENT", reason: "TAG_INVALID", field: "tags[0].key")
            let after = try await server.cli("alice", "service", "get", service, "--output", "json")
            #expect(before.status == 0 && after.stdout == before.stdout)
        }
    }
}
