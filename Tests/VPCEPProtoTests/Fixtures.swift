import VPCEPProto

/// Messages with every kind of field set, shared by the tests.
enum Fixtures {
    static let endpointService = EndpointService(
        id: "eps-0123456789abcdef",
        serviceName: "eu-west-1.web.eps-0123456789abcdef",
        name: "web",
        tenantId: "tenant-a",
        region: "eu-west-1",
        vpcId: "vpc-1",
        serviceType: .interface,
        backendType: .loadBalancer,
        backendId: "lb-1",
        ports: [
            PortMapping(terminalPort: 443, servicePort: 8443, protocol: .tcp),
            PortMapping(terminalPort: 65535, servicePort: 1),
        ],
        approvalEnabled: true,
        clientIpMode: .toaOpen,
        description: "Café ☕ 東京 — naïve 🚀",
        tags: [Tag(key: "env", value: "prod"), Tag(key: "owner", value: "")],
        status: .available,
        connectionCount: 3,
        createdAt: "2024-01-02T03:04:05.678Z",
        updatedAt: "2024-01-02T03:04:06.000Z",
        revision: .max,
        warnings: ["backend ingress does not admit 198.19.128.0/17", ""],
        clientIpNote: "TOA"
    )

    /// protoc text format of ``endpointService``, as `protoc --decode` prints it.
    static let endpointServiceText = #"""
        id: "eps-0123456789abcdef"
        service_name: "eu-west-1.web.eps-0123456789abcdef"
        name: "web"
        tenant_id: "tenant-a"
        region: "eu-west-1"
        vpc_id: "vpc-1"
        service_type: SERVICE_TYPE_INTERFACE
        backend_type: BACKEND_TYPE_LOAD_BALANCER
        backend_id: "lb-1"
        ports {
          terminal_port: 443
          service_port: 8443
          protocol: PORT_PROTOCOL_TCP
        }
        ports {
          terminal_port: 65535
          service_port: 1
        }
        approval_enabled: true
        client_ip_mode: CLIENT_IP_MODE_TOA_OPEN
        description: "Caf\303\251 \342\230\225 \346\235\261\344\272\254 \342\200\224 na\303\257ve \360\237\232\200"
        tags {
          key: "env"
          value: "prod"
        }
        tags {
          key: "owner"
        }
        status: SERVICE_STATUS_AVAILABLE
        connection_count: 3
        created_at: "2024-01-02T03:04:05.678Z"
        updated_at: "2024-01-02T03:04:06.000Z"
        revision: 18446744073709551615
        warnings: "backend ingress does not admit 198.19.128.0/17"
        warnings: ""
        client_ip_note: "TOA"

        """#
}
