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
                tags: WireMapping.tags(request.tags),
                serviceType: try WireMapping.serviceType(request.serviceType, field: "service_type"),
                isPublic: request.public
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
                status: try WireMapping.serviceStatus(request.status, field: "status"),
                tags: WireMapping.tags(request.tags),
                tagMatch: try WireMapping.tagMatch(request.tagMatch, field: "tag_match")
            )
            let result = try await registry.listEndpointServices(
                context.registryContext, filter: filter, page: WireMapping.page(request.page)
            )
            return ListEndpointServicesResponse(items: result.items.map(WireMapping.endpointService),
                                                totalCount: UInt32(clamping: result.totalCount),
                nextPageToken: result.nextPageToken)
        }
        router.register(EndpointServicesAPI.updateEndpointService) { request, context in
            let update = EndpointServiceUpdate(
                approvalEnabled: request.approvalEnabled, name: request.name,
                ports: request.ports.map { $0.items.map(WireMapping.portMapping) },
                clientIPMode: try WireMapping.clientIPMode(request.clientIpMode, field: "client_ip_mode"),
                description: request.description,
                expectedRevision: request.expectedRevision == 0 ? nil : request.expectedRevision
            )
            return WireMapping.endpointService(
                try await registry.updateEndpointService(context.registryContext, id: request.id, update))
        }
        router.register(EndpointServicesAPI.deleteEndpointService) { request, context in
            let affected = try await registry.deleteEndpointService(
                context.registryContext, id: request.id, force: request.force, dryRun: request.dryRun)
            return DeleteEndpointServiceResponse(affected: affected.map(WireMapping.connection))
        }
        router.register(EndpointServicesAPI.describeEndpointService) { request, context in
            WireMapping.summary(try await registry.describeEndpointService(
                context.registryContext, id: request.id, serviceName: request.serviceName))
        }
        router.register(EndpointServicesAPI.listPublicEndpointServices) { request, context in
            let result = try await registry.listPublicEndpointServices(
                context.registryContext, name: request.name, id: request.id, page: WireMapping.page(request.page))
            return ListPublicEndpointServicesResponse(
                items: result.items.map(WireMapping.summary), totalCount: UInt32(clamping: result.totalCount),
                nextPageToken: result.nextPageToken)
        }
        router.register(EndpointServicesAPI.addPermissions) { request, context in
            let added = try await registry.addPermissions(
                context.registryContext, serviceID: request.serviceId, serviceName: request.serviceName,
                entries: try request.entries.enumerated().map { i, entry throws(RegistryError) in
                    try WireMapping.permissionEntry(entry, index: i)
                })
            return AddPermissionsResponse(items: added.map(WireMapping.permission))
        }
        router.register(EndpointServicesAPI.removePermissions) { request, context in
            let removal = try await registry.removePermissions(
                context.registryContext, serviceID: request.serviceId, serviceName: request.serviceName,
                permissions: request.permissions, ids: request.ids,
                onExisting: try WireMapping.onExisting(request.onExisting, field: "on_existing"), dryRun: request.dryRun)
            return RemovePermissionsResponse(
                removedCount: UInt32(clamping: removal.removedCount), affected: removal.affected.map(WireMapping.connection))
        }
        router.register(EndpointServicesAPI.listPermissions) { request, context in
            let result = try await registry.listPermissions(
                context.registryContext, serviceID: request.serviceId, serviceName: request.serviceName,
                permission: request.permission, page: WireMapping.page(request.page))
            return ListPermissionsResponse(
                items: result.items.map(WireMapping.permission), totalCount: UInt32(clamping: result.totalCount),
                nextPageToken: result.nextPageToken)
        }
        router.register(EndpointServicesAPI.listConnections) { request, context in
            let filter = EndpointFilter(
                id: request.id, status: try WireMapping.endpointStatus(request.status, field: "status"),
                markerID: request.markerId == 0 ? nil : request.markerId)
            let result = try await registry.listConnections(
                context.registryContext, serviceID: request.serviceId, serviceName: request.serviceName, filter: filter,
                page: WireMapping.page(request.page))
            return ListConnectionsResponse(
                items: result.items.map(WireMapping.connection), totalCount: UInt32(clamping: result.totalCount),
                nextPageToken: result.nextPageToken)
        }
        let decisions: [(MethodDescriptor<DecideConnectionsRequest, DecideConnectionsResponse>, ConnectionAction)] = [
            (EndpointServicesAPI.acceptConnections, .accept), (EndpointServicesAPI.rejectConnections, .reject),
            (EndpointServicesAPI.suspendConnections, .suspend), (EndpointServicesAPI.resumeConnections, .resume),
        ]
        for (method, action) in decisions {
            router.register(method) { request, context in
                let decided = try await registry.decideConnections(
                    context.registryContext, serviceID: request.serviceId, serviceName: request.serviceName,
                    endpointIDs: request.endpointIds, action: action, reason: request.reason)
                return DecideConnectionsResponse(items: decided.map(WireMapping.connection))
            }
        }
        router.register(EndpointServicesAPI.checkAccess) { request, context in
            WireMapping.accessCheck(try await registry.checkAccess(
                context.registryContext, serviceID: request.serviceId, serviceName: request.serviceName,
                tenantID: request.tenantId))
        }
        router.register(EndpointServicesAPI.updateConnectionDescription) { request, context in
            WireMapping.connection(try await registry.updateConnectionDescription(
                context.registryContext, serviceID: request.serviceId, serviceName: request.serviceName,
                endpointID: request.endpointId, description: request.description))
        }
        router.register(EndpointServicesAPI.addEndpointServiceTags) { request, context in
            WireMapping.endpointService(try await registry.addEndpointServiceTags(
                context.registryContext, id: request.id, tags: WireMapping.tags(request.tags),
                expectedRevision: WireMapping.expectedRevision(request.expectedRevision)))
        }
        router.register(EndpointServicesAPI.removeEndpointServiceTags) { request, context in
            WireMapping.endpointService(try await registry.removeEndpointServiceTags(
                context.registryContext, id: request.id, WireMapping.tagRemoval(request),
                expectedRevision: WireMapping.expectedRevision(request.expectedRevision)))
        }
    }
}
