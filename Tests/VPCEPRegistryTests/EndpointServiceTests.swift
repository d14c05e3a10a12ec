import Foundation
import Testing
import VPCEPRegistry
import VPCEPTestSupport

@Suite("Endpoint services")
struct EndpointServiceTests {
    @Test func createAppliesDefaultsAndIsAvailable() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let service = try await registry.createEndpointService(tenantA, spec(network))
            #expect(service.serviceName == "r1.\(service.id)")
            #expect(service.name == "")
            #expect(service.ownerID == "tenant-a")
            #expect(service.region == "r1")
            #expect(service.vpcID == network.vpc.id)
            #expect(service.serviceType == .interface)
            #expect(service.backendKind == .loadBalancer)
            #expect(service.backendID == network.loadBalancer.id)
            #expect(service.ports == [PortMapping(terminalPort: 80, servicePort: 8080, protocol: "TCP")])
            #expect(service.approvalEnabled)
            #expect(service.clientIPMode == .close)
            #expect(service.status == .available)
            #expect(service.connectionCount == 0)
            #expect(service.revision == 1)
            #expect(service.createdAt == service.updatedAt)
            #expect(service.warnings.isEmpty)
            #expect(service.tags.isEmpty)

            #expect(try await registry.getEndpointService(tenantA, id: service.id, serviceName: nil) == service)
            #expect(try await registry.getEndpointService(tenantA, id: nil, serviceName: service.serviceName) == service)
            #expect(try await registry.getEndpointService(tenantA, id: "", serviceName: service.serviceName) == service)
        }
    }

    @Test func createKeepsEveryGivenField() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let tags = [Tag(key: "env", value: "prod/eu"), Tag(key: "Team Name_.:=+-@", value: ""), Tag(key: "环境", value: "生产")]
            let request = EndpointServiceSpec(
                vpcID: network.vpc.id, backendKind: .vm, backendID: network.vm.id,
                ports: [
                    PortMapping(terminalPort: 443, servicePort: 8443, protocol: "tcp"),
                    PortMapping(terminalPort: 1, servicePort: 65535, protocol: ""),
                    PortMapping(terminalPort: 65535, servicePort: 8443),
                ],
                name: "my-svc_1", approvalEnabled: false, clientIPMode: .proxyOpen,
                description: "Orders API, v2 (beta) & more", tags: tags, serviceType: .interface)
            let service = try await registry.createEndpointService(tenantA, request)
            #expect(service.serviceName == "r1.my-svc_1.\(service.id)")
            #expect(service.name == "my-svc_1")
            #expect(service.backendKind == .vm)
            #expect(service.ports.map(\.protocol) == ["TCP", "TCP", "TCP"])
            #expect(service.ports.map(\.terminalPort) == [443, 1, 65535])
            #expect(!service.approvalEnabled)
            #expect(service.clientIPMode == .proxyOpen)
            #expect(service.description == "Orders API, v2 (beta) & more")
            #expect(service.tags == tags)
            #expect(try await registry.getEndpointService(tenantA, id: service.id, serviceName: nil) == service)
        }
    }

    @Test(arguments: [
        ([String](), true), (["10.0.0.0/8"], true), (["198.19.128.0/18"], true),
        (["198.19.128.0/18", "198.19.192.0/18"], false), (["198.19.0.0/16"], false), (["0.0.0.0/0"], false),
        (["198.19.128.0/17"], false), (["198.19.128.0/18", "198.19.192.0/19", "198.19.224.0/19"], false),
        (["198.19.128.0/18", "198.19.224.0/19"], true),
    ])
    func warnsWhenIngressDoesNotAdmitTheEndpointRange(ingress: [String], warns: Bool) async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let backend = try await registry.createBackend(
                tenantA, kind: .loadBalancer, vpcID: network.vpc.id, subnetID: network.subnet.id, name: "lb2",
                ip: nil, ingressCIDRs: ingress)
            var request = spec(network)
            request.backendID = backend.id
            let service = try await registry.createEndpointService(tenantA, request)
            #expect(service.warnings.count == (warns ? 1 : 0))
            if warns {
                #expect(service.warnings[0].hasPrefix("BACKEND_INGRESS_EXCLUDES_ENDPOINT_RANGE:"))
                #expect(service.warnings[0].contains("198.19.128.0/17"))
            }
            // The warning is part of the service, not only of the create response.
            #expect(try await registry.getEndpointService(tenantA, id: service.id, serviceName: nil).warnings == service.warnings)
        }
    }

    @Test func clientIPNoteExplainsWhatTheBackendSees() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var notes: [ClientIPMode: String] = [:]
            for (i, mode) in ClientIPMode.allCases.enumerated() {
                var request = spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 9000 + i)])
                request.clientIPMode = mode
                let service = try await registry.createEndpointService(tenantA, request)
                #expect(service.clientIPMode == mode)
                #expect(service.clientIPNote.contains("load balancer"))
                #expect(service.clientIPNote.contains("not from the real client IP"))
                notes[mode] = service.clientIPNote
                let fetched = try await registry.getEndpointService(tenantA, id: service.id, serviceName: nil)
                #expect(fetched.clientIPNote == service.clientIPNote)
            }
            #expect(notes[.close]!.contains("carries nothing"))
            #expect(notes[.toaOpen]!.contains("TCP option"))
            #expect(!notes[.toaOpen]!.contains("PROXY"))
            #expect(notes[.proxyOpen]!.contains("PROXY protocol"))
            #expect(notes[.open]!.contains("TCP option") && notes[.open]!.contains("PROXY protocol"))

            var vmRequest = spec(network)
            vmRequest.backendKind = .vm
            vmRequest.backendID = network.vm.id
            let vmService = try await registry.createEndpointService(tenantA, vmRequest)
            #expect(vmService.clientIPNote.contains("VM backend"))
        }
    }

    @Test func gatewayServicesNeedAnOperator() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var request = spec(network)
            request.serviceType = .gateway
            await expectError(.permissionDenied, "GATEWAY_REQUIRES_OPERATOR", field: "service_type") {
                try await registry.createEndpointService(tenantA, request)
            }
            let opsNetwork = try await makeNetwork(registry, operatorR1)
            var opsRequest = spec(opsNetwork)
            opsRequest.serviceType = .gateway
            let gateway = try await registry.createEndpointService(operatorR1, opsRequest)
            #expect(gateway.serviceType == .gateway)
            #expect(gateway.ownerID == "operator:ops")
            opsRequest.serviceType = .interface
            opsRequest.ports = [PortMapping(terminalPort: 80, servicePort: 9090)]
            #expect(try await registry.createEndpointService(operatorR1, opsRequest).serviceType == .interface)
        }
    }

    @Test func vpcAndBackendMustBeTheCallersAndMatch() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let other = try await makeNetwork(registry, tenantA, cidr: "10.7.0.0/16")
            let foreign = try await makeNetwork(registry, tenantB)
            func create(_ change: (inout EndpointServiceSpec) -> Void, _ ctx: CallContext = tenantA) async throws(RegistryError) -> EndpointService {
                var request = spec(network)
                change(&request)
                return try await registry.createEndpointService(ctx, request)
            }
            await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") { try await create { $0.vpcID = "nope" } }
            await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") {
                try await create { $0.vpcID = foreign.vpc.id; $0.backendID = foreign.loadBalancer.id }
            }
            await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") { try await create({ _ in }, tenantAInR2) }
            await expectError(.notFound, "VPC_NOT_FOUND", field: "vpc_id") { try await create({ _ in }, operatorR1) }
            await expectError(.invalidArgument, "VPC_ID_REQUIRED", field: "vpc_id") { try await create { $0.vpcID = "" } }
            await expectError(.invalidArgument, "BACKEND_TYPE_REQUIRED", field: "backend_type") {
                try await create { $0.backendKind = nil }
            }
            await expectError(.invalidArgument, "BACKEND_ID_REQUIRED", field: "backend_id") {
                try await create { $0.backendID = "" }
            }
            await expectError(.notFound, "BACKEND_NOT_FOUND", field: "backend_id") {
                try await create { $0.backendID = "nope" }
            }
            // A VM id given as a load balancer.
            await expectError(.notFound, "BACKEND_NOT_FOUND", field: "backend_id") {
                try await create { $0.backendID = network.vm.id }
            }
            await expectError(.notFound, "BACKEND_NOT_FOUND", field: "backend_id") {
                try await create { $0.backendID = foreign.loadBalancer.id }
            }
            await expectError(.invalidArgument, "BACKEND_NOT_IN_VPC", field: "backend_id") {
                try await create { $0.backendID = other.loadBalancer.id }
            }
            _ = try await create { $0.backendKind = .vm; $0.backendID = network.vm.id }
        }
    }

    @Test func portMappingRules() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            func create(_ ports: [PortMapping]) async throws(RegistryError) -> EndpointService {
                try await registry.createEndpointService(tenantA, spec(network, ports: ports))
            }
            let ok = PortMapping(terminalPort: 80, servicePort: 80)
            await expectError(.invalidArgument, "PORT_MAPPINGS_REQUIRED", field: "ports") { try await create([]) }
            let fiftyOne = (1...51).map { PortMapping(terminalPort: $0, servicePort: 1000 + $0) }
            await expectError(.invalidArgument, "TOO_MANY_PORT_MAPPINGS", field: "ports") { try await create(fiftyOne) }
            for (terminal, service, field) in [
                (0, 80, "ports[1].terminal_port"), (65536, 80, "ports[1].terminal_port"), (-1, 80, "ports[1].terminal_port"),
                (81, 0, "ports[1].service_port"), (81, 65536, "ports[1].service_port"),
            ] {
                await expectError(.invalidArgument, "PORT_OUT_OF_RANGE", field: field) {
                    try await create([ok, PortMapping(terminalPort: terminal, servicePort: service)])
                }
            }
            for proto in ["UDP", "http", " TCP"] {
                await expectError(.invalidArgument, "PROTOCOL_UNSUPPORTED", field: "ports[0].protocol") {
                    try await create([PortMapping(terminalPort: 80, servicePort: 80, protocol: proto)])
                }
            }
            await expectError(.invalidArgument, "PORT_MAPPING_DUPLICATE", field: "ports[2].terminal_port") {
                try await create([ok, PortMapping(terminalPort: 81, servicePort: 81), PortMapping(terminalPort: 80, servicePort: 82)])
            }
            // Fifty mappings, and two terminal ports on one service port, are fine.
            let fifty = (1...50).map { PortMapping(terminalPort: $0, servicePort: 1000 + $0) }
            #expect(try await create(fifty).ports.count == 50)
            let twoToOne = try await create([
                PortMapping(terminalPort: 80, servicePort: 8080), PortMapping(terminalPort: 8080, servicePort: 8080),
            ])
            #expect(twoToOne.ports.count == 2)
        }
    }

    @Test func servicesSharingABackendMustNotRepeatAServicePort() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            _ = try await registry.createEndpointService(
                tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 8080)]))
            await expectError(.failedPrecondition, "SERVICE_PORT_CONFLICT", field: "ports[1].service_port") {
                try await registry.createEndpointService(
                    tenantA,
                    spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 9000), PortMapping(terminalPort: 81, servicePort: 8080)]))
            }
            // Same terminal port, other service port: fine. Same service port on another backend: fine.
            _ = try await registry.createEndpointService(
                tenantA, spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 8081)]))
            var onVM = spec(network, ports: [PortMapping(terminalPort: 80, servicePort: 8080)])
            onVM.backendKind = .vm
            onVM.backendID = network.vm.id
            _ = try await registry.createEndpointService(tenantA, onVM)
        }
    }

    @Test(arguments: [
        ("", true), ("a", true), ("0123456789abcdef", true), ("A-b_C", true),
        ("0123456789abcdefg", false), ("a.b", false), ("a b", false), ("ü", false), ("a/b", false),
    ])
    func serviceNameRule(name: String, valid: Bool) async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var request = spec(network)
            request.name = name
            if valid {
                let service = try await registry.createEndpointService(tenantA, request)
                #expect(service.serviceName == (name.isEmpty ? "r1.\(service.id)" : "r1.\(name).\(service.id)"))
            } else {
                await expectError(.invalidArgument, "SERVICE_NAME_INVALID", field: "name") {
                    try await registry.createEndpointService(tenantA, request)
                }
            }
        }
    }

    @Test(arguments: [
        (String(repeating: "d", count: 128), true), ("", true), ("ünïcödé & \"quotes\"", true),
        (String(repeating: "d", count: 129), false), ("<script>", false), ("a > b", false),
        // Control characters would reach consoles and terminals raw (newline, ESC/OSC, DEL, C1, U+2028).
        ("emoji 🚀 and שלום", true), ("line one\nline two", false), ("\u{1b}]0;title\u{7}", false), ("tab\there", false),
        ("del\u{7f}", false), ("csi\u{9b}31m", false), ("sep\u{2028}", false), ("nul\u{0}", false),
    ])
    func descriptionRule(description: String, valid: Bool) async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var request = spec(network)
            request.description = description
            if valid {
                #expect(try await registry.createEndpointService(tenantA, request).description == description)
            } else {
                await expectError(.invalidArgument, "DESCRIPTION_INVALID", field: "description") {
                    try await registry.createEndpointService(tenantA, request)
                }
            }
        }
    }

    @Test func tagRules() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            var port = 1000
            func create(_ tags: [Tag]) async throws(RegistryError) -> EndpointService {
                port += 1
                var request = spec(network, ports: [PortMapping(terminalPort: 80, servicePort: port)])
                request.tags = tags
                return try await registry.createEndpointService(tenantA, request)
            }
            let ok = Tag(key: "ok", value: "v")
            let twenty = (0..<20).map { Tag(key: "k\($0)", value: "v") }
            #expect(try await create(twenty).tags == twenty)
            #expect(try await create([Tag(key: String(repeating: "k", count: 128), value: String(repeating: "v", count: 255))]).tags.count == 1)
            await expectError(.invalidArgument, "TOO_MANY_TAGS", field: "tags") {
                try await create(twenty + [Tag(key: "k20", value: "v")])
            }
            for key in ["", String(repeating: "k", count: 129), "_sys_x", " lead", "trail ", "a/b", "a<b", "a#b", "a\tb", "a\u{1b}b", "a\u{85}b"] {
                await expectError(.invalidArgument, "TAG_INVALID", field: "tags[1].key") {
                    try await create([ok, Tag(key: key, value: "v")])
                }
            }
            for value in [String(repeating: "v", count: 256), "a<b", "a#b", "a,b", "a\u{1b}[2Jb", "a\nb", "a\u{2029}b"] {
                await expectError(.invalidArgument, "TAG_INVALID", field: "tags[1].value") {
                    try await create([ok, Tag(key: "k", value: value)])
                }
            }
            await expectError(.invalidArgument, "TAG_DUPLICATE_KEY", field: "tags[2].key") {
                try await create([ok, Tag(key: "other", value: "1"), Tag(key: "ok", value: "2")])
            }
            // Keys differing only in case are distinct; `_sys_` elsewhere than the start is fine.
            #expect(try await create([ok, Tag(key: "OK", value: "v"), Tag(key: "x_sys_", value: "")]).tags.count == 3)
        }
    }

    @Test func getNeedsExactlyOneOfIDAndName() async throws {
        try await withRegistry { registry, _ in
            let network = try await makeNetwork(registry, tenantA)
            let service = try await registry.createEndpointService(tenantA, spec(network))
            await expectError(.invalidArgument, "ID_OR_NAME_REQUIRED", field: "id") {
                try await registry.getEndpointService(tenantA, id: nil, serviceName: nil)
            }
            await expectError(.invalidArgument, "ID_OR_NAME_REQUIRED", field: "id") {
                try await registry.getEndpointService(tenantA, id: "", serviceName: "")
            }
            await expectError(.invalidArgument, "ID_OR_NAME_REQUIRED", field: "service_name") {
                try await registry.getEndpointService(tenantA, id: service.id, serviceName: service.serviceName)
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "id") {
                try await registry.getEndpointService(tenantA, id: "no-such-service", serviceName: nil)
            }
            await expectError(.notFound, "SERVICE_NOT_FOUND", field: "service_name") {
                try await registry.getEndpointService(tenantA, id: nil, serviceName: "r1.\(service.id)x")
            }
        }
    }
}
