import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

/// docs/DOMAIN.md, "Access policies".
@Suite("Access policies")
struct AccessPolicyTests {
    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    static func entry(
        _ permission: String, _ decision: AccessDecision = .manual, limit: Int? = nil, expires: Date? = nil
    ) -> Permission {
        Permission(
            id: permission, serviceID: "svc", permission: permission, description: "", region: "r1", createdAt: t0,
            decision: decision, connectionLimit: limit, expiresAt: expires)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var entries: [Permission]
        var held = 0
        var basis: Admission.Basis
        var decidedBy: String?
        var refusal: Reason?
        var testDescription: String { name }
    }

    static let later = t0 + 60
    static let earlier = t0 - 60

    /// Precedence: the tenant's own live entry decides, else a live `*`; an expired entry is as if absent.
    static let precedence: [Case] = [
        Case(name: "no entry", entries: [], basis: .none, refusal: .notAllowedByService),
        Case(name: "own manual", entries: [entry("iam:domain::bob")], basis: .tenantEntry, decidedBy: "iam:domain::bob"),
        Case(name: "* only", entries: [entry("*", .autoAccept)], basis: .everyoneEntry, decidedBy: "*"),
        Case(
            name: "own deny under * auto_accept", entries: [entry("*", .autoAccept), entry("iam:domain::bob", .deny)],
            basis: .tenantEntry, decidedBy: "iam:domain::bob", refusal: .accessDenied),
        Case(
            name: "own auto_accept under * deny", entries: [entry("*", .deny), entry("iam:domain::bob", .autoAccept)],
            basis: .tenantEntry, decidedBy: "iam:domain::bob"),
        Case(name: "* deny, no own", entries: [entry("*", .deny)], basis: .everyoneEntry, decidedBy: "*", refusal: .accessDenied),
        Case(
            name: "own limit reached under * without limit",
            entries: [entry("*", .autoAccept), entry("iam:domain::bob", limit: 2)], held: 2, basis: .tenantEntry,
            decidedBy: "iam:domain::bob", refusal: .connectionLimitExceeded),
        Case(
            name: "own without limit under * limit reached",
            entries: [entry("*", limit: 1), entry("iam:domain::bob")], held: 5, basis: .tenantEntry,
            decidedBy: "iam:domain::bob"),
        Case(name: "* limit reached", entries: [entry("*", limit: 2)], held: 2, basis: .everyoneEntry, decidedBy: "*", refusal: .connectionLimitExceeded),
        Case(name: "* limit not reached", entries: [entry("*", limit: 2)], held: 1, basis: .everyoneEntry, decidedBy: "*"),
        Case(
            name: "own expired, * live", entries: [entry("*", .autoAccept), entry("iam:domain::bob", .deny, expires: earlier)],
            basis: .everyoneEntry, decidedBy: "*"),
        Case(
            name: "own expired, no *", entries: [entry("iam:domain::bob", expires: earlier)], basis: .none,
            decidedBy: "iam:domain::bob", refusal: .accessExpired),
        Case(
            name: "own live, * expired", entries: [entry("*", expires: earlier), entry("iam:domain::bob", .autoAccept, expires: later)],
            basis: .tenantEntry, decidedBy: "iam:domain::bob"),
        Case(name: "* expired", entries: [entry("*", expires: earlier)], basis: .none, decidedBy: "*", refusal: .accessExpired),
        Case(name: "expiry is exclusive", entries: [entry("*", expires: t0)], basis: .none, decidedBy: "*", refusal: .accessExpired),
        Case(name: "another tenant's entry", entries: [entry("iam:domain::carol", .autoAccept)], basis: .none, refusal: .notAllowedByService),
    ]

    @Test(arguments: precedence)
    func precedenceBetweenOwnEntryAndEveryone(_ c: Case) {
        let admission = Admission.evaluate(entries: c.entries, tenant: "bob", serviceOwner: "alice", now: Self.t0, held: c.held)
        #expect(admission.basis == c.basis)
        #expect(admission.entry?.permission == c.decidedBy)
        #expect(admission.refusal == c.refusal)
        #expect(admission.admitted == (c.refusal == nil))
        #expect(!admission.explanation(tenant: "bob", approvalEnabled: true).isEmpty)
    }

    @Test func theOwnerIsAlwaysAdmittedOnTheServicesTerms() {
        let admission = Admission.evaluate(
            entries: [Self.entry("*", .deny)], tenant: "alice", serviceOwner: "alice", now: Self.t0, held: 99)
        #expect(admission.basis == .owner && admission.admitted && admission.remaining == nil)
        #expect(admission.initialStatus(approvalEnabled: true) == .pendingAcceptance)
        #expect(admission.initialStatus(approvalEnabled: false) == .accepted)
    }

    @Test func decisionsAndRemaining() {
        let auto = Admission.evaluate(
            entries: [Self.entry("*", .autoAccept, limit: 3)], tenant: "bob", serviceOwner: "alice", now: Self.t0, held: 1)
        #expect(auto.initialStatus(approvalEnabled: true) == .accepted)
        #expect(auto.remaining == 2)
        let manual = Admission.evaluate(
            entries: [Self.entry("*")], tenant: "bob", serviceOwner: "alice", now: Self.t0, held: 1)
        #expect(manual.initialStatus(approvalEnabled: true) == .pendingAcceptance)
        #expect(manual.initialStatus(approvalEnabled: false) == .accepted)
        #expect(manual.remaining == nil)
    }

    @Test func whatHoldsAConnection() {
        #expect(EndpointStatus.allCases.filter(Admission.holds) == [.pendingAcceptance, .creating, .accepted, .suspended])
    }

    // MARK: Adding entries with terms

    private static func add(
        _ registry: Registry, _ story: Story, _ entries: [PermissionEntry], ctx: CallContext = tenantA
    ) async throws -> [Permission] {
        try await registry.addPermissions(ctx, serviceID: story.service.id, serviceName: nil, entries: entries)
    }

    @Test func addingAnExistingEntryReplacesItsTerms() async throws {
        let clock = SettableClock()
        try await withRegistry(clock: { clock.now() }) { registry, _ in
            let story = try await makeStory(registry, allow: [])
            let first = try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::tenant-b", description: "x")])
            #expect(first[0].decision == .manual && first[0].connectionLimit == nil && first[0].expiresAt == nil)
            clock.advance(by: 5)
            let expires = clock.now() + 3600
            let terms = PermissionEntry(
                permission: "iam:domain::tenant-b", description: "team", decision: .autoAccept, connectionLimit: 3,
                expiresAt: expires, onExpiry: .reject)
            let replaced = try await Self.add(registry, story, [terms])
            #expect(replaced[0].id == first[0].id && replaced[0].createdAt == first[0].createdAt)
            #expect(replaced[0].updatedAt == clock.now())
            #expect(replaced[0].decision == .autoAccept && replaced[0].connectionLimit == 3)
            #expect(replaced[0].expiresAt == expires && replaced[0].onExpiry == .reject && replaced[0].description == "team")
            // The same terms again: nothing changes, nothing is logged.
            let head = try await store(registry)
            clock.advance(by: 5)
            #expect(try await Self.add(registry, story, [terms]) == replaced)
            #expect(try await store(registry) == head)
            let history = try await registry.listHistory(
                tenantA, resourceID: first[0].id, since: nil, until: nil, page: PageRequest(sortDir: "asc"))
            #expect(history.items.map(\.type) == [.permissionAdded, .updated])
            #expect(history.items.last?.previous == .permission(first[0]))
            // What is not given goes back to its default.
            let plain = try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::tenant-b")])
            #expect(plain[0].decision == .manual && plain[0].connectionLimit == nil && plain[0].expiresAt == nil)
        }
        func store(_ registry: Registry) async throws -> UInt64 {
            try await registry.listHistory(operatorR1, resourceID: nil, since: nil, until: nil, page: PageRequest(limit: 1))
                .items.first?.seq ?? 0
        }
    }

    @Test func termsAreValidatedAndRefusedAddsChangeNothing() async throws {
        let clock = SettableClock()
        try await withRegistry(clock: { clock.now() }) { registry, _ in
            let story = try await makeStory(registry, allow: [])
            let past = clock.now() - 1
            _ = try await Self.add(registry, story, [PermissionEntry(permission: "*", expiresAt: clock.now() + 10)])
            let before = try await snapshot(registry)
            let ok = PermissionEntry(permission: "iam:domain::tenant-b")
            await expectError(.invalidArgument, "CONNECTION_LIMIT_OUT_OF_RANGE", field: "entries[1].connection_limit") {
                try await Self.add(registry, story, [ok, PermissionEntry(permission: "iam:domain::x", connectionLimit: 10_001)])
            }
            await expectError(.invalidArgument, "CONNECTION_LIMIT_OUT_OF_RANGE", field: "entries[0].connection_limit") {
                try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::x", connectionLimit: -1)])
            }
            await expectError(.invalidArgument, "EXPIRY_REQUIRED", field: "entries[0].on_expiry") {
                try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::x", onExpiry: .reject)])
            }
            await expectError(.invalidArgument, "EXPIRY_IN_PAST", field: "entries[1].expires_at") {
                try await Self.add(registry, story, [ok, PermissionEntry(permission: "iam:domain::x", expiresAt: past)])
            }
            await expectError(.invalidArgument, "EXPIRY_IN_PAST", field: "entries[0].expires_at") {
                try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::x", expiresAt: clock.now())])
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await Self.add(registry, story, [ok], ctx: tenantB)
            }
            #expect(try await snapshot(registry) == before)
            // An unchanged expiry may have passed: applying the same configuration again is no error.
            clock.advance(by: 20)
            let again = try await Self.add(registry, story, [PermissionEntry(permission: "*", expiresAt: clock.now() - 10)])
            #expect(again[0].expiresAt == clock.now() - 10)
            #expect(try await snapshot(registry) == before)
            // Limit 0 admits no new endpoint (choice: a way to freeze a consumer without a deny).
            _ = try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::tenant-b", connectionLimit: 0)])
            await expectError(.resourceExhausted, "CONNECTION_LIMIT_EXCEEDED", field: "service_id") {
                try await registry.createEndpoint(tenantB, endpointSpec(story))
            }
        }
    }

    // MARK: Creating endpoints under a policy

    @Test func autoAcceptAcceptsAtOnceEvenWithApproval() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: true, allow: [])
            _ = try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::tenant-b", decision: .autoAccept)])
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            #expect(endpoint.status == .accepted && !endpoint.ip.isEmpty)
            let history = try await registry.listHistory(tenantB, resourceID: endpoint.id, since: nil, until: nil, page: .init())
            #expect(history.items.map(\.type) == [.created])
            #expect(try await connectionCount(registry, story.service) == 1)
            // Manual defers to the service: waiting.
            _ = try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::tenant-b")])
            #expect(try await registry.createEndpoint(tenantB, endpointSpec(story)).status == .pendingAcceptance)
        }
    }

    @Test func denyRefusesEvenUnderEveryoneAndChangesNothing() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: [])
            _ = try await Self.add(registry, story, [
                PermissionEntry(permission: "*", decision: .autoAccept),
                PermissionEntry(permission: "iam:domain::tenant-b", decision: .deny),
            ])
            let before = try await snapshot(registry)
            await expectError(.permissionDenied, "ACCESS_DENIED", field: "service_id") {
                try await registry.createEndpoint(tenantB, endpointSpec(story))
            }
            #expect(try await snapshot(registry) == before)
            // Operators come in under `*`.
            let ops = try await makeNetwork(registry, operatorR1, cidr: "10.9.0.0/16")
            let endpoint = try await registry.createEndpoint(
                operatorR1, EndpointSpec(serviceID: story.service.id, vpcID: ops.vpc.id, subnetID: ops.subnet.id))
            #expect(endpoint.status == .accepted)
        }
    }

    @Test func theLimitCountsHeldConnections() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: [])
            _ = try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::tenant-b", connectionLimit: 2)])
            let first = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let before = try await snapshot(registry)
            await expectError(.resourceExhausted, "CONNECTION_LIMIT_EXCEEDED", field: "service_id") {
                try await registry.createEndpoint(tenantB, endpointSpec(story))
            }
            await expectError(.resourceExhausted, "CONNECTION_LIMIT_EXCEEDED", field: "service_name") {
                try await registry.createEndpoint(tenantB, EndpointSpec(
                    serviceName: story.service.serviceName, vpcID: story.consumer.vpc.id, subnetID: story.consumer.subnet.id))
            }
            #expect(try await snapshot(registry) == before)
            // A pending one holds a connection; a rejected one no longer does.
            _ = try await registry.decideConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, endpointIDs: [first.id], accept: false)
            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
            // The owner is never limited.
            for _ in 0..<3 {
                _ = try await registry.createEndpoint(tenantA, EndpointSpec(
                    serviceID: story.service.id, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id))
            }
        }
    }

    @Test func fiftyParallelCreatesUnderALimitOfFiveLeaveExactlyFive() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, approval: false, allow: [])
            _ = try await Self.add(registry, story, [
                PermissionEntry(permission: "iam:domain::tenant-b", decision: .autoAccept, connectionLimit: 5),
            ])
            let outcomes = await withTaskGroup(of: String.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        do {
                            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
                            return "created"
                        } catch let error as RegistryError {
                            return "\(error.code.name) \(error.reason) \(error.field ?? "")"
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
            }
            #expect(outcomes == ["created": 5, "RESOURCE_EXHAUSTED CONNECTION_LIMIT_EXCEEDED service_id": 45])
            let endpoints = try await registry.listEndpoints(tenantB, filter: .init(), page: PageRequest(limit: 100))
            #expect(endpoints.totalCount == 5)
        }
    }

    @Test func anExpiredEntryAdmitsNoOneWithoutAnyOtherCall() async throws {
        let clock = SettableClock()
        try await withRegistry(clock: { clock.now() }) { registry, _ in
            let story = try await makeStory(registry, allow: [])
            let expires = clock.now() + 60
            _ = try await Self.add(registry, story, [PermissionEntry(permission: "iam:domain::tenant-b", expiresAt: expires)])
            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
            clock.set(expires)
            let before = try await snapshot(registry)
            await expectError(.permissionDenied, "ACCESS_EXPIRED", field: "service_id") {
                try await registry.createEndpoint(tenantB, endpointSpec(story))
            }
            #expect(try await snapshot(registry) == before)
            // With on_expiry keep, the live connection stays, also after a sweep.
            #expect(try await registry.sweepExpiredPermissions() == 0)
            #expect(try await snapshot(registry) == before)
        }
    }

    @Test func anEntryExpiringWhileCreatesRaceAdmitsNoneAfterItsTime() async throws {
        // Every reading of the clock moves it on 10 ms, so the entry's time passes in the middle of the race.
        let clock = SteppingClock(step: 0.01)
        try await withRegistry(clock: { clock.now() }) { registry, _ in
            let story = try await makeStory(registry, approval: false, allow: [])
            let expires = clock.now() + 0.5
            _ = try await Self.add(registry, story, [
                PermissionEntry(permission: "iam:domain::tenant-b", decision: .autoAccept, expiresAt: expires),
            ])
            let refusals = await withTaskGroup(of: String?.self) { group in
                for _ in 0..<40 {
                    group.addTask {
                        do {
                            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
                            return nil
                        } catch let error as RegistryError {
                            return error.reason.rawValue
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String]()) { if let r = $1 { $0.append(r) } }
            }
            let endpoints = try await registry.listEndpoints(tenantB, filter: .init(), page: PageRequest(limit: 100)).items
            #expect(!endpoints.isEmpty && !refusals.isEmpty, "the expiry fell inside the race")
            #expect(Set(refusals) == ["ACCESS_EXPIRED"])
            #expect(endpoints.allSatisfy { $0.createdAt < expires })
        }
    }

    // MARK: The expiry sweep

    @Test func theSweepRejectsWhatTheEntryAdmittedOnceAndAsTheSystem() async throws {
        let clock = SettableClock()
        try await withRegistry(clock: { clock.now() }) { registry, _ in
            let story = try await makeStory(registry, allow: [])
            let expires = clock.now() + 60
            _ = try await Self.add(registry, story, [
                PermissionEntry(permission: "iam:domain::tenant-b", decision: .autoAccept, expiresAt: expires, onExpiry: .reject),
            ])
            let accepted = try await registry.createEndpoint(tenantB, endpointSpec(story))
            _ = try await Self.add(registry, story, [
                PermissionEntry(permission: "iam:domain::tenant-b", expiresAt: expires, onExpiry: .reject),
            ])
            let pending = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let own = try await registry.createEndpoint(tenantA, EndpointSpec(
                serviceID: story.service.id, vpcID: story.provider.vpc.id, subnetID: story.provider.subnet.id))
            #expect(accepted.status == .accepted && pending.status == .pendingAcceptance)
            // Not yet due.
            #expect(try await registry.sweepExpiredPermissions() == 0)
            clock.set(expires)
            // Two sweeps at once (as two servers would): the connections are rejected once.
            async let first = registry.sweepExpiredPermissions()
            async let second = registry.sweepExpiredPermissions()
            #expect(try await first + second == 2)
            #expect(try await registry.sweepExpiredPermissions() == 0)
            for id in [accepted.id, pending.id] {
                let endpoint = try await registry.getEndpoint(tenantB, id: id)
                #expect(endpoint.status == .rejected)
                let history = try await registry.listHistory(tenantB, resourceID: id, since: nil, until: nil, page: .init())
                #expect(history.items.first?.type == .connectionRejected)
                #expect(history.items.first?.actor == Registry.systemActor)
            }
            let connections = try await registry.listConnections(
                tenantA, serviceID: story.service.id, serviceName: nil, filter: .init(), page: .init()).items
            #expect(connections.filter { $0.status == .rejected }.allSatisfy { $0.decidedBy == Registry.systemActor })
            #expect(try await registry.getEndpoint(tenantA, id: own.id).status == .pendingAcceptance, "the owner's own stays")
            // The entry stays listed, handled.
            let entries = try await registry.listPermissions(
                tenantA, serviceID: story.service.id, serviceName: nil, permission: nil, page: .init()).items
            #expect(entries.map(\.expiryHandled) == [true])
        }
    }

    @Test func theSweepSparesWhatAnotherEntryAdmits() async throws {
        let clock = SettableClock()
        try await withRegistry(clock: { clock.now() }) { registry, _ in
            let story = try await makeStory(registry, allow: [])
            let carol = CallContext(caller: .tenant("carol"), region: "r1")
            let carolNet = try await makeNetwork(registry, carol, cidr: "10.2.0.0/16")
            let expires = clock.now() + 60
            _ = try await Self.add(registry, story, [
                PermissionEntry(permission: "*", decision: .autoAccept, expiresAt: expires, onExpiry: .reject),
                PermissionEntry(permission: "iam:domain::tenant-b", decision: .autoAccept),
            ])
            let bob = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let carols = try await registry.createEndpoint(carol, EndpointSpec(
                serviceID: story.service.id, vpcID: carolNet.vpc.id, subnetID: carolNet.subnet.id))
            clock.set(expires + 1)
            #expect(try await registry.sweepExpiredPermissions() == 1)
            #expect(try await registry.getEndpoint(tenantB, id: bob.id).status == .accepted, "admitted by its own entry")
            #expect(try await registry.getEndpoint(carol, id: carols.id).status == .rejected)
        }
    }

    @Test func aChangedExpiryIsSweptAgain() async throws {
        let clock = SettableClock()
        try await withRegistry(clock: { clock.now() }) { registry, _ in
            let story = try await makeStory(registry, allow: [])
            _ = try await Self.add(registry, story, [
                PermissionEntry(permission: "iam:domain::tenant-b", decision: .autoAccept, expiresAt: clock.now() + 10, onExpiry: .reject),
            ])
            // Extended before its time: nothing is due at the old time.
            let extended = clock.now() + 100
            _ = try await Self.add(registry, story, [
                PermissionEntry(permission: "iam:domain::tenant-b", decision: .autoAccept, expiresAt: extended, onExpiry: .reject),
            ])
            let endpoint = try await registry.createEndpoint(tenantB, endpointSpec(story))
            clock.advance(by: 50)
            #expect(try await registry.sweepExpiredPermissions() == 0)
            clock.set(extended)
            #expect(try await registry.sweepExpiredPermissions() == 1)
            #expect(try await registry.getEndpoint(tenantB, id: endpoint.id).status == .rejected)
        }
    }

    // MARK: CheckAccess

    @Test func checkAccessExplainsEachCase() async throws {
        let clock = SettableClock()
        try await withRegistry(clock: { clock.now() }) { registry, _ in
            let story = try await makeStory(registry, approval: true, allow: [])
            let expires = clock.now() + 3600
            _ = try await Self.add(registry, story, [
                PermissionEntry(permission: "*", description: "nobody else", decision: .deny),
                PermissionEntry(
                    permission: "iam:domain::tenant-b", description: "partner", decision: .autoAccept, connectionLimit: 2,
                    expiresAt: expires),
            ])
            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
            func check(_ ctx: CallContext, _ tenant: String?) async throws -> AccessCheck {
                try await registry.checkAccess(ctx, serviceID: story.service.id, serviceName: nil, tenantID: tenant)
            }
            let bob = try await check(tenantA, "tenant-b")
            #expect(bob.admission.admitted && bob.admission.basis == .tenantEntry)
            #expect(bob.admission.decision == .autoAccept && bob.initialStatus == .accepted)
            #expect(bob.admission.held == 1 && bob.admission.remaining == 1)
            #expect(bob.admission.entry?.expiresAt == expires && bob.admission.entry?.description == "partner")
            #expect(bob.explanation.contains("tenant-b is admitted by the entry iam:domain::tenant-b"))
            // The consumer asks about itself: the same answer, without the provider's notes.
            let itself = try await check(tenantB, nil)
            #expect(itself.tenantID == "tenant-b" && itself.admission.remaining == 1)
            #expect(itself.admission.entry?.description == "" && itself.admission.entry?.id == "")
            let dave = try await check(tenantA, "dave")
            #expect(!dave.admission.admitted && dave.admission.refusal == .accessDenied && dave.admission.basis == .everyoneEntry)
            let owner = try await check(tenantA, nil)
            #expect(owner.admission.basis == .owner && owner.initialStatus == .pendingAcceptance)
            #expect(try await check(operatorR1, "tenant-b").admission.admitted)
            await expectError(.permissionDenied, "OWNER_ONLY", field: "tenant_id") { try await check(tenantB, "dave") }
            await expectError(.invalidArgument, "TENANT_ID_INVALID", field: "tenant_id") { try await check(tenantA, "a:b") }
            await expectError(.invalidArgument, "ID_OR_NAME_REQUIRED", field: "service_id") {
                try await registry.checkAccess(tenantA, serviceID: nil, serviceName: nil, tenantID: nil)
            }
            _ = try await registry.createEndpoint(tenantB, endpointSpec(story))
            let full = try await check(tenantA, "tenant-b")
            #expect(full.admission.refusal == .connectionLimitExceeded && full.admission.remaining == 0)
            clock.set(expires)
            let expired = try await check(tenantA, "tenant-b")
            #expect(expired.admission.refusal == .accessDenied && expired.admission.basis == .everyoneEntry, "* decides now")
        }
    }

    @Test func checkAccessHidesPrivateServicesFromStrangers() async throws {
        try await withRegistry { registry, _ in
            let story = try await makeStory(registry, allow: [])
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.checkAccess(tenantB, serviceID: story.service.id, serviceName: nil, tenantID: nil)
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_id") {
                try await registry.checkAccess(tenantB, serviceID: story.service.id, serviceName: nil, tenantID: "tenant-a")
            }
        }
    }
}
