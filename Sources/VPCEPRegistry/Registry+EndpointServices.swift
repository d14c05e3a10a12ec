import Foundation

/// Endpoint services: what a provider publishes from its VPC.
extension Registry {
    public func createEndpointService(_ ctx: CallContext, _ spec: EndpointServiceSpec) async throws(RegistryError) -> EndpointService {
        let scope = try scope(ctx)
        let serviceType = spec.serviceType ?? .interface
        guard serviceType != .gateway || scope.isOperator else {
            throw RegistryError(
                code: .permissionDenied, reason: .gatewayRequiresOperator,
                message: "only operators create gateway services", field: "service_type")
        }
        guard !spec.isPublic || scope.isOperator else {
            throw RegistryError(
                code: .permissionDenied, reason: .publicRequiresOperator,
                message: "only operators create public services", field: "public")
        }
        guard !spec.vpcID.isEmpty else { throw .invalid(.vpcIDRequired, "vpc_id is required", field: "vpc_id") }
        guard let backendKind = spec.backendKind else {
            throw .invalid(.backendTypeRequired, "backend_type is required", field: "backend_type")
        }
        guard !spec.backendID.isEmpty else {
            throw .invalid(.backendIDRequired, "backend_id is required", field: "backend_id")
        }
        let ports = try Validation.ports(spec.ports)
        try Validation.serviceName(spec.name)
        try Validation.description(spec.description)
        try Validation.tags(spec.tags)

        let id = makeID()
        let now = now()
        let clientIPMode = spec.clientIPMode ?? .close
        let limitType = QuotaType.endpointService
        let stored = try await write(ctx, "createEndpointService", request: [spec]) { tx in
            _ = try await Self.ownedVPC(tx, id: spec.vpcID, scope: scope)
            guard let backend = try await tx.backend(id: spec.backendID, visibleTo: scope.owning), backend.kind == backendKind,
                scope.owns(region: backend.region, ownerID: backend.ownerID)
            else {
                throw RegistryError.notFound(
                    .backendNotFound, "no such \(backendKind == .vm ? "VM" : "load balancer")", field: "backend_id")
            }
            guard backend.vpcID == spec.vpcID else {
                throw RegistryError.invalid(.backendNotInVPC, "the backend is not in the VPC", field: "backend_id")
            }
            try await Self.checkServicePorts(ports, backendID: backend.id, excluding: nil, tx)

            let used = try await tx.countEndpointServices(ownerID: scope.ownerID, region: scope.region)
            try await Self.checkQuota(tx, scope: scope, type: limitType, used: used)

            let service = EndpointService(
                id: id, serviceName: Self.serviceName(region: scope.region, name: spec.name, id: id), name: spec.name,
                ownerID: scope.ownerID, region: scope.region, vpcID: spec.vpcID, serviceType: serviceType,
                backendKind: backendKind, backendID: backend.id, ports: ports,
                approvalEnabled: spec.approvalEnabled ?? true, clientIPMode: clientIPMode,
                description: spec.description, tags: spec.tags,
                // There is no data plane to provision, so a service is usable as soon as it is recorded.
                status: .available, connectionCount: 0, createdAt: now, updatedAt: now, revision: 1,
                warnings: Self.warnings(backend: backend), clientIPNote: "", isPublic: spec.isPublic)
            try await tx.insertEndpointService(service)
            try await log(tx, ctx, [ChangeEvent(type: .created, state: .endpointService(service))])
            return service
        }
        return Self.present(stored)
    }

    public func getEndpointService(_ ctx: CallContext, id: String?, serviceName: String?) async throws(RegistryError) -> EndpointService {
        let scope = try scope(ctx)
        let ref = try ServiceRef(id: id, name: serviceName, idField: "id")
        guard let found = try await readableService(ref, scope: scope) else { throw ref.notFound }
        return Self.present(found)
    }

    public func listEndpointServices(
        _ ctx: CallContext, filter: EndpointServiceFilter, page: PageRequest
    ) async throws(RegistryError) -> ListResult<EndpointService> {
        let scope = try scope(ctx)
        let filter = EndpointServiceFilter(
            name: nonEmpty(filter.name), id: nonEmpty(filter.id), status: filter.status,
            tags: try Validation.tagFilters(filter.tags), tagMatch: filter.tagMatch, publicOnly: filter.publicOnly)
        let query = try Validation.page(
            page, region: scope.region, ownerID: scope.listOwner, list: "endpoint_services", filter: filter)
        let result = try await read { reader in try await reader.listEndpointServices(query, filter: filter) }
        return result.map(Self.present).withPageToken(for: query)
    }

    static func serviceName(region: String, name: String, id: String) -> String {
        name.isEmpty ? "\(region).\(id)" : "\(region).\(name).\(id)"
    }

    /// Services sharing a backend must not repeat a service port (with the same protocol).
    static func checkServicePorts(
        _ ports: [PortMapping], backendID: String, excluding serviceID: String?, _ reader: any RegistryReader
    ) async throws {
        var taken: Set<PortKey> = []
        for other in try await reader.endpointServices(backendID: backendID) where other.id != serviceID {
            for port in other.ports {
                taken.insert(PortKey(port: port.servicePort, protocol: port.protocol))
            }
        }
        for (i, port) in ports.enumerated() where taken.contains(PortKey(port: port.servicePort, protocol: port.protocol)) {
            throw RegistryError.precondition(
                .servicePortConflict,
                "service port \(port.servicePort) is already used by another service on the same backend",
                field: "ports[\(i)].service_port")
        }
    }

    private struct PortKey: Hashable {
        var port: Int
        var `protocol`: String
    }

    static let ingressWarning =
        "BACKEND_INGRESS_EXCLUDES_ENDPOINT_RANGE: the backend's ingress CIDRs do not admit all of 198.19.128.0/17, the source range of endpoint traffic; connections through endpoints may be dropped"

    static func warnings(backend: Backend) -> [String] {
        let blocks = backend.ingressCIDRs.compactMap { try? IPv4CIDR.parse($0, acceptAddress: true) }
        return IPv4CIDR.endpointSourceRange.isCovered(by: blocks) ? [] : [ingressWarning]
    }

    /// Fills in what is derived rather than stored.
    static func present(_ service: EndpointService) -> EndpointService {
        var service = service
        service.clientIPNote = clientIPNote(backendKind: service.backendKind, mode: service.clientIPMode)
        return service
    }

    static func clientIPNote(backendKind: BackendKind, mode: ClientIPMode) -> String {
        clientIPNotes[NoteKey(kind: backendKind, mode: mode)] ?? makeClientIPNote(backendKind: backendKind, mode: mode)
    }

    private struct NoteKey: Hashable {
        let kind: BackendKind
        let mode: ClientIPMode
    }

    /// Every note, made once: reads present one per service.
    private static let clientIPNotes: [NoteKey: String] = Dictionary(uniqueKeysWithValues:
        BackendKind.allCases.flatMap { kind in
            ClientIPMode.allCases.map { mode in
                (NoteKey(kind: kind, mode: mode), makeClientIPNote(backendKind: kind, mode: mode))
            }
        })

    private static func makeClientIPNote(backendKind: BackendKind, mode: ClientIPMode) -> String {
        let backend = backendKind == .loadBalancer ? "The load balancer backend" : "The VM backend"
        let source = "\(backend) sees connections from 198.19.128.0/17, not from the real client IP"
        switch mode {
        case .close:
            return "\(source), and client_ip_mode close carries nothing; set toa_open, proxy_open or open to pass the client address."
        case .toaOpen:
            return "\(source); client_ip_mode toa_open carries the client IP, port and the endpoint's marker_id in a TCP option (TOA), which the backend must read."
        case .proxyOpen:
            return "\(source); client_ip_mode proxy_open sends a PROXY protocol header with the client IP and port at the start of each connection, which the backend must accept."
        case .open:
            return "\(source); client_ip_mode open carries the client IP, port and marker_id both in a TCP option (TOA) and in a PROXY protocol header at the start of each connection, which the backend must accept."
        }
    }
}
