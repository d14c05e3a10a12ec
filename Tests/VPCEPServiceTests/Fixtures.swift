import Testing
import VPCEPClient

/// A tenant's VPC 10.x.0.0/16, subnet 10.x.1.0/24 and a load balancer admitting the endpoint range.
struct Network {
    var vpc: Vpc
    var subnet: Subnet
    var loadBalancer: LoadBalancer

    static func make(_ client: VPCEPClient, second: Int = 0) async throws -> Network {
        let vpc = try await client.createVpc(CreateVpcRequest(name: "vpc", cidr: "10.\(second).0.0/16"))
        let subnet = try await client.createSubnet(CreateSubnetRequest(vpcId: vpc.id, name: "subnet", cidr: "10.\(second).1.0/24"))
        let loadBalancer = try await client.createLoadBalancer(CreateLoadBalancerRequest(
            vpcId: vpc.id, subnetId: subnet.id, name: "lb", ingressCidrs: ["198.19.128.0/17"]))
        return Network(vpc: vpc, subnet: subnet, loadBalancer: loadBalancer)
    }

    func service(name: String = "web", servicePort: UInt32 = 8080, approval: Bool? = nil) -> CreateEndpointServiceRequest {
        CreateEndpointServiceRequest(
            vpcId: vpc.id, backendType: .loadBalancer, backendId: loadBalancer.id,
            ports: [PortMapping(terminalPort: 80, servicePort: servicePort, protocol: .tcp)], name: name,
            approvalEnabled: approval)
    }

    func endpoint(serviceID: String = "", serviceName: String = "") -> CreateEndpointRequest {
        CreateEndpointRequest(serviceId: serviceID, serviceName: serviceName, vpcId: vpc.id, subnetId: subnet.id)
    }
}
