import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Endpoints")
struct EndpointTests {
    @Test func approvalOnWaitsThenAcceptedShowsTheIP() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            #expect(endpoint.status == .pendingAcceptance)
            #expect(endpoint.ip == "")  // not shown until accepted
            #expect(endpoint.ownerID == "tenant-b")
            #expect(endpoint.serviceID == story.service.id)
            #expect(endpoint.serviceName == story.service.serviceName)
            #expect(endpoint.serviceType == .interface)
            #expect(endpoint.markerID == 1)
            #expect(endpoint.dnsName == "")
            #expect(try await connectionCount(registry, story.service) == 0)
            #expect(try await registry.getEndpoint(tenantB, id: endpoint.id) == endpoint)

            let accepted = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: true)
            #expect(accepted.map(\.status) == [.accepted])
            #expect(accepted[0].decidedBy == "tenant-a")
            #expect(accepted[0].decidedAt != nil)
            let afterAccept = try await registry.getEndpoint(tenantB, id: endpoint.id)
            #expect(afterAccept.status == .accepted)
            #expect(afterAccept.ip == "10.1.1.4")  // after the consumer's load balancer (.2) and VM (.3)
            #expect(try await connectionCount(registry, story.service) == 1)

            // accepted → rejected is allowed, and the IP stays visible.
            _ = try await registry.decideConnections(
                tenantA, serviceID: nil, serviceName: story.service.serviceName, endpointIDs: [endpoint.id], accept: false)
            let afterReject = try await registry.getEndpoint(tenantB, id: endpoint.id)
            #expect(afterReject.status == .rejected)
            #expect(afterReject.ip == "10.1.1.4")
            #expect(try await connectionCount(registry, story.service) == 0)
        }
    }

    @Test func approvalOffIsAcceptedAtOnce() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            #expect(endpoint.status == .accepted)
            #expect(endpoint.ip == "10.1.1.4")
            #expect(try await connectionCount(registry, story.service) == 1)
        }
    }

    @Test func rejectedBeforeAcceptanceHidesTheIPAndIsFinal() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry)
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: false)
            #expect(try await registry.getEndpoint(tenantB, id: endpoint.id).ip == "")
            await expectError(.failedPrecondition, "CONNECTION_STATE_INVALID", field: "endpoint_ids[0]") {
                try await registry.decideConnections(
                    tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: true)
            }
            // Rejecting again changes nothing.
            let again = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [endpoint.id], accept: false)
            #expect(again.map(\.status) == [.rejected])
        }
    }

    @Test func theAllowListDecidesWhoMayConnect() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: [])
            // A private service the consumer is not admitted to does not exist for it.
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.createEndpoint(tenantB, endpointSpec(story))
            }
            var byName = endpointSpec(story)
            byName.serviceID = nil
            byName.serviceName = story.service.serviceName
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_name") {
                try await registry.createEndpoint(tenantB, byName)
            }
            // Admitted by id entry.
            _ = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, entries: [PermissionEntry(permission: "iam:domain::tenant-b")])
            let first = try await registry.createEndpoint(tenantB, byName)
            #expect(first.serviceID == story.service.id)
            // Removing the entry does not close the existing endpoint, but stops new ones.
            #expect(try await registry.removePermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, permissions: ["iam:domain::tenant-b"], ids: []) == 1)
            #expect(try await registry.getEndpoint(tenantB, id: first.id).status == .pendingAcceptance)
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.createEndpoint(tenantB, endpointSpec(story))
            }
            // `*` admits everyone.
            _ = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, entries: [PermissionEntry(permission: "*")])
            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
            // The owner is always admitted.
            let own = try await registry.createEndpoint(
                tenantA, EndpointSpec(serviceID: story.service.id, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id))
            #expect(own.ownerID == "tenant-a")
        }
    }

    @Test func aVisibleButNotAdmittedServiceIsPermissionDenied() async throws {
        try await withRegistry { registry, _ in
            let ops = try await makeNetwork(registry, operatorR1, cidr: "10.9.0.0/16")
            var request = spec(ops)
            request.isPublic = true
            let service = try await registry.createEndpointService(operatorR1, request)
            let consumer = try await makeNetwork(registry, tenantB, cidr: "10.1.0.0/16")
            let endpoint = EndpointSpec(serviceID: service.id, vpcID: consumer.vpc.id, subnetID: consumer.subnet.id)
            await expectError(.permissionDenied, "NOT_ALLOWED_BY_SERVICE", field: "service_id") {
                try await registry.createEndpoint(tenantB, endpoint)
            }
            _ = try await registry.addPermissions(
                operatorR1, serviceID: service.id, serviceName: nil, entries: [PermissionEntry(permission: "*")])
            #expect(try await registry.createEndpoint(tenantB, endpoint).status == .pendingAcceptance)
        }
    }

    @Test func sameRegionOnly() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: ["*"])
            let inR2 = try await makeNetwork(registry, CallContext(caller: .tenant("tenant-b"), region: "r2"))
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.createEndpoint(
                    CallContext(caller: .tenant("tenant-b"), region: "r2"),
                    EndpointSpec(serviceID: story.service.id, vpcID: inR2.vpc.id, subnetID: inR2.subnet.id))
            }
        }
    }

    @Test func placementIsTheConsumersOwn() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: ["*"])
            await expectError(.invalidArgument, "VPC_ID_REQUIRED", field: "vpc_id") {
                try await registry.createEndpoint(tenantB, EndpointSpec(serviceID: story.service.id, vpcID: "", subnetID: "x"))
            }
            await expectError(.invalidArgument, "SUBNET_ID_REQUIRED", field: "subnet_id") {
                try await registry.createEndpoint(
                    tenantB, EndpointSpec(serviceID: story.service.id, vpcID: story.consumer.vpc.id, subnetID: ""))
            }
            await expectError(.invalidArgument, "ID_OR_NAME_REQUIRED", field: "service_id") {
                try await registry.createEndpoint(
                    tenantB, EndpointSpec(vpcID: story.consumer.vpc.id, subnetID: story.consumer.subnet.id))
            }
            await expectError(.invalidArgument, "ID_OR_NAME_REQUIRED", field: "service_name") {
                try await registry.createEndpoint(
                    tenantB, EndpointSpec(serviceID: story.service.id, serviceName: story.service.serviceName,
                                          vpcID: story.consumer.vpc.id, subnetID: story.consumer.subnet.id))
            }
            // The provider's VPC and subnet are not the consumer's.
            await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") {
                try await registry.createEndpoint(
                    tenantB, EndpointSpec(serviceID: story.service.id, vpcID: story.provider.vpc.id, subnetID: story.consumer.subnet.id))
            }
            await expectError(.notFound, "SUBNET_NOT_FOUND", field: "subnet_id") {
                try await registry.createEndpoint(
                    tenantB, EndpointSpec(serviceID: story.service.id, vpcID: story.consumer.vpc.id, subnetID: story.provider.subnet.id))
            }
            let otherVPC = try await registry.createVPC(tenantB, name: "other", cidr: "172.16.0.0/16")
            await expectError(.invalidArgument, "SUBNET_NOT_IN_VPC", field: "subnet_id") {
                try await registry.createEndpoint(
                    tenantB, EndpointSpec(serviceID: story.service.id, vpcID: otherVPC.id, subnetID: story.consumer.subnet.id))
            }
        }
    }

    @Test func requestedAddressesFollowTheSubnetRules() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false, allow: ["*"])
            let chosen = try await registry.createEndpoint(tenantB, endpointSpec(story, ip: "10.1.1.77"))
            #expect(chosen.ip == "10.1.1.77")
            await expectError(.failedPrecondition, "IP_IN_USE", field: "ip") {
                try await registry.createEndpoint(tenantB, endpointSpec(story, ip: "10.1.1.77"))
            }
            // Shared with backends: the consumer's load balancer holds .2.
            await expectError(.failedPrecondition, "IP_IN_USE", field: "ip") {
                try await registry.createEndpoint(tenantB, endpointSpec(story, ip: "10.1.1.2"))
            }
            await expectError(.invalidArgument, "IP_OUTSIDE_SUBNET", field: "ip") {
                try await registry.createEndpoint(tenantB, endpointSpec(story, ip: "10.1.2.5"))
            }
            await expectError(.invalidArgument, "IP_RESERVED", field: "ip") {
                try await registry.createEndpoint(tenantB, endpointSpec(story, ip: "10.1.1.255"))
            }
            await expectError(.invalidArgument, "IP_INVALID", field: "ip") {
                try await registry.createEndpoint(tenantB, endpointSpec(story, ip: "10.1.1.0400"))
            }
            // Deleting frees the address.
            try await registry.deleteEndpoint(tenantB, id: chosen.id)
            #expect(try await registry.createEndpoint(tenantB, endpointSpec(story, ip: "10.1.1.77")).ip == "10.1.1.77")
            // A backend cannot take an endpoint's address either.
            let auto = try await registry.createEndpoint(tenantB, endpointSpec(story))
            await expectError(.failedPrecondition, "IP_IN_USE", field: "ip") {
                try await registry.createBackend(
                    tenantB, kind: .vm, vpcID: story.consumer.vpc.id, subnetID: story.consumer.subnet.id, name: "x",
                    ip: auto.ip, ingressCIDRs: [])
            }
        }
    }

    @Test func whitelistDescriptionTagsAndDNS() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: ["*"])
            var request = endpointSpec(story)
            request.whitelist = ["192.168.0.1", "10.0.0.0/8"]
            request.enableWhitelist = true
            request.enableDNS = true
            request.description = "to orders"
            request.tags = [Tag(key: "env", value: "prod")]
            let endpoint = try await registry.createEndpoint(tenantB, request)
            #expect(endpoint.whitelist == ["192.168.0.1/32", "10.0.0.0/8"])
            #expect(endpoint.enableWhitelist)
            #expect(endpoint.dnsName == "\(endpoint.id).r1.vpcep.internal")
            #expect(endpoint.description == "to orders")
            #expect(endpoint.tags == [Tag(key: "env", value: "prod")])

            var tooMany = endpointSpec(story)
            tooMany.whitelist = (1...21).map { "10.0.0.\($0)" }
            await expectError(.invalidArgument, "TOO_MANY_WHITELIST_ENTRIES", field: "whitelist") {
                try await registry.createEndpoint(tenantB, tooMany)
            }
            var twenty = endpointSpec(story)
            twenty.whitelist = (1...20).map { "10.0.0.\($0)" }
            #expect(try await registry.createEndpoint(tenantB, twenty).whitelist.count == 20)
            var bad = endpointSpec(story)
            bad.whitelist = ["10.0.0.0/8", "10.0.0.1/8"]
            await expectError(.invalidArgument, "CIDR_HOST_BITS_SET", field: "whitelist[1]") {
                try await registry.createEndpoint(tenantB, bad)
            }
            bad.whitelist = ["nope"]
            await expectError(.invalidArgument, "CIDR_INVALID", field: "whitelist[0]") {
                try await registry.createEndpoint(tenantB, bad)
            }
            var badDescription = endpointSpec(story)
            badDescription.description = "<b>"
            await expectError(.invalidArgument, "DESCRIPTION_INVALID", field: "description") {
                try await registry.createEndpoint(tenantB, badDescription)
            }
            var badTags = endpointSpec(story)
            badTags.tags = (0...20).map { Tag(key: "k\($0)", value: "") }
            await expectError(.invalidArgument, "TOO_MANY_TAGS", field: "tags") {
                try await registry.createEndpoint(tenantB, badTags)
            }
            badTags.tags = [Tag(key: "_sys_x", value: "")]
            await expectError(.invalidArgument, "TAG_INVALID", field: "tags[0].key") {
                try await registry.createEndpoint(tenantB, badTags)
            }

            // Update: whitelist replaced, switch, description.
            let updated = try await registry.updateEndpoint(
                tenantB, id: endpoint.id, EndpointUpdate(whitelist: [], enableWhitelist: false, description: "x"))
            #expect(updated.whitelist.isEmpty)
            #expect(!updated.enableWhitelist)
            #expect(updated.description == "x")
            #expect(updated.updatedAt > endpoint.updatedAt)
            await expectError(.invalidArgument, "UPDATE_EMPTY", field: nil) {
                try await registry.updateEndpoint(tenantB, id: endpoint.id, EndpointUpdate())
            }
            await expectError(.notFound, "ENDPOINT_NOT_FOUND", field: "id") {
                try await registry.updateEndpoint(tenantA, id: endpoint.id, EndpointUpdate(description: "mine"))
            }
        }
    }

    @Test func getListAndDeleteAreTheConsumers() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: ["*"])
            var tagged = endpointSpec(story)
            tagged.tags = [Tag(key: "env", value: "prod"), Tag(key: "team", value: "a")]
            let first = try await registry.createEndpoint(tenantB, tagged)
            tagged.tags = [Tag(key: "env", value: "dev")]
            let second = try await registry.createEndpoint(tenantB, tagged)
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [second.id], accept: true)

            let all = try await registry.listEndpoints(tenantB, filter: .init(), page: .init())
            #expect(all.items.map(\.id) == [second.id, first.id])  // newest first
            #expect(all.totalCount == 2)
            #expect(try await registry.listEndpoints(tenantB, filter: .init(status: .accepted), page: .init()).items.map(\.id) == [second.id])
            #expect(try await registry.listEndpoints(tenantB, filter: .init(id: first.id), page: .init()).items.map(\.id) == [first.id])
            #expect(try await registry.listEndpoints(tenantB, filter: .init(vpcID: story.consumer.vpc.id), page: .init()).totalCount == 2)
            #expect(try await registry.listEndpoints(tenantB, filter: .init(vpcID: "nope"), page: .init()).totalCount == 0)
            #expect(try await registry.listEndpoints(
                tenantB, filter: .init(serviceName: String(story.service.id.prefix(6)).uppercased()), page: .init()).totalCount == 2)
            #expect(try await registry.listEndpoints(
                tenantB, filter: .init(tags: [Tag(key: "env", value: "prod")]), page: .init()).items.map(\.id) == [first.id])
            #expect(try await registry.listEndpoints(
                tenantB, filter: .init(tags: [Tag(key: "env", value: "")]), page: .init()).totalCount == 2)
            #expect(try await registry.listEndpoints(
                tenantB, filter: .init(tags: [Tag(key: "env", value: "prod"), Tag(key: "env", value: "dev")]), page: .init()).totalCount == 2)
            #expect(try await registry.listEndpoints(
                tenantB, filter: .init(tags: [Tag(key: "env", value: "dev"), Tag(key: "team", value: "")]), page: .init()).totalCount == 0)
            await expectError(.invalidArgument, "LIMIT_OUT_OF_RANGE", field: "page.limit") {
                try await registry.listEndpoints(tenantB, filter: .init(), page: .init(limit: 1001))
            }
            await expectError(.invalidArgument, "TAG_FILTER_INVALID", field: "tags[0].key") {
                try await registry.listEndpoints(tenantB, filter: .init(tags: [Tag(key: "", value: "x")]), page: .init())
            }
            // Nobody else sees them; operators read them.
            #expect(try await registry.listEndpoints(tenantA, filter: .init(), page: .init()).totalCount == 0)
            await expectError(.notFound, "ENDPOINT_NOT_FOUND", field: "id") { try await registry.getEndpoint(tenantA, id: first.id) }
            await expectError(.notFound, "ENDPOINT_NOT_FOUND", field: "id") { try await registry.getEndpoint(tenantAInR2, id: first.id) }
            #expect(try await registry.getEndpoint(operatorR1, id: first.id).id == first.id)
            await expectError(.notFound, "ENDPOINT_NOT_FOUND", field: "id") { try await registry.deleteEndpoint(tenantA, id: first.id) }
            await expectError(.permissionDenied, "OWNER_ONLY", field: nil) { try await registry.deleteEndpoint(operatorR1, id: first.id) }

            #expect(try await connectionCount(registry, story.service) == 1)
            try await registry.deleteEndpoint(tenantB, id: second.id)
            #expect(try await connectionCount(registry, story.service) == 0)
            await expectError(.notFound, "ENDPOINT_NOT_FOUND", field: "id") { try await registry.getEndpoint(tenantB, id: second.id) }
            await expectError(.notFound, "ENDPOINT_NOT_FOUND", field: "id") { try await registry.deleteEndpoint(tenantB, id: second.id) }
            // Marker ids are never reused.
            let third = try await registry.createEndpoint(tenantB, endpointSpec(story))
            #expect(third.markerID == 3)
        }
    }

    @Test func theEndpointQuotaIsCountedOnTheConsumer() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: ["*"])
            _ = try await registry.setQuota(operatorR1, tenantID: "tenant-b", type: .endpoint, limit: 2)
            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
            await expectError(.resourceExhausted, "QUOTA_EXCEEDED", field: nil) {
                try await registry.createEndpoint(tenantB, endpointSpec(story))
            }
            #expect(try await registry.listQuotas(tenantB, type: .endpoint) == [Quota(type: .endpoint, used: 2, limit: 2)])
            // The provider's own quota is untouched.
            #expect(try await registry.listQuotas(tenantA, type: .endpoint) == [Quota(type: .endpoint, used: 0, limit: 50)])
        }
    }

    @Test func theDefaultEndpointQuotaIsFifty() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false, allow: ["*"])
            for _ in 0..<50 { _ = try await registry.createEndpoint(tenantB, endpointSpec(story)) }
            await expectError(.resourceExhausted, "QUOTA_EXCEEDED", field: nil) {
                try await registry.createEndpoint(tenantB, endpointSpec(story))
            }
            #expect(try await connectionCount(registry, story.service) == 50)
        }
    }
}
