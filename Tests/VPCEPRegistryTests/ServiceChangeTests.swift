import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Endpoint service update, delete, describe, public")
struct ServiceChangeTests {
    @Test func updateChangesTheGivenFieldsAndRenameKeepsTheID() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var request = spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 8080)])
            request.name = "old"
            let service = try await registry.createEndpointService(tenantA, request)
            let updated = try await registry.updateEndpointService(
                tenantA, id: service.id,
                EndpointServiceUpdate(
                    approvalEnabled: false, name: "new",
                    ports: [PortMapping(terminalPort: 443, servicePort: 8443), PortMapping(terminalPort: 80, servicePort: 8080)],
                    clientIPMode: .proxyOpen, description: "v2", expectedRevision: 1))
            #expect(updated.id == service.id)
            #expect(updated.name == "new")
            #expect(updated.serviceName == "r1.new.\(service.id)")
            #expect(!updated.approvalEnabled)
            #expect(updated.ports.map(\.terminalPort) == [443, 80])
            #expect(updated.clientIPMode == .proxyOpen)
            #expect(updated.clientIPNote.contains("PROXY protocol"))
            #expect(updated.description == "v2")
            #expect(updated.revision == 2)
            #expect(updated.updatedAt > service.updatedAt)
            #expect(updated.createdAt == service.createdAt)
            #expect(try await registry.getEndpointService(tenantA, id: nil, serviceName: "r1.new.\(service.id)") == updated)
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_name") {
                try await registry.getEndpointService(tenantA, id: nil, serviceName: service.serviceName)
            }
            // Only the fields given change; clearing the name gives `{region}.{id}`.
            let renamed = try await registry.updateEndpointService(tenantA, id: service.id, EndpointServiceUpdate(name: ""))
            #expect(renamed.serviceName == "r1.\(service.id)")
            #expect(renamed.ports == updated.ports)
            #expect(renamed.revision == 3)
            // Setting what is there already is no change.
            let same = try await registry.updateEndpointService(tenantA, id: service.id, EndpointServiceUpdate(description: "v2"))
            #expect(same == renamed)
        }
    }

    @Test func updateRefusesBadInputStaleRevisionsAndOthers() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let service = try await registry.createEndpointService(tenantA, spec(network))
            let sibling = try await registry.createEndpointService(
                tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 9090)]))
            await expectError(.aborted, "REVISION_MISMATCH", field: "expected_revision") {
                try await registry.updateEndpointService(tenantA, id: service.id, EndpointServiceUpdate(description: "x", expectedRevision: 7))
            }
            await expectError(.invalidArgument, "UPDATE_EMPTY", field: nil) {
                try await registry.updateEndpointService(tenantA, id: service.id, EndpointServiceUpdate(expectedRevision: 1))
            }
            await expectError(.invalidArgument, "ID_REQUIRED", field: "id") {
                try await registry.updateEndpointService(tenantA, id: "", EndpointServiceUpdate(description: "x"))
            }
            await expectError(.invalidArgument, "PORT_MAPPINGS_REQUIRED", field: "ports") {
                try await registry.updateEndpointService(tenantA, id: service.id, EndpointServiceUpdate(ports: []))
            }
            await expectError(.invalidArgument, "PORT_MAPPING_DUPLICATE", field: "ports[1].terminal_port") {
                try await registry.updateEndpointService(
                    tenantA, id: service.id,
                    EndpointServiceUpdate(ports: [PortMapping(terminalPort: 1, servicePort: 1), PortMapping(terminalPort: 1, servicePort: 2)]))
            }
            await expectError(.failedPrecondition, "SERVICE_PORT_CONFLICT", field: "ports[0].service_port") {
                try await registry.updateEndpointService(
                    tenantA, id: service.id, EndpointServiceUpdate(ports: [PortMapping(terminalPort: 80, servicePort: 9090)]))
            }
            // Its own service ports are no conflict.
            _ = try await registry.updateEndpointService(
                tenantA, id: sibling.id, EndpointServiceUpdate(ports: [PortMapping(terminalPort: 81, servicePort: 9090)]))
            await expectError(.invalidArgument, "SERVICE_NAME_INVALID", field: "name") {
                try await registry.updateEndpointService(tenantA, id: service.id, EndpointServiceUpdate(name: "no.dots"))
            }
            await expectError(.invalidArgument, "DESCRIPTION_INVALID", field: "description") {
                try await registry.updateEndpointService(tenantA, id: service.id, EndpointServiceUpdate(description: "a>b"))
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.updateEndpointService(tenantB, id: service.id, EndpointServiceUpdate(description: "x"))
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.updateEndpointService(tenantAInR2, id: service.id, EndpointServiceUpdate(description: "x"))
            }
            await expectError(.permissionDenied, "OWNER_ONLY", field: nil) {
                try await registry.updateEndpointService(operatorR1, id: service.id, EndpointServiceUpdate(description: "x"))
            }
            #expect(try await registry.getEndpointService(tenantA, id: service.id, serviceName: nil) == service)
        }
    }

    @Test func deleteIsRefusedWhileAnEndpointIsAccepted() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            let accepted = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let pending = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let rejected = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [accepted.id], accept: true)
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [rejected.id], accept: false)
            await expectError(.failedPrecondition, "SERVICE_IN_USE", field: "id") {
                try await registry.deleteEndpointService(tenantA, id: story.service.id)
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.deleteEndpointService(tenantB, id: story.service.id)
            }
            try await registry.deleteEndpoint(tenantB, id: accepted.id)
            try await registry.deleteEndpointService(tenantA, id: story.service.id)
            // Gone at once, with its allow-list.
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.getEndpointService(tenantA, id: story.service.id, serviceName: nil)
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.listPermissions(tenantA, serviceID: story.service.id, serviceName: nil, permission: nil, page: .init())
            }
            #expect(try await registry.getEndpoint(tenantB, id: pending.id).status == .failed)
            #expect(try await registry.getEndpoint(tenantB, id: rejected.id).status == .rejected)
            #expect(try await registry.getEndpoint(tenantB, id: rejected.id).serviceName == story.service.serviceName)
            #expect(try await registry.listQuotas(tenantA, type: .endpointService)[0].used == 0)
            // The backend is free again.
            try await registry.deleteBackend(tenantA, kind: .loadBalancer, id: story.provider.loadBalancer.id)
        }
    }

    @Test func describeAnswersOnlyThoseWhoMaySee() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: [])
            let tenantC = CallContext(caller: .tenant("tenant-c"), region: "r1")
            for caller in [tenantB, tenantC, tenantAInR2] {
                await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                    try await registry.describeEndpointService(caller, id: story.service.id, serviceName: nil)
                }
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_name") {
                try await registry.describeEndpointService(tenantB, id: nil, serviceName: story.service.serviceName)
            }
            await expectError(.invalidArgument, "ID_OR_NAME_REQUIRED", field: "id") {
                try await registry.describeEndpointService(tenantB, id: nil, serviceName: "")
            }
            let own = try await registry.describeEndpointService(tenantA, id: story.service.id, serviceName: nil)
            #expect(own == EndpointServiceSummary(story.service))
            _ = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, entries: [PermissionEntry(permission: "iam:domain::tenant-b")])
            let summary = try await registry.describeEndpointService(tenantB, id: nil, serviceName: story.service.serviceName)
            #expect(summary.id == story.service.id)
            #expect(summary.ownerID == "tenant-a")
            #expect(summary.approvalEnabled)
            #expect(!summary.isPublic)
            #expect(summary.serviceType == .interface)
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.describeEndpointService(tenantC, id: story.service.id, serviceName: nil)
            }
            _ = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, entries: [PermissionEntry(permission: "*")])
            #expect(try await registry.describeEndpointService(tenantC, id: story.service.id, serviceName: nil) == summary)
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.describeEndpointService(tenantAInR2, id: story.service.id, serviceName: nil)
            }
        }
    }

    @Test func publicServicesAreOperatorsAndListedToEveryone() async throws {
        try await withRegistry { registry, _ in
            let tenantNetwork = try await makeNetwork(registry, tenantA)
            var tenantRequest = spec(tenantNetwork)
            tenantRequest.isPublic = true
            await expectError(.permissionDenied, "PUBLIC_REQUIRES_OPERATOR", field: "public") {
                try await registry.createEndpointService(tenantA, tenantRequest)
            }
            tenantRequest.isPublic = false
            _ = try await registry.createEndpointService(tenantA, tenantRequest)

            let ops = try await makeNetwork(registry, operatorR1, cidr: "10.9.0.0/16")
            var request = spec(ops)
            request.isPublic = true
            request.name = "obs"
            request.serviceType = .gateway
            let publicService = try await registry.createEndpointService(operatorR1, request)
            #expect(publicService.isPublic)
            #expect(publicService.serviceType == .gateway)
            var privateOps = spec(ops, ports: [PortMapping(terminalPort: 80, servicePort: 9999)])
            privateOps.name = "internal"
            _ = try await registry.createEndpointService(operatorR1, privateOps)

            for caller in [tenantA, tenantB, operatorR1] {
                let listed = try await registry.listPublicEndpointServices(caller, name: nil, id: nil, page: .init())
                #expect(listed.items == [EndpointServiceSummary(publicService)])
                #expect(listed.totalCount == 1)
            }
            #expect(try await registry.listPublicEndpointServices(tenantB, name: "OB", id: nil, page: .init()).totalCount == 1)
            #expect(try await registry.listPublicEndpointServices(tenantB, name: "nope", id: nil, page: .init()).totalCount == 0)
            #expect(try await registry.listPublicEndpointServices(tenantB, name: nil, id: publicService.id, page: .init()).totalCount == 1)
            #expect(try await registry.listPublicEndpointServices(tenantAInR2, name: nil, id: nil, page: .init()).totalCount == 0)
            await expectError(.invalidArgument, "SORT_KEY_INVALID", field: "page.sort_key") {
                try await registry.listPublicEndpointServices(tenantB, name: nil, id: nil, page: .init(sortKey: "name"))
            }
            let described = try await registry.describeEndpointService(tenantB, id: publicService.id, serviceName: nil)
            #expect(described.isPublic)
            #expect(described.ownerID == "operator:ops")
            // A public service is still not tenant B's to read in full or change.
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.getEndpointService(tenantB, id: publicService.id, serviceName: nil)
            }
        }
    }

    @Test func serviceListsFilterByTag() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var first = spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 1)])
            first.tags = [Tag(key: "env", value: "prod"), Tag(key: "team", value: "orders")]
            let prod = try await registry.createEndpointService(tenantA, first)
            var second = spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 2)])
            second.tags = [Tag(key: "env", value: "dev")]
            let dev = try await registry.createEndpointService(tenantA, second)
            _ = try await registry.createEndpointService(tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 3)]))
            func ids(_ tags: [Tag]) async throws -> [String] {
                try await registry.listEndpointServices(tenantA, filter: .init(tags: tags), page: .init()).items.map(\.id)
            }
            #expect(try await ids([Tag(key: "env", value: "prod")]) == [prod.id])
            #expect(try await ids([Tag(key: "env", value: "")]) == [dev.id, prod.id])
            #expect(try await ids([Tag(key: "env", value: "prod"), Tag(key: "env", value: "dev")]) == [dev.id, prod.id])
            #expect(try await ids([Tag(key: "env", value: "prod"), Tag(key: "team", value: "orders")]) == [prod.id])
            #expect(try await ids([Tag(key: "env", value: "dev"), Tag(key: "team", value: "")]) == [])
            #expect(try await ids([Tag(key: "ENV", value: "prod")]) == [])
            await expectError(.invalidArgument, "TOO_MANY_TAG_FILTERS", field: "tags") {
                try await ids((0...10).map { Tag(key: "k\($0)", value: "") })
            }
            await expectError(.invalidArgument, "TAG_FILTER_INVALID", field: "tags[0].key") {
                try await ids([Tag(key: "", value: "")])
            }
        }
    }

    @Test func concurrentUpdatesAtOneRevisionLetExactlyOneThrough() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let service = try await registry.createEndpointService(tenantA, spec(network))
            let id = service.id
            let reasons = await withTaskGroup(of: String.self) { group in
                for i in 0..<10 {
                    group.addTask {
                        do throws(RegistryError) {
                            _ = try await registry.updateEndpointService(
                                tenantA, id: id, EndpointServiceUpdate(description: "writer \(i)", expectedRevision: 1))
                            return "OK"
                        } catch {
                            return error.reason.rawValue
                        }
                    }
                }
                var all: [String] = []
                for await reason in group { all.append(reason) }
                return all
            }
            #expect(reasons.filter { $0 == "OK" }.count == 1)
            #expect(reasons.filter { $0 == "REVISION_MISMATCH" }.count == 9)
            #expect(try await registry.getEndpointService(tenantA, id: id, serviceName: nil).revision == 2)
        }
    }
}
