import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

@Suite("API: history", .timeLimit(.minutes(2)))
struct HistoryAPITests {
    @Test("a service's history: revisions, changed fields in wire names, the call's request id")
    func serviceHistory() async throws {
        try await withTestServer { server in
            let alice = try server.client("alice")
            let network = try await Network.make(alice)
            let service = try await alice.createEndpointService(
                network.service(name: "old"), options: CallOptions(requestID: "create-1"))
            _ = try await alice.updateEndpointService(
                UpdateEndpointServiceRequest(id: service.id, name: "new", clientIpMode: .toaOpen),
                options: CallOptions(requestID: "update-1"))
            _ = try await alice.deleteEndpointService(DeleteEndpointServiceRequest(id: service.id))

            let history = try await alice.listHistory(
                ListHistoryRequest(resourceId: service.id, page: PageRequest(sortDir: "asc")))
            #expect(history.totalCount == 3)
            #expect(history.items.map(\.type) == [.created, .updated, .deleted])
            #expect(history.items.map(\.kind) == [.endpointService, .endpointService, .endpointService])
            #expect(history.items.map(\.revisionBefore) == [0, 1, 2])
            #expect(history.items.map(\.revisionAfter) == [1, 2, 0])
            #expect(history.items.map(\.requestId).prefix(2) == ["create-1", "update-1"])
            #expect(history.items.allSatisfy { $0.actor == "alice" && $0.region == TestServer.regions[0] })
            let update = history.items[1]
            #expect(update.changedFields == [
                "client_ip_mode", "client_ip_note", "name", "revision", "service_name", "updated_at",
            ])
            #expect(update.endpointService?.name == "new")
            #expect(update.endpointService?.clientIpNote.isEmpty == false)
            // The last state of a deleted service stays readable in its history.
            #expect(history.items[2].endpointService?.serviceName == "\(TestServer.regions[0]).new.\(service.id)")
            #expect(history.items[0].changedFields.isEmpty && history.items[2].changedFields.isEmpty)

            // The same through the tenant-wide list, bounded by time.
            let since = try #require(history.items.first?.time)
            let all = try await alice.listHistory(ListHistoryRequest(since: since, page: PageRequest(limit: 100)))
            #expect(all.items.map(\.seq) == all.items.map(\.seq).sorted(by: >))
            #expect(Set(all.items.filter { $0.resourceId == service.id }.map(\.seq)) == Set(history.items.map(\.seq)))

            let bob = try server.client("bob")
            #expect(try await bob.listHistory(ListHistoryRequest(resourceId: service.id)).totalCount == 0)
            await expectFailure(.invalidArgument, "TIME_INVALID", field: "until") { () async throws(VPCEPError) in
                try await bob.listHistory(ListHistoryRequest(until: "2026-11-30"))
            }
            await alice.close()
            await bob.close()
        }
    }
}
