import VPCEPProto
import VPCEPRPC
import VPCEPRegistry

/// The EndpointServices service: what providers publish.
struct EndpointServiceMethods: Sendable {
    let registry: Registry

    func register(into router: inout RPCRouter) {
        let registry = registry
        router.register(EndpointServicesAPI.createEndpointService) { request, context in
            let spec = EndpointServiceSpec(
                vpcID: request.vpcId,
                backendKind: try WireMapping.backendKind(request.backendType, field: "backend_type"),
                backendID: request.backendId,
                ports: request.ports.map(WireMapping.portMapping),
                name: request.name,
                approvalEnabled: request.approvalEnabled,
                clientIPMode: try WireMapping.clientIPMode(request.clientIpMode, field: "client_ip_mode"),
                description: request.description,
                tags: request.tags.map { VPCEPRegistry.Tag(key: $0.key, value: $0.value) },
                serviceType: try WireMapping.serviceType(request.serviceType, field: "service_type")
            )
            return WireMapping.endpointService(try await registry.createEndpointService(context.registryContext, spec))
        }
        router.register(EndpointServicesAPI.getEndpointService) { request, context in
            WireMapping.endpointService(try await registry.getEndpointService(
                context.registryContext, id: request.id.isEmpty ? nil : request.id,
                serviceName: request.serviceName.isEmpty ? nil : request.serviceName
            ))
        }
        router.register(EndpointServicesAPI.listEndpointServices) { request, context in
            let filter = EndpointServiceFilter(
                name: request.name.isEmpty ? nil : request.name, id: request.id.isEmpty ? nil : request.id,
                status: try WireMapping.serviceStatus(request.status, field: "status")
            )
            let result = try await registry.listEndpointServices(
                context.registryContext, filter: filter, page: WireMapping.page(request.page)
            )
            return ListEndpointServicesResponse(items: result.items.map(WireMapping.endpointService),
                                                totalCount: UInt32(clamping: result.totalCount))
        }
    }
}
