import Testing
import VPCEPClient

/// A tenant's network with one load balancer, ready to publish services from.
struct Network {
    var vpc: Vpc
    var subnet: Subnet
    var loadBalancer: LoadBalancer

    static func make(
        _ client: VPCEPClient, cidr: String = "10.0.0.0/16", subnetCIDR: String = "10.0.1.0/24",
        ingress: [String] = ["198.19.128.0/17"]
    ) async throws -> Network {
        let vpc = try await client.createVpc(CreateVpcRequest(name: "vpc-main", cidr: cidr))
        let subnet = try await client.createSubnet(CreateSubnetRequest(vpcId: vpc.id, name: "subnet-a", cidr: subnetCIDR))
        let loadBalancer = try await client.createLoadBalancer(CreateLoadBalancerRequest(
            vpcId: vpc.id, subnetId: subnet.id, name: "lb-web", ingressCidrs: ingress
        ))
        return Network(vpc: vpc, subnet: subnet, loadBalancer: loadBalancer)
    }

    /// The provider's service, with the consumer (a tenant, by its client's identity) on its allow-list,
    /// and the consumer's endpoint on it (pending when the service asks for approval).
    static func endpointOnProvidersService(
        provider: VPCEPClient, consumer: VPCEPClient, consumerID: String = "bob"
    ) async throws -> (service: EndpointService, endpoint: Endpoint) {
        let network = try await Network.make(provider)
        let service = try await provider.createEndpointService(network.serviceRequest())
        _ = try await provider.addPermissions(AddPermissionsRequest(
            serviceId: service.id, entries: [PermissionEntry(permission: "iam:domain::\(consumerID)")]))
        let consumerNetwork = try await Network.make(consumer)
        let endpoint = try await consumer.createEndpoint(CreateEndpointRequest(
            serviceId: service.id, vpcId: consumerNetwork.vpc.id, subnetId: consumerNetwork.subnet.id))
        return (service, endpoint)
    }

    func serviceRequest(name: String = "web", ports: [(UInt32, UInt32)] = [(80, 8080)]) -> CreateEndpointServiceRequest {
        CreateEndpointServiceRequest(
            vpcId: vpc.id, backendType: .loadBalancer, backendId: loadBalancer.id,
            ports: ports.map { PortMapping(terminalPort: $0.0, servicePort: $0.1, protocol: .tcp) }, name: name
        )
    }
}
