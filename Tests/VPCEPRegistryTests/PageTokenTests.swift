import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// Cursor pagination (issue 13): `page_token` / `nextPageToken` on every list, bound to its query.
@Suite("Lists: page tokens")
struct PageTokenTests {
    /// Following tokens walks the whole list once in order, `totalCount` on every page, and the last
    /// page has no token; a page that ends exactly at the end has none either.
    @Test func tokensWalkEveryListOnce() async throws {
        try await withRegistry { registry, _ in
            var created: [String] = []
            for i in 0..<11 {
                created.append(try await registry.createVPC(tenantA, name: "v\(i)", cidr: "10.\(i).0.0/16").id)
            }
            for direction in ["asc", "desc"] {
                var seen: [String] = []
                var token = ""
                var pages = 0
                repeat {
                    let page = try await registry.listVPCs(tenantA, page: PageRequest(limit: 4, sortDir: direction, pageToken: token))
                    #expect(page.totalCount == 11)
                    seen += page.items.map(\.id)
                    token = page.nextPageToken
                    pages += 1
                } while !token.isEmpty
                #expect(seen == (direction == "asc" ? created : created.reversed()))
                #expect(pages == 3)
            }
            #expect(try await registry.listVPCs(tenantA, page: PageRequest(limit: 11)).nextPageToken.isEmpty)
            // An offset first page gives a token too: the next page continues after its last row.
            let byOffset = try await registry.listVPCs(tenantA, page: PageRequest(limit: 3, offset: 2, sortDir: "asc"))
            let next = try await registry.listVPCs(tenantA, page: PageRequest(limit: 3, sortDir: "asc", pageToken: byOffset.nextPageToken))
            #expect(next.items.map(\.id) == Array(created[5..<8]))
            // Paging with a changing limit is fine: the limit is not part of the query.
            let wider = try await registry.listVPCs(tenantA, page: PageRequest(limit: 100, sortDir: "asc", pageToken: byOffset.nextPageToken))
            #expect(wider.items.map(\.id) == Array(created[5...]) && wider.nextPageToken.isEmpty)
        }
    }

    /// Every list takes tokens: services, public services, endpoints, connections, permissions,
    /// subnets, backends.
    @Test func everyListPagesByToken() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false, allow: ["iam:domain::tenant-b", "*"])
            var second = spec(story.provider, ports: [PortMapping(terminalPort: 81, servicePort: 9001)])
            second.name = "second"
            _ = try await registry.createEndpointService(tenantA, second)
            for _ in 0..<3 { _ = try await registry.createEndpoint(tenantB, endpointSpec(story)) }
            let one = PageRequest(limit: 1)
            func walk<T>(_ list: (PageRequest) async throws -> ListResult<T>) async throws -> Int {
                var count = 0
                var token = ""
                repeat {
                    let page = try await list(PageRequest(limit: 1, pageToken: token))
                    count += page.items.count
                    token = page.nextPageToken
                } while !token.isEmpty && count < 100
                return count
            }
            #expect(try await walk { try await registry.listEndpointServices(tenantA, filter: .init(), page: $0) } == 2)
            #expect(try await walk { try await registry.listEndpoints(tenantB, filter: .init(), page: $0) } == 3)
            #expect(try await walk {
                try await registry.listConnections(tenantA, serviceID: story.service.id, serviceName: nil, filter: .init(), page: $0)
            } == 3)
            #expect(try await walk {
                try await registry.listPermissions(tenantA, serviceID: story.service.id, serviceName: nil, permission: nil, page: $0)
            } == 2)
            #expect(try await walk { try await registry.listSubnets(tenantA, vpcID: nil, page: $0) } == 1)
            #expect(try await walk { try await registry.listBackends(tenantA, kind: .vm, vpcID: nil, page: $0) } == 1)
            #expect(try await walk { try await registry.listPublicEndpointServices(tenantA, name: nil, id: nil, page: $0) } == 0)
            #expect(try await registry.listEndpoints(tenantB, filter: .init(), page: one).nextPageToken.isEmpty == false)
        }
    }

    /// A token is honoured only with the query it came from: other filters, another order, another
    /// list, another region or caller are `PAGE_TOKEN_MISMATCH`; text the server never issued is
    /// `PAGE_TOKEN_INVALID`; a token with an offset is `PAGE_TOKEN_WITH_OFFSET`; history takes none.
    @Test func tokensAreBoundToTheirQuery() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false)
            for i in 0..<3 {
                var request = spec(story.provider, ports: [PortMapping(terminalPort: 81 + i, servicePort: 9001 + i)])
                request.tags = [Tag(key: "team", value: "blue")]
                _ = try await registry.createEndpointService(tenantA, request)
            }
            let blue = EndpointServiceFilter(tags: [Tag(key: "team", value: "blue")])
            let first = try await registry.listEndpointServices(tenantA, filter: blue, page: PageRequest(limit: 1))
            let token = first.nextPageToken
            #expect(!token.isEmpty)
            // The same query continues.
            #expect(try await registry.listEndpointServices(tenantA, filter: blue, page: PageRequest(limit: 1, pageToken: token)).items.count == 1)

            let mismatches: [(String, () async throws -> Any)] = [
                ("no filter", { try await registry.listEndpointServices(tenantA, filter: .init(), page: PageRequest(pageToken: token)) }),
                ("any instead of all", {
                    var any = blue
                    any.tagMatch = .any
                    return try await registry.listEndpointServices(tenantA, filter: any, page: PageRequest(pageToken: token))
                }),
                ("another order", { try await registry.listEndpointServices(tenantA, filter: blue, page: PageRequest(sortDir: "asc", pageToken: token)) }),
                ("another sort key", {
                    try await registry.listEndpointServices(tenantA, filter: blue, page: PageRequest(sortKey: "updated_at", pageToken: token))
                }),
                ("another list", { try await registry.listVPCs(tenantA, page: PageRequest(pageToken: token)) }),
                ("another region", { try await registry.listEndpointServices(tenantAInR2, filter: blue, page: PageRequest(pageToken: token)) }),
                ("another caller", { try await registry.listEndpointServices(tenantB, filter: blue, page: PageRequest(pageToken: token)) }),
            ]
            for (what, call) in mismatches {
                await expectError(.invalidArgument, "PAGE_TOKEN_MISMATCH", field: "page.page_token") { try await call() }
                _ = what
            }
            for garbage in ["x", "eyJ2IjoxfQ", token + "A", String(token.dropLast(3)), "%%%%"] {
                await expectError(.invalidArgument, "PAGE_TOKEN_INVALID", field: "page.page_token") {
                    try await registry.listEndpointServices(tenantA, filter: blue, page: PageRequest(pageToken: garbage))
                }
            }
            await expectError(.invalidArgument, "PAGE_TOKEN_WITH_OFFSET", field: "page.offset") {
                try await registry.listEndpointServices(tenantA, filter: blue, page: PageRequest(offset: 1, pageToken: token))
            }
            await expectError(.invalidArgument, "PAGE_TOKEN_INVALID", field: "page.page_token") {
                try await registry.listHistory(tenantA, resourceID: nil, since: nil, until: nil, page: PageRequest(pageToken: token))
            }
        }
    }
}
