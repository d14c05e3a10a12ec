import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Allow-lists")
struct PermissionTests {
    @Test func addListAndRemove() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: [])
            let added = try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil,
                entries: [
                    PermissionEntry(permission: "iam:domain::tenant-b", description: "partner"),
                    PermissionEntry(permission: "*"),
                ])
            #expect(added.map(\.permission) == ["iam:domain::tenant-b", "*"])
            #expect(added[0].description == "partner")
            #expect(added[0].permissionType == "domainId")
            #expect(!added[0].id.isEmpty && added[0].id != added[1].id)
            // Adding an entry again with the same terms returns it unchanged.
            let again = try await registry.addPermissions(
                tenantA, serviceID: nil, serviceName: story.service.serviceName,
                entries: [PermissionEntry(permission: "*")])
            #expect(again == [added[1]])

            let listed = try await registry.listPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, permission: nil, page: .init(sortDir: "asc"))
            #expect(listed.items == added)
            #expect(listed.totalCount == 2)
            #expect(try await registry.listPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, permission: "DOMAIN", page: .init()).items == [added[0]])
            // Operators read it; other tenants do not learn the service exists.
            #expect(try await registry.listPermissions(
                operatorR1, serviceID: story.service.id, serviceName: nil, permission: nil, page: .init()).totalCount == 2)
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.listPermissions(tenantB, serviceID: story.service.id, serviceName: nil, permission: nil, page: .init())
            }

            #expect(try await registry.removePermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, permissions: ["*", "iam:domain::nobody"], ids: [added[0].id]) == 2)
            #expect(try await registry.listPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, permission: nil, page: .init()).totalCount == 0)
            #expect(try await registry.removePermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, permissions: ["*"], ids: []) == 0)
        }
    }

    @Test func entriesAreValidated() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: [])
            func add(_ entries: [PermissionEntry]) async throws -> [Permission] {
                try await registry.addPermissions(tenantA, serviceID: story.service.id, serviceName: nil, entries: entries)
            }
            await expectError(.invalidArgument, "PERMISSIONS_REQUIRED", field: "entries") { try await add([]) }
            for bad in ["", "tenant-b", "iam:domain::", "iam:domain::a:b", "iam:domain::has space", "iam:domain::\(String(repeating: "x", count: 65))", "**", "organizations:orgPath::x"] {
                await expectError(.invalidArgument, "PERMISSION_INVALID", field: "entries[1].permission") {
                    try await add([PermissionEntry(permission: "*"), PermissionEntry(permission: bad)])
                }
            }
            await expectError(.invalidArgument, "PERMISSION_DUPLICATE", field: "entries[1].permission") {
                try await add([PermissionEntry(permission: "*"), PermissionEntry(permission: "*")])
            }
            await expectError(.invalidArgument, "DESCRIPTION_INVALID", field: "entries[0].description") {
                try await add([PermissionEntry(permission: "*", description: "<script>")])
            }
            await expectError(.invalidArgument, "TOO_MANY_PERMISSIONS", field: "entries") {
                try await add((0...100).map { PermissionEntry(permission: "iam:domain::t\($0)") })
            }
            await expectError(.invalidArgument, "ID_OR_NAME_REQUIRED", field: "service_id") {
                try await registry.addPermissions(tenantA, serviceID: nil, serviceName: nil, entries: [PermissionEntry(permission: "*")])
            }
            await expectError(.invalidArgument, "PERMISSIONS_REQUIRED", field: "permissions") {
                try await registry.removePermissions(tenantA, serviceID: story.service.id, serviceName: nil, permissions: [], ids: [])
            }
            #expect(try await add([PermissionEntry(permission: "iam:domain::Tenant_9-x")]).count == 1)
        }
    }

    @Test func onlyTheOwnerChangesTheList() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: ["iam:domain::tenant-b"])
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.addPermissions(
                    tenantB, serviceID: story.service.id, serviceName: nil, entries: [PermissionEntry(permission: "*")])
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.removePermissions(
                    tenantB, serviceID: story.service.id, serviceName: nil, permissions: ["iam:domain::tenant-b"], ids: [])
            }
            await expectError(.permissionDenied, "OWNER_ONLY", field: nil) {
                try await registry.addPermissions(
                    operatorR1, serviceID: story.service.id, serviceName: nil, entries: [PermissionEntry(permission: "*")])
            }
        }
    }

    @Test func theListIsCapped() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: [])
            for batch in 0..<5 {
                _ = try await registry.addPermissions(
                    tenantA, serviceID: story.service.id, serviceName: nil,
                    entries: (0..<100).map { PermissionEntry(permission: "iam:domain::t\(batch)-\($0)") })
            }
            await expectError(.resourceExhausted, "PERMISSION_LIMIT_EXCEEDED", field: "entries") {
                try await registry.addPermissions(
                    tenantA, serviceID: story.service.id, serviceName: nil, entries: [PermissionEntry(permission: "*")])
            }
            // Re-adding an existing entry is still fine.
            #expect(try await registry.addPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil,
                entries: [PermissionEntry(permission: "iam:domain::t0-0")]).count == 1)
        }
    }
}
