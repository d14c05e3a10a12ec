import Testing
import VPCEPProto

@Suite("Open enums")
struct EnumTests {
    @Test("constants are named without the enum's prefix")
    func names() {
        #expect(ServiceStatus.available.rawValue == 2)
        #expect(ServiceStatus.available.protoName == "SERVICE_STATUS_AVAILABLE")
        #expect(BackendType.loadBalancer.protoName == "BACKEND_TYPE_LOAD_BALANCER")
        #expect(ClientIpMode.toaOpen.rawValue == 2)
        #expect(ClientIpMode.proxyOpen.protoName == "CLIENT_IP_MODE_PROXY_OPEN")
        #expect(HealthCheckResponse.ServingStatus.serving.protoName == "SERVING_STATUS_SERVING")
        #expect(WhoAmIResponse.Kind.operator.rawValue == 2)
        #expect(QuotaType.endpointService.rawValue == 1)
    }

    @Test("allKnown lists every value in schema order")
    func allKnown() {
        #expect(ServiceStatus.allKnown.map(\.rawValue) == [0, 1, 2, 3, 4])
        #expect(ClientIpMode.allKnown == [.unspecified, .close, .toaOpen, .proxyOpen, .open])
        #expect(ServiceType.allKnown.allSatisfy { $0.protoName != nil })
    }

    @Test("unknown values keep their number")
    func unknown() {
        let value = ServiceStatus(rawValue: 42)
        #expect(value.protoName == nil)
        #expect(value.description == "42")
        #expect(ServiceStatus.failed.description == "SERVICE_STATUS_FAILED")
        #expect(ServiceStatus(rawValue: 3) == .failed)
        #expect(!ServiceStatus.allKnown.contains(value))
    }

    @Test("fields default to the zero value")
    func defaults() {
        #expect(EndpointService().status == .unspecified)
        #expect(PortMapping().protocol == .unspecified)
    }
}
