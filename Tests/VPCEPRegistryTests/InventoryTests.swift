import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Network inventory")
struct InventoryTests {
    @Test func createVPCRecordsOwnerRegionAndTimes() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "prod_vpc-1.a", cidr: "10.0.0.0/16")
            #expect(vpc.name == "prod_vpc-1.a")
            #expect(vpc.cidr == "10.0.0.0/16")
            #expect(vpc.region == "r1")
            #expect(vpc.ownerID == "tenant-a")
            #expect(vpc.createdAt == vpc.updatedAt)
            let listed = try await registry.listVPCs(tenantA, page: PageRequest())
            #expect(listed.items == [vpc])
            #expect(listed.totalCount == 1)

            let ops = try await registry.createVPC(operatorR1, name: "ops", cidr: "172.16.0.0/12")
            #expect(ops.ownerID == "operator:ops")
        }
    }

    @Test(arguments: ["10.0.0.0/8", "10.0.0.0/28", "192.168.0.0/16", "198.19.0.0/16"])
    func vpcPrefixesInRange(cidr: String) async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: cidr)
            #expect(vpc.cidr == cidr)
        }
    }

    @Test(arguments: ["", String(repeating: "a", count: 65), "has space", "a/b", "ä", "a,b", "a\u{0}b", "a\n", "١", "-\u{301}", "a\r\nb"])
    func vpcNameInvalid(name: String) async throws {
        try await withRegistry { registry, _ in
            await expectError(.invalidArgument, "NAME_INVALID", field: "name") {
                try await registry.createVPC(tenantA, name: name, cidr: "10.0.0.0/16")
            }
        }
    }

    @Test func vpcNameOf64Accepted() async throws {
        try await withRegistry { registry, _ in
            _ = try await registry.createVPC(tenantA, name: String(repeating: "a", count: 64), cidr: "10.0.0.0/16")
        }
    }

    @Test(arguments: [
        ("10.0.0.0", "CIDR_INVALID"), ("10.0.0/16", "CIDR_INVALID"), ("256.0.0.0/16", "CIDR_INVALID"),
        ("10.0.0.0/33", "CIDR_INVALID"), ("010.0.0.0/16", "CIDR_INVALID"), ("10.0.0.0/016", "CIDR_INVALID"),
        ("abc", "CIDR_INVALID"), (" 10.0.0.0/16", "CIDR_INVALID"), ("10.0.0.0/16/1", "CIDR_INVALID"),
        ("", "CIDR_INVALID"), ("10.0.0.1/16", "CIDR_HOST_BITS_SET"), ("10.1.0.0/8", "CIDR_HOST_BITS_SET"),
        ("10.0.0.0/7", "CIDR_PREFIX_OUT_OF_RANGE"), ("10.0.0.0/29", "CIDR_PREFIX_OUT_OF_RANGE"),
        ("0.0.0.0/0", "CIDR_PREFIX_OUT_OF_RANGE"),
    ])
    func vpcCIDRInvalid(cidr: String, reason: String) async throws {
        try await withRegistry { registry, _ in
            await expectError(.invalidArgument, reason, field: "cidr") {
                try await registry.createVPC(tenantA, name: "v", cidr: cidr)
            }
        }
    }

    @Test func subnetInsideVPC() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let whole = try await registry.createVPC(tenantA, name: "w", cidr: "10.9.0.0/28")
            let subnet = try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "s", cidr: "10.0.4.0/22")
            #expect(subnet.vpcID == vpc.id)
            #expect(subnet.cidr == "10.0.4.0/22")
            #expect(subnet.region == "r1")
            #expect(subnet.ownerID == "tenant-a")
            // The smallest subnet, and one as large as its VPC.
            _ = try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "t", cidr: "10.0.0.8/29")
            _ = try await registry.createSubnet(tenantA, vpcID: whole.id, name: "all", cidr: "10.9.0.0/28")
            // Adjacent to the reserved range is fine.
            let edge = try await registry.createVPC(tenantA, name: "e", cidr: "198.19.0.0/16")
            _ = try await registry.createSubnet(tenantA, vpcID: edge.id, name: "below", cidr: "198.19.0.0/17")

            let listed = try await registry.listSubnets(tenantA, vpcID: vpc.id, page: PageRequest())
            #expect(listed.totalCount == 2)
            #expect(Set(listed.items.map(\.vpcID)) == [vpc.id])
            #expect(try await registry.listSubnets(tenantA, vpcID: nil, page: PageRequest()).totalCount == 4)
            #expect(try await registry.listSubnets(tenantA, vpcID: "", page: PageRequest()).totalCount == 4)
            #expect(try await registry.listSubnets(tenantA, vpcID: "no-such-vpc", page: PageRequest()).totalCount == 0)
        }
    }

    @Test func subnetNeedsAVisibleOwnVPC() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            await expectError(.invalidArgument, "VPC_ID_REQUIRED", field: "vpc_id") {
                try await registry.createSubnet(tenantA, vpcID: "", name: "s", cidr: "10.0.1.0/24")
            }
            for ctx in [tenantB, tenantAInR2, operatorR1] {
                await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") {
                    try await registry.createSubnet(ctx, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/24")
                }
            }
            await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") {
                try await registry.createSubnet(tenantA, vpcID: "no-such-vpc", name: "s", cidr: "10.0.1.0/24")
            }
        }
    }

    @Test func subnetCIDRRules() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            _ = try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/24")
            await expectError(.invalidArgument, "SUBNET_CIDR_OUTSIDE_VPC", field: "cidr") {
                try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "x", cidr: "10.1.0.0/24")
            }
            await expectError(.invalidArgument, "SUBNET_CIDR_OUTSIDE_VPC", field: "cidr") {
                try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "x", cidr: "10.0.0.0/15")
            }
            await expectError(.failedPrecondition, "SUBNET_CIDR_OVERLAP", field: "cidr") {
                try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "x", cidr: "10.0.1.128/25")
            }
            await expectError(.failedPrecondition, "SUBNET_CIDR_OVERLAP", field: "cidr") {
                try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "x", cidr: "10.0.0.0/23")
            }
            await expectError(.invalidArgument, "CIDR_PREFIX_OUT_OF_RANGE", field: "cidr") {
                try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "x", cidr: "10.0.2.0/30")
            }
            await expectError(.invalidArgument, "CIDR_HOST_BITS_SET", field: "cidr") {
                try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "x", cidr: "10.0.2.1/24")
            }
            await expectError(.invalidArgument, "CIDR_INVALID", field: "cidr") {
                try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "x", cidr: "10.0.2/24")
            }
            await expectError(.invalidArgument, "NAME_INVALID", field: "name") {
                try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "", cidr: "10.0.2.0/24")
            }
            // Another VPC may reuse the range.
            let other = try await registry.createVPC(tenantA, name: "o", cidr: "10.0.0.0/16")
            _ = try await registry.createSubnet(tenantA, vpcID: other.id, name: "s", cidr: "10.0.1.0/24")
        }
    }

    @Test(arguments: ["198.19.128.0/24", "198.19.255.248/29", "198.19.0.0/16", "198.16.0.0/14"])
    func subnetNeverOverlapsTheEndpointRange(cidr: String) async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "198.0.0.0/8")
            await expectError(.invalidArgument, "SUBNET_CIDR_RESERVED", field: "cidr") {
                try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "s", cidr: cidr)
            }
        }
    }

    @Test func backendAddressesAllocatedLowestFirstFromDotTwo() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let subnet = try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/24")
            func create(_ kind: BackendKind, _ ip: String?) async throws -> Backend {
                try await registry.createBackend(
                    tenantA, kind: kind, vpcID: vpc.id, subnetID: subnet.id, name: "b", ip: ip, ingressCIDRs: [])
            }
            #expect(try await create(.loadBalancer, nil).ip == "10.0.1.2")
            #expect(try await create(.vm, "10.0.1.4").ip == "10.0.1.4")
            // Load balancers and VMs share the subnet's addresses; gaps are filled first.
            #expect(try await create(.vm, nil).ip == "10.0.1.3")
            #expect(try await create(.loadBalancer, "").ip == "10.0.1.5")
            #expect(try await create(.vm, "10.0.1.254").ip == "10.0.1.254")
        }
    }

    @Test func backendRequestedAddressRules() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let subnet = try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/24")
            func create(_ ip: String) async throws(RegistryError) -> Backend {
                try await registry.createBackend(
                    tenantA, kind: .vm, vpcID: vpc.id, subnetID: subnet.id, name: "b", ip: ip, ingressCIDRs: [])
            }
            _ = try await create("10.0.1.10")
            await expectError(.failedPrecondition, "IP_IN_USE", field: "ip") { try await create("10.0.1.10") }
            for reserved in ["10.0.1.0", "10.0.1.1", "10.0.1.255"] {
                await expectError(.invalidArgument, "IP_RESERVED", field: "ip") { try await create(reserved) }
            }
            await expectError(.invalidArgument, "IP_OUTSIDE_SUBNET", field: "ip") { try await create("10.0.2.10") }
            for bad in ["10.0.1", "10.0.1.256", "10.0.1.10/32", "x"] {
                await expectError(.invalidArgument, "IP_INVALID", field: "ip") { try await create(bad) }
            }
        }
    }

    @Test func fullSubnetIsResourceExhausted() async throws {
        try await withRegistry { registry, _ in
            let vpc = try await registry.createVPC(tenantA, name: "v", cidr: "10.0.0.0/16")
            let subnet = try await registry.createSubnet(tenantA, vpcID: vpc.id, name: "s", cidr: "10.0.1.0/29")
            var ips: [String] = []
            for _ in 0..<5 {
                ips.append(
                    try await registry.createBackend(
                        tenantA, kind: .vm, vpcID: vpc.id, subnetID: subnet.id, name: "b", ip: nil, ingressCIDRs: []
                    ).ip)
            }
            #expect(ips == ["10.0.1.2", "10.0.1.3", "10.0.1.4", "10.0.1.5", "10.0.1.6"])
            await expectError(.resourceExhausted, "SUBNET_FULL", field: "subnet_id") {
                try await registry.createBackend(
                    tenantA, kind: .loadBalancer, vpcID: vpc.id, subnetID: subnet.id, name: "b", ip: nil,
                    ingressCIDRs: [])
            }
        }
    }

    @Test func backendPlacementRules() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let otherVPC = try await registry.createVPC(tenantA, name: "o", cidr: "10.1.0.0/16")
            let foreign = try await makeNetwork(registry, tenantB)
            func create(_ ctx: CallContext = tenantA, vpc: String, subnet: String) async throws(RegistryError) -> Backend {
                try await registry.createBackend(
                    ctx, kind: .loadBalancer, vpcID: vpc, subnetID: subnet, name: "b", ip: nil, ingressCIDRs: [])
            }
            await expectError(.invalidArgument, "SUBNET_NOT_IN_VPC", field: "subnet_id") {
                try await create(vpc: otherVPC.id, subnet: network.subnet.id)
            }
            await expectError(.notFound, "SUBNET_NOT_FOUND", field: "subnet_id") {
                try await create(vpc: network.vpc.id, subnet: "no-such-subnet")
            }
            await expectError(.notFound, "SUBNET_NOT_FOUND", field: "subnet_id") {
                try await create(vpc: network.vpc.id, subnet: foreign.subnet.id)
            }
            await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") {
                try await create(vpc: foreign.vpc.id, subnet: foreign.subnet.id)
            }
            await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") {
                try await create(tenantAInR2, vpc: network.vpc.id, subnet: network.subnet.id)
            }
            await expectError(.invalidArgument, "VPC_ID_REQUIRED", field: "vpc_id") {
                try await create(vpc: "", subnet: network.subnet.id)
            }
            await expectError(.invalidArgument, "SUBNET_ID_REQUIRED", field: "subnet_id") {
                try await create(vpc: network.vpc.id, subnet: "")
            }
            await expectError(.invalidArgument, "NAME_INVALID", field: "name") {
                try await registry.createBackend(
                    tenantA, kind: .vm, vpcID: network.vpc.id, subnetID: network.subnet.id, name: "a b", ip: nil,
                    ingressCIDRs: [])
            }
        }
    }

    @Test func ingressCIDRRules() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            func create(_ ingress: [String]) async throws(RegistryError) -> Backend {
                try await registry.createBackend(
                    tenantA, kind: .vm, vpcID: network.vpc.id, subnetID: network.subnet.id, name: "b", ip: nil,
                    ingressCIDRs: ingress)
            }
            let twenty = (0..<20).map { "10.\($0).0.0/16" }
            let accepted = try await create(["192.168.0.7", "0.0.0.0/0"] + twenty.prefix(18))
            #expect(accepted.ingressCIDRs.prefix(2) == ["192.168.0.7/32", "0.0.0.0/0"])
            #expect(accepted.ingressCIDRs.count == 20)
            await expectError(.invalidArgument, "TOO_MANY_INGRESS_CIDRS", field: "ingress_cidrs") {
                try await create(twenty + ["10.200.0.0/16"])
            }
            await expectError(.invalidArgument, "CIDR_INVALID", field: "ingress_cidrs[1]") {
                try await create(["10.0.0.0/8", "10.0.0.0/40"])
            }
            await expectError(.invalidArgument, "CIDR_HOST_BITS_SET", field: "ingress_cidrs[2]") {
                try await create(["10.0.0.0/8", "1.2.3.4", "10.0.0.1/8"])
            }
        }
    }

    @Test func backendsListedByKindAndVPC() async throws {
        try await withRegistry { registry, _ in
            let first = try await makeNetwork(registry, tenantA)
            let second = try await makeNetwork(registry, tenantA, cidr: "10.5.0.0/16")
            let lbs = try await registry.listBackends(tenantA, kind: .loadBalancer, vpcID: nil, page: PageRequest())
            #expect(lbs.totalCount == 2)
            #expect(lbs.items.allSatisfy { $0.kind == .loadBalancer })
            let vms = try await registry.listBackends(tenantA, kind: .vm, vpcID: second.vpc.id, page: PageRequest())
            #expect(vms.items == [second.vm])
            #expect(first.loadBalancer.ip == "10.0.1.2")
            #expect(first.vm.ip == "10.0.1.3")
            #expect(first.loadBalancer.subnetID == first.subnet.id)
            #expect(first.loadBalancer.ingressCIDRs == ["198.19.128.0/17"])
        }
    }
}
