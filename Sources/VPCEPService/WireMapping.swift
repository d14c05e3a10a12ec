import Foundation
import VPCEPProto
import VPCEPRegistry

/// Conversions between the registry's types and the generated wire messages, in both directions.
/// `package` for VPCEPBenchSupport, whose gRPC peer must answer with the same bytes.
package enum WireMapping {
    static func timestamp(_ date: Date) -> String {
        RFC3339.format(date)
    }

    static func page(_ page: VPCEPProto.PageRequest?) -> VPCEPRegistry.PageRequest {
        guard let page else { return VPCEPRegistry.PageRequest() }
        return VPCEPRegistry.PageRequest(limit: Int(page.limit), offset: Int(page.offset), sortKey: page.sortKey,
                                         sortDir: page.sortDir, pageToken: page.pageToken)
    }

    /// ALL when unspecified.
    static func tagMatch(_ match: VPCEPProto.TagMatch, field: String) throws(RegistryError) -> VPCEPRegistry.TagMatch {
        switch match {
        case .unspecified, .all: return .all
        case .any: return .any
        default: throw unknownValue(match, field: field)
        }
    }

    /// A removal: keys whatever their value, tags only with exactly their value.
    static func tagRemoval(_ request: RemoveTagsRequest) -> TagRemoval {
        TagRemoval(keys: request.keys, tags: tags(request.tags))
    }

    /// 0 means no check.
    static func expectedRevision(_ value: UInt64) -> UInt64? {
        value == 0 ? nil : value
    }

    static func vpc(_ vpc: VPC) -> Vpc {
        Vpc(id: vpc.id, name: vpc.name, cidr: vpc.cidr, region: vpc.region, tenantId: vpc.ownerID,
            createdAt: timestamp(vpc.createdAt), updatedAt: timestamp(vpc.updatedAt))
    }

    static func subnet(_ subnet: VPCEPRegistry.Subnet) -> VPCEPProto.Subnet {
        VPCEPProto.Subnet(id: subnet.id, vpcId: subnet.vpcID, name: subnet.name, cidr: subnet.cidr, region: subnet.region,
                          tenantId: subnet.ownerID, createdAt: timestamp(subnet.createdAt),
                          updatedAt: timestamp(subnet.updatedAt))
    }

    static func loadBalancer(_ backend: Backend) -> LoadBalancer {
        LoadBalancer(id: backend.id, vpcId: backend.vpcID, subnetId: backend.subnetID, name: backend.name, ip: backend.ip,
                     ingressCidrs: backend.ingressCIDRs, region: backend.region, tenantId: backend.ownerID,
                     createdAt: timestamp(backend.createdAt), updatedAt: timestamp(backend.updatedAt))
    }

    static func vm(_ backend: Backend) -> Vm {
        Vm(id: backend.id, vpcId: backend.vpcID, subnetId: backend.subnetID, name: backend.name, ip: backend.ip,
           ingressCidrs: backend.ingressCIDRs, region: backend.region, tenantId: backend.ownerID,
           createdAt: timestamp(backend.createdAt), updatedAt: timestamp(backend.updatedAt))
    }

    package static func endpointService(_ service: VPCEPRegistry.EndpointService) -> VPCEPProto.EndpointService {
        VPCEPProto.EndpointService(
            id: service.id, serviceName: service.serviceName, name: service.name, tenantId: service.ownerID,
            region: service.region, vpcId: service.vpcID, serviceType: serviceType(service.serviceType),
            backendType: backendType(service.backendKind), backendId: service.backendID,
            ports: service.ports.map(portMapping), approvalEnabled: service.approvalEnabled,
            clientIpMode: clientIPMode(service.clientIPMode), description: service.description,
            tags: service.tags.map { VPCEPProto.Tag(key: $0.key, value: $0.value) }, status: serviceStatus(service.status),
            connectionCount: UInt32(clamping: service.connectionCount), createdAt: timestamp(service.createdAt),
            updatedAt: timestamp(service.updatedAt), revision: service.revision, warnings: service.warnings,
            clientIpNote: service.clientIPNote, public: service.isPublic
        )
    }

    static func summary(_ summary: VPCEPRegistry.EndpointServiceSummary) -> VPCEPProto.EndpointServiceSummary {
        VPCEPProto.EndpointServiceSummary(
            id: summary.id, serviceName: summary.serviceName, serviceType: serviceType(summary.serviceType),
            region: summary.region, createdAt: timestamp(summary.createdAt), approvalEnabled: summary.approvalEnabled,
            public: summary.isPublic, owner: summary.ownerID)
    }

    static func tags(_ tags: [VPCEPProto.Tag]) -> [VPCEPRegistry.Tag] {
        tags.map { VPCEPRegistry.Tag(key: $0.key, value: $0.value) }
    }

    static func tags(_ tags: [VPCEPRegistry.Tag]) -> [VPCEPProto.Tag] {
        tags.map { VPCEPProto.Tag(key: $0.key, value: $0.value) }
    }

    static func endpoint(_ endpoint: VPCEPRegistry.Endpoint) -> VPCEPProto.Endpoint {
        VPCEPProto.Endpoint(
            id: endpoint.id, tenantId: endpoint.ownerID, region: endpoint.region, vpcId: endpoint.vpcID,
            subnetId: endpoint.subnetID, serviceId: endpoint.serviceID, serviceName: endpoint.serviceName,
            serviceType: serviceType(endpoint.serviceType), ip: endpoint.ip, status: endpointStatus(endpoint.status),
            markerId: endpoint.markerID, dnsName: endpoint.dnsName, whitelist: endpoint.whitelist,
            enableWhitelist: endpoint.enableWhitelist, description: endpoint.description, tags: tags(endpoint.tags),
            createdAt: timestamp(endpoint.createdAt), updatedAt: timestamp(endpoint.updatedAt),
            requestMessage: endpoint.requestMessage, decisionReason: endpoint.decisionReason,
            revision: endpoint.revision)
    }

    static func connection(_ connection: VPCEPRegistry.Connection) -> VPCEPProto.Connection {
        VPCEPProto.Connection(
            id: connection.id, markerId: connection.markerID, tenantId: connection.consumerID,
            status: endpointStatus(connection.status), description: connection.description,
            createdAt: timestamp(connection.createdAt), updatedAt: timestamp(connection.updatedAt),
            decidedBy: connection.decidedBy, decidedAt: connection.decidedAt.map(timestamp) ?? "",
            requestMessage: connection.requestMessage, reason: connection.reason)
    }

    static func endpointStatus(_ status: VPCEPRegistry.EndpointStatus) -> VPCEPProto.EndpointStatus {
        switch status {
        case .pendingAcceptance: .pendingAcceptance
        case .creating: .creating
        case .accepted: .accepted
        case .rejected: .rejected
        case .failed: .failed
        case .deleting: .deleting
        case .suspended: .suspended
        }
    }

    static func endpointStatus(_ status: VPCEPProto.EndpointStatus, field: String) throws(RegistryError) -> VPCEPRegistry.EndpointStatus? {
        switch status {
        case .unspecified: nil
        case .pendingAcceptance: .pendingAcceptance
        case .creating: .creating
        case .accepted: .accepted
        case .rejected: .rejected
        case .failed: .failed
        case .deleting: .deleting
        case .suspended: .suspended
        default: throw unknownValue(status, field: field)
        }
    }

    /// Keep when unspecified (the default).
    static func onExisting(_ value: VPCEPProto.OnExisting, field: String) throws(RegistryError) -> VPCEPRegistry.OnExisting {
        switch value {
        case .unspecified, .keep: .keep
        case .reject: .reject
        default: throw unknownValue(value, field: field)
        }
    }

    static func portMapping(_ port: VPCEPRegistry.PortMapping) -> VPCEPProto.PortMapping {
        VPCEPProto.PortMapping(terminalPort: UInt32(clamping: port.terminalPort), servicePort: UInt32(clamping: port.servicePort),
                               protocol: .tcp)
    }

    static func portMapping(_ port: VPCEPProto.PortMapping) -> VPCEPRegistry.PortMapping {
        // An unknown protocol value is passed on as its number, for the registry to refuse by name.
        let name = port.protocol == .tcp || port.protocol == .unspecified ? "TCP" : "\(port.protocol.rawValue)"
        return VPCEPRegistry.PortMapping(terminalPort: Int(port.terminalPort), servicePort: Int(port.servicePort),
                                         protocol: name)
    }

    static func serviceType(_ type: VPCEPRegistry.ServiceType) -> VPCEPProto.ServiceType {
        switch type {
        case .interface: .interface
        case .gateway: .gateway
        }
    }

    /// nil for unspecified (the registry's default); an unknown value is refused naming the field.
    static func serviceType(_ type: VPCEPProto.ServiceType, field: String) throws(RegistryError) -> VPCEPRegistry.ServiceType? {
        switch type {
        case .unspecified: nil
        case .interface: .interface
        case .gateway: .gateway
        default: throw unknownValue(type, field: field)
        }
    }

    static func backendType(_ kind: BackendKind) -> BackendType {
        switch kind {
        case .loadBalancer: .loadBalancer
        case .vm: .vm
        }
    }

    static func backendKind(_ type: BackendType, field: String) throws(RegistryError) -> BackendKind? {
        switch type {
        case .unspecified: nil
        case .loadBalancer: .loadBalancer
        case .vm: .vm
        default: throw unknownValue(type, field: field)
        }
    }

    static func clientIPMode(_ mode: VPCEPRegistry.ClientIPMode) -> ClientIpMode {
        switch mode {
        case .close: .close
        case .toaOpen: .toaOpen
        case .proxyOpen: .proxyOpen
        case .open: .open
        }
    }

    static func clientIPMode(_ mode: ClientIpMode, field: String) throws(RegistryError) -> VPCEPRegistry.ClientIPMode? {
        switch mode {
        case .unspecified: nil
        case .close: .close
        case .toaOpen: .toaOpen
        case .proxyOpen: .proxyOpen
        case .open: .open
        default: throw unknownValue(mode, field: field)
        }
    }

    static func serviceStatus(_ status: VPCEPRegistry.ServiceStatus) -> VPCEPProto.ServiceStatus {
        switch status {
        case .creating: .creating
        case .available: .available
        case .failed: .failed
        case .deleting: .deleting
        }
    }

    static func serviceStatus(_ status: VPCEPProto.ServiceStatus, field: String) throws(RegistryError) -> VPCEPRegistry.ServiceStatus? {
        switch status {
        case .unspecified: nil
        case .creating: .creating
        case .available: .available
        case .failed: .failed
        case .deleting: .deleting
        default: throw unknownValue(status, field: field)
        }
    }

    static func quotaType(_ type: VPCEPRegistry.QuotaType) -> VPCEPProto.QuotaType {
        switch type {
        case .endpointService: .endpointService
        case .endpoint: .endpoint
        }
    }

    static func quotaType(_ type: VPCEPProto.QuotaType, field: String) throws(RegistryError) -> VPCEPRegistry.QuotaType? {
        switch type {
        case .unspecified: nil
        case .endpointService: .endpointService
        case .endpoint: .endpoint
        default: throw unknownValue(type, field: field)
        }
    }

    static func unknownValue(_ value: some ProtoEnum, field: String) -> RegistryError {
        RegistryError(code: .invalidArgument, reason: .enumValueUnknown,
                      message: "\(value.rawValue) is not a known value of \(field)", field: field)
    }
}
