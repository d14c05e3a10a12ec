import Foundation
import Testing
import VPCEPRegistry

/// Transactions that run together (a group-committed batch) commit or fail each on its own, however
/// each fails: on PostgreSQL their inserts are held back and sent together, and a failure that shows
/// only then, or after a member's own inserts were sent, must still be that member's alone.
@Suite("Store contract: a batch's members fail alone")
struct BatchFailureContractTests {
    private struct Refused: Error {}

    private enum Way: Int, CaseIterable {
        /// Inserts a VPC and its event.
        case commits
        /// Then inserts a row whose id is taken: the unique index refuses it.
        case duplicate
        /// Then reads its own row back (so its inserts reach the database first), then throws.
        case readsThenThrows
        /// Then throws, having read nothing.
        case throwsAtOnce
        /// Then inserts a subnet of that VPC with nothing read in between (a foreign key to a row
        /// inserted in the same transaction).
        case insertsAChild
    }

    @Test(arguments: StoreKind.underTest)
    func everyMemberCommitsOrFailsOnItsOwn(_ kind: StoreKind) async throws {
        try await withStore(kind) { store, _ in
            let taken = vpc("vpc-taken")
            _ = try await store.transaction { tx in
                try await tx.insertVPC(taken)
                return try await tx.appendEvents([Self.created(taken)])
            }
            let count = 200
            let outcomes = await withTaskGroup(of: (Int, (any Error)?).self) { group in
                for i in 0..<count {
                    group.addTask {
                        do {
                            try await store.transaction { tx in try await Self.run(i, tx, taken: taken) }
                            return (i, nil)
                        } catch {
                            return (i, error)
                        }
                    }
                }
                var outcomes: [Int: (any Error)?] = [:]
                for await (i, error) in group { outcomes[i] = error }
                return outcomes
            }
            var committed: Set<String> = [taken.id]
            for i in 0..<count {
                let error = outcomes[i] ?? nil
                switch Way(rawValue: i % Way.allCases.count)! {
                case .commits, .insertsAChild:
                    #expect(error == nil, "\(i): \(String(describing: error))")
                    committed.insert("vpc-\(i)")
                case .duplicate:
                    #expect((error as? StoreError)?.code == .conflict, "\(i): \(String(describing: error))")
                case .readsThenThrows, .throwsAtOnce:
                    #expect(error is Refused, "\(i): \(String(describing: error))")
                }
            }
            let stored = try await store.read { try await $0.listVPCs(listQuery(limit: 1_000)) }.items
            #expect(Set(stored.map(\.id)) == committed)
            #expect(stored.count == committed.count)
            let subnets = try await store.read { try await $0.listSubnets(listQuery(limit: 1_000), vpcID: nil) }.items
            #expect(Set(subnets.map(\.vpcID)) == Set((0..<count).filter { $0 % Way.allCases.count == Way.insertsAChild.rawValue }.map { "vpc-\($0)" }))
            // The committed members' events and no other, numbered without a gap.
            let events = try await store.read { try await $0.listEvents(EventQuery(viewer: .system, ascending: true, limit: 10_000)) }.items
            #expect(events.map(\.seq) == Array(1...UInt64(committed.count)))
            #expect(Set(events.map(\.resourceID)) == committed)
            #expect(try await store.read { try await $0.logHead() } == UInt64(committed.count))
        }
    }

    private static func created(_ vpc: VPC) -> ChangeEvent {
        ChangeEvent(type: .created, state: .vpc(vpc), actor: "tenant-a", committedAt: vpc.createdAt)
    }

    private static func run(_ i: Int, _ tx: any RegistryTransaction, taken: VPC) async throws {
        let own = vpc("vpc-\(i)", at: Double(i))
        try await tx.insertVPC(own)
        _ = try await tx.appendEvents([created(own)])
        switch Way(rawValue: i % Way.allCases.count)! {
        case .commits:
            break
        case .duplicate:
            try await tx.insertVPC(taken)
        case .readsThenThrows:
            #expect(try await tx.vpc(id: own.id, visibleTo: .anyOwner(in: "r1")) == own)
            throw Refused()
        case .throwsAtOnce:
            throw Refused()
        case .insertsAChild:
            try await tx.insertSubnet(
                Subnet(
                    id: "subnet-\(i)", vpcID: own.id, name: "s", cidr: "10.0.1.0/24", region: "r1", ownerID: "tenant-a",
                    createdAt: own.createdAt, updatedAt: own.createdAt))
        }
    }
}
