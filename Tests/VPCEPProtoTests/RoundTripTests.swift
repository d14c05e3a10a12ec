import Testing
import VPCEPProto

@Suite("Round trips through protobuf-c")
struct RoundTripTests {
    private func roundTrip<M: ProtoMessage>(_ message: M) throws -> M {
        let bytes = try message.serializedBytes()
        let lent = try message.withSerializedBytes { Array($0) }
        #expect(lent == bytes, "withSerializedBytes lends the same bytes serializedBytes returns")
        return try M(serializedBytes: bytes)
    }

    @Test("every field kind of EndpointService")
    func endpointService() throws {
        let message = Fixtures.endpointService
        let decoded = try roundTrip(message)
        #expect(decoded == message)
        #expect(decoded.revision == UInt64.max)
        #expect(decoded.description == "Café ☕ 東京 — naïve 🚀")
        #expect(decoded.ports.count == 2)
        #expect(decoded.ports[0].protocol == .tcp)
        #expect(decoded.tags[1] == Tag(key: "owner", value: ""))
        #expect(decoded.warnings == ["backend ingress does not admit 198.19.128.0/17", ""])
    }

    @Test("unknown enum values survive", arguments: [Int32(5), 99, Int32.max, -1, Int32.min])
    func unknownEnumValue(raw: Int32) throws {
        var message = Fixtures.endpointService
        message.status = ServiceStatus(rawValue: raw)
        message.ports[1].protocol = PortProtocol(rawValue: raw)
        let decoded = try roundTrip(message)
        #expect(decoded.status.rawValue == raw)
        #expect(decoded.status.protoName == nil)
        #expect(decoded.ports[1].protocol.rawValue == raw)
    }

    @Test("presence wrappers: present true, present false, absent", arguments: [true, false, nil] as [Bool?])
    func wrapper(value: Bool?) throws {
        let request = CreateEndpointServiceRequest(
            vpcId: "vpc-1",
            backendType: .vm,
            backendId: "vm-1",
            ports: [PortMapping(terminalPort: 80, servicePort: 8080)],
            approvalEnabled: value,
            clientIpMode: .proxyOpen,
            tags: [Tag(key: "k", value: "v")],
            serviceType: .gateway
        )
        let decoded = try roundTrip(request)
        #expect(decoded == request)
        #expect(decoded.approvalEnabled == value)
    }

    @Test("absent and present submessages")
    func submessage() throws {
        let absent = ListEndpointServicesRequest(name: "web", status: .creating)
        #expect(try roundTrip(absent).page == nil)
        let empty = ListEndpointServicesRequest(page: PageRequest())
        #expect(try roundTrip(empty).page == PageRequest(), "an empty submessage is still present")
        let full = ListEndpointServicesRequest(
            page: PageRequest(limit: 1000, offset: .max, sortKey: "updated_at", sortDir: "asc"),
            id: "eps-1"
        )
        #expect(try roundTrip(full) == full)
    }

    @Test("nested messages and nested enums")
    func nested() throws {
        let status = Status(
            code: 3,
            reason: "INVALID_ARGUMENT",
            message: "bad ports",
            fieldViolations: [
                FieldViolation(field: "ports[2].terminal_port", reason: "PORT_OUT_OF_RANGE", description: "0"),
                FieldViolation(),
            ],
            retryAfterMs: .max,
            requestId: "r-1"
        )
        #expect(try roundTrip(status) == status)
        let who = WhoAmIResponse(kind: .operator, id: "ops", region: "eu-west-1", regions: ["eu-west-1", "eu-north-1"])
        #expect(try roundTrip(who) == who)
        let health = HealthCheckResponse(status: .notServing)
        #expect(try roundTrip(health) == health)
        let header = CallHeader(
            method: "/vpcep.v1.Inventory/CreateVpc",
            region: "eu-west-1",
            timeoutMs: .max,
            requestId: "r",
            idempotencyKey: "k"
        )
        #expect(try roundTrip(header) == header)
    }

    @Test("inventory and quota messages")
    func inventory() throws {
        let lbs = ListLoadBalancersResponse(
            items: [
                LoadBalancer(id: "lb-1", vpcId: "v", subnetId: "s", name: "n", ip: "10.0.0.5", ingressCidrs: ["10.0.0.0/8", "198.19.128.0/17"]),
                LoadBalancer(),
            ],
            totalCount: 2
        )
        #expect(try roundTrip(lbs) == lbs)
        let vpc = CreateVpcRequest(name: "a", cidr: "10.0.0.0/16")
        #expect(try roundTrip(vpc) == vpc)
        let quotas = ListQuotasResponse(items: [Quota(type: .endpointService, used: 1, quota: 10), Quota(type: .endpoint)])
        #expect(try roundTrip(quotas) == quotas)
    }

    @Test("default messages encode to zero bytes and decode from them")
    func empty() throws {
        #expect(try EndpointService().serializedBytes().isEmpty)
        #expect(try HealthCheckRequest().serializedBytes().isEmpty)
        #expect(try EndpointService(serializedBytes: []) == EndpointService())
        let lent = try HealthCheckRequest().withSerializedBytes { $0.count }
        #expect(lent == 0)
    }

    @Test("a large message with many repeated elements")
    func large() throws {
        let items = (0..<2000).map { i in
            Vpc(id: "vpc-\(i)", name: String(repeating: "n", count: i % 300), cidr: "10.\(i % 256).0.0/16")
        }
        let response = ListVpcsResponse(items: items, totalCount: 2000)
        #expect(try roundTrip(response) == response)
    }

    @Test("fields decode from the wire bytes protobuf defines")
    func knownBytes() throws {
        // field 1 (name) "a", field 2 (cidr) "b"
        let bytes: [UInt8] = [0x0A, 0x01, 0x61, 0x12, 0x01, 0x62]
        #expect(try CreateVpcRequest(name: "a", cidr: "b").serializedBytes() == bytes)
        #expect(try CreateVpcRequest(serializedBytes: bytes) == CreateVpcRequest(name: "a", cidr: "b"))
    }
}
