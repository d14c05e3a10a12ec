import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Lists: paging, order, filters")
struct ListTests {
    @Test func pagingDefaultsAndOrder() async throws {
        try await withRegistry { registry, _ in
            var created: [VPC] = []
            for i in 0..<12 {
                created.append(try await registry.createVPC(tenantA, name: "v\(i)", cidr: "10.\(i).0.0/16"))
            }
            let newestFirst = Array(created.reversed())
            let byDefault = try await registry.listVPCs(tenantA, page: PageRequest())
            #expect(byDefault.items == Array(newestFirst.prefix(10)))
            #expect(byDefault.totalCount == 12)

            let ascending = try await registry.listVPCs(tenantA, page: PageRequest(limit: 3, offset: 2, sortDir: "asc"))
            #expect(ascending.items == Array(created[2..<5]))
            #expect(ascending.totalCount == 12)

            for key in ["created_at", "create_at", "updated_at", "update_at", "CREATED_AT"] {
                let page = try await registry.listVPCs(tenantA, page: PageRequest(limit: 1000, sortKey: key, sortDir: "desc"))
                #expect(page.items == newestFirst, "sort key \(key)")
            }
            let pastTheEnd = try await registry.listVPCs(tenantA, page: PageRequest(limit: 5, offset: 12))
            #expect(pastTheEnd.items.isEmpty)
            #expect(pastTheEnd.totalCount == 12)
            #expect(try await registry.listVPCs(tenantA, page: PageRequest(limit: 1000)).items.count == 12)
        }
    }

    @Test func tiesAreBrokenByID() async throws {
        let fixed = Date(timeIntervalSince1970: 1_700_000_000)
        try await withRegistry(clock: { fixed }) { registry, _ in
            var created: [VPC] = []
            for i in 0..<4 {
                created.append(try await registry.createVPC(tenantA, name: "v\(i)", cidr: "10.\(i).0.0/16"))
            }
            #expect(Set(created.map(\.createdAt)).count == 1)
            let ids = created.map(\.id)  // id-0001 ... in creation order
            #expect(try await registry.listVPCs(tenantA, page: PageRequest()).items.map(\.id) == ids.reversed())
            #expect(try await registry.listVPCs(tenantA, page: PageRequest(sortDir: "asc")).items.map(\.id) == ids)
            #expect(try await registry.listVPCs(tenantA, page: PageRequest(limit: 2, offset: 1, sortDir: "asc")).items.map(\.id) == Array(ids[1...2]))
        }
    }

    @Test(arguments: [
        (PageRequest(limit: 1001), "LIMIT_OUT_OF_RANGE", "page.limit"),
        (PageRequest(limit: -1), "LIMIT_OUT_OF_RANGE", "page.limit"),
        (PageRequest(offset: -1), "OFFSET_OUT_OF_RANGE", "page.offset"),
        (PageRequest(sortKey: "name"), "SORT_KEY_INVALID", "page.sort_key"),
        (PageRequest(sortKey: "created"), "SORT_KEY_INVALID", "page.sort_key"),
        (PageRequest(sortDir: "up"), "SORT_DIR_INVALID", "page.sort_dir"),
        (PageRequest(sortDir: "descending"), "SORT_DIR_INVALID", "page.sort_dir"),
    ])
    func badPagesAreInvalidArguments(page: PageRequest, reason: String, field: String) async throws {
        try await withRegistry { registry, _ in
            await expectError(.invalidArgument, reason, field: field) { try await registry.listVPCs(tenantA, page: page) }
            await expectError(.invalidArgument, reason, field: field) {
                try await registry.listSubnets(tenantA, vpcID: nil, page: page)
            }
            await expectError(.invalidArgument, reason, field: field) {
                try await registry.listBackends(tenantA, kind: .vm, vpcID: nil, page: page)
            }
            await expectError(.invalidArgument, reason, field: field) {
                try await registry.listEndpointServices(tenantA, filter: .init(), page: page)
            }
        }
    }

    @Test func endpointServiceFilters() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var services: [EndpointService] = []
            for (i, name) in ["orders", "Order_Archive", "billing", ""].enumerated() {
                var request = spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 8000 + i)])
                request.name = name
                services.append(try await registry.createEndpointService(tenantA, request))
            }
            let page = PageRequest(sortDir: "asc")
            func list(_ filter: EndpointServiceFilter) async throws -> [EndpointService] {
                try await registry.listEndpointServices(tenantA, filter: filter, page: page).items
            }
            #expect(try await list(.init(name: "order")) == Array(services[0...1]))
            #expect(try await list(.init(name: "ORDER")) == Array(services[0...1]))
            #expect(try await list(.init(name: "_")) == [services[1]])
            #expect(try await list(.init(name: "%")) == [])
            #expect(try await list(.init(name: "")) == services)
            #expect(try await list(.init(id: services[2].id)) == [services[2]])
            #expect(try await list(.init(id: "")) == services)
            #expect(try await list(.init(status: .available)) == services)
            #expect(try await list(.init(status: .creating)) == [])
            #expect(try await list(.init(name: "order", id: services[2].id)) == [])
            let filtered = try await registry.listEndpointServices(tenantA, filter: .init(name: "r"), page: PageRequest(limit: 1))
            #expect(filtered.items.count == 1)
            #expect(filtered.totalCount == 2)
        }
    }
}
