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

    func serviceRequest(name: String = "web", ports: [(UInt32, UInt32)] = [(80, 8080)]) -> CreateEndpointServiceRequest {
        CreateEndpointServiceRequest(
            vpcId: vpc.id, backendType: .loadBalancer, backendId: loadBalancer.id,
            ports: ports.map { PortMapping(terminalPort: $0.0, servicePort: $0.1, protocol: .tcp) }, name: name
        )
    }
}
