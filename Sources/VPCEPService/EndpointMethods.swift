import VPCEPProto
import VPCEPRPC
import VPCEPRegistry

/// The Endpoints service: what consumers create to reach a service.
struct EndpointMethods: Sendable {
    let registry: Registry

    func register(into router: inout RPCRouter) {
        let registry = registry
        router.register(EndpointsAPI.createEndpoint) { request, context in
            let spec = EndpointSpec(
                serviceID: request.serviceId, serviceName: request.serviceName, vpcID: request.vpcId,
                subnetID: request.subnetId, ip: request.ip, whitelist: request.whitelist,
                enableWhitelist: request.enableWhitelist, enableDNS: request.enableDns, description: request.description,
                tags: WireMapping.tags(request.tags), requestMessage: request.requestMessage)
            return WireMapping.endpoint(try await registry.createEndpoint(context.registryContext, spec))
        }
        router.register(EndpointsAPI.getEndpoint) { request, context in
            WireMapping.endpoint(try await registry.getEndpoint(context.registryContext, id: request.id))
        }
        router.register(EndpointsAPI.listEndpoints) { request, context in
            let filter = EndpointFilter(
                id: request.id, vpcID: request.vpcId, serviceName: request.serviceName,
                status: try WireMapping.endpointStatus(request.status, field: "status"),
                tags: WireMapping.tags(request.tags),
                tagMatch: try WireMapping.tagMatch(request.tagMatch, field: "tag_match"))
            let result = try await registry.listEndpoints(
                context.registryContext, filter: filter, page: WireMapping.page(request.page))
            return ListEndpointsResponse(
                items: result.items.map(WireMapping.endpoint), totalCount: UInt32(clamping: result.totalCount),
                nextPageToken: result.nextPageToken)
        }
        router.register(EndpointsAPI.updateEndpoint) { request, context in
            let update = EndpointUpdate(
                whitelist: request.whitelist?.values, enableWhitelist: request.enableWhitelist,
                description: request.description)
            return WireMapping.endpoint(try await registry.updateEndpoint(context.registryContext, id: request.id, update))
        }
        router.register(EndpointsAPI.deleteEndpoint) { request, context in
            try await registry.deleteEndpoint(context.registryContext, id: request.id)
            return DeleteEndpointResponse()
        }
        router.register(EndpointsAPI.addEndpointTags) { request, context in
            WireMapping.endpoint(try await registry.addEndpointTags(
                context.registryContext, id: request.id, tags: WireMapping.tags(request.tags),
                expectedRevision: WireMapping.expectedRevision(request.expectedRevision)))
        }
        router.register(EndpointsAPI.removeEndpointTags) { request, context in
            WireMapping.endpoint(try await registry.removeEndpointTags(
                context.registryContext, id: request.id, WireMapping.tagRemoval(request),
                expectedRevision: WireMapping.expectedRevision(request.expectedRevision)))
        }
    }
}
