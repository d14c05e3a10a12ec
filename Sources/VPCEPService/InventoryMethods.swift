import VPCEPProto
import VPCEPRPC
import VPCEPRegistry

/// The Inventory service: VPCs, subnets, load balancers and servers.
struct InventoryMethods: Sendable {
    let registry: Registry

    func register(into router: inout RPCRouter) {
        let registry = registry
        router.register(InventoryAPI.createVpc) { request, context in
            WireMapping.vpc(try await registry.createVPC(context.registryContext, name: request.name, cidr: request.cidr))
        }
        router.register(InventoryAPI.listVpcs) { request, context in
            let result = try await registry.listVPCs(context.registryContext, page: WireMapping.page(request.page))
            return ListVpcsResponse(items: result.items.map(WireMapping.vpc), totalCount: UInt32(clamping: result.totalCount),
                nextPageToken: result.nextPageToken)
        }
        router.register(InventoryAPI.createSubnet) { request, context in
            WireMapping.subnet(try await registry.createSubnet(
                context.registryContext, vpcID: request.vpcId, name: request.name, cidr: request.cidr
            ))
        }
        router.register(InventoryAPI.listSubnets) { request, context in
            let result = try await registry.listSubnets(
                context.registryContext, vpcID: request.vpcId.isEmpty ? nil : request.vpcId, page: WireMapping.page(request.page)
            )
            return ListSubnetsResponse(items: result.items.map(WireMapping.subnet), totalCount: UInt32(clamping: result.totalCount),
                nextPageToken: result.nextPageToken)
        }
        router.register(InventoryAPI.createLoadBalancer) { request, context in
            WireMapping.loadBalancer(try await registry.createBackend(
                context.registryContext, kind: .loadBalancer, vpcID: request.vpcId, subnetID: request.subnetId,
                name: request.name, ip: request.ip.isEmpty ? nil : request.ip, ingressCIDRs: request.ingressCidrs
            ))
        }
        router.register(InventoryAPI.listLoadBalancers) { request, context in
            let result = try await registry.listBackends(
                context.registryContext, kind: .loadBalancer, vpcID: request.vpcId.isEmpty ? nil : request.vpcId,
                page: WireMapping.page(request.page)
            )
            return ListLoadBalancersResponse(items: result.items.map(WireMapping.loadBalancer),
                                             totalCount: UInt32(clamping: result.totalCount),
                nextPageToken: result.nextPageToken)
        }
        router.register(InventoryAPI.createVm) { request, context in
            WireMapping.vm(try await registry.createBackend(
                context.registryContext, kind: .vm, vpcID: request.vpcId, subnetID: request.subnetId,
                name: request.name, ip: request.ip.isEmpty ? nil : request.ip, ingressCIDRs: request.ingressCidrs
            ))
        }
        router.register(InventoryAPI.listVms) { request, context in
            let result = try await registry.listBackends(
                context.registryContext, kind: .vm, vpcID: request.vpcId.isEmpty ? nil : request.vpcId,
                page: WireMapping.page(request.page)
            )
            return ListVmsResponse(items: result.items.map(WireMapping.vm), totalCount: UInt32(clamping: result.totalCount),
                nextPageToken: result.nextPageToken)
        }
        router.register(InventoryAPI.deleteVpc) { request, context in
            try await registry.deleteVPC(context.registryContext, id: request.id)
            return DeleteResourceResponse()
        }
        router.register(InventoryAPI.deleteSubnet) { request, context in
            try await registry.deleteSubnet(context.registryContext, id: request.id)
            return DeleteResourceResponse()
        }
        router.register(InventoryAPI.deleteLoadBalancer) { request, context in
            try await registry.deleteBackend(context.registryContext, kind: .loadBalancer, id: request.id)
            return DeleteResourceResponse()
        }
        router.register(InventoryAPI.deleteVm) { request, context in
            try await registry.deleteBackend(context.registryContext, kind: .vm, id: request.id)
            return DeleteResourceResponse()
        }
    }
}
