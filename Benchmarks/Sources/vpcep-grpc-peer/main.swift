// The gRPC peer: grpc-swift-2 over grpc-swift-nio-transport (HTTP/2, mutual TLS with vpcep's
// certificates) serving GetEndpointService from the same Registry and SQLite store as vpcep-server.
//
//   vpcep-grpc-peer --port P --data-dir D --tls-ca CA --tls-cert CRT --tls-key KEY [--tenant alice] [--region R]
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCPeerService
import VPCEPProto
import VPCEPRegistry
import VPCEPStoreSQLite

func option(_ name: String, _ fallback: String? = nil) -> String {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    guard let fallback else { FileHandle.standardError.write(Data("vpcep-grpc-peer: \(name) is required\n".utf8)); exit(2) }
    return fallback
}

/// The same wire mapping as VPCEPService.WireMapping.endpointService (internal there), repeated here.
enum Mapping {
    static let timestampStyle = Date.ISO8601FormatStyle(includingFractionalSeconds: true)

    static func endpointService(_ s: VPCEPRegistry.EndpointService) -> VPCEPProto.EndpointService {
        VPCEPProto.EndpointService(
            id: s.id, serviceName: s.serviceName, name: s.name, tenantId: s.ownerID,
            region: s.region, vpcId: s.vpcID,
            serviceType: s.serviceType == .interface ? .interface : .gateway,
            backendType: s.backendKind == .loadBalancer ? .loadBalancer : .vm, backendId: s.backendID,
            ports: s.ports.map {
                VPCEPProto.PortMapping(terminalPort: UInt32(clamping: $0.terminalPort),
                                       servicePort: UInt32(clamping: $0.servicePort), protocol: .tcp)
            },
            approvalEnabled: s.approvalEnabled, clientIpMode: clientIPMode(s.clientIPMode), description: s.description,
            tags: s.tags.map { VPCEPProto.Tag(key: $0.key, value: $0.value) }, status: status(s.status),
            connectionCount: UInt32(clamping: s.connectionCount), createdAt: timestampStyle.format(s.createdAt),
            updatedAt: timestampStyle.format(s.updatedAt), revision: s.revision, warnings: s.warnings,
            clientIpNote: s.clientIPNote, public: s.isPublic
        )
    }

    static func clientIPMode(_ mode: VPCEPRegistry.ClientIPMode) -> ClientIpMode {
        switch mode {
        case .close: .close
        case .toaOpen: .toaOpen
        case .proxyOpen: .proxyOpen
        case .open: .open
        }
    }

    static func status(_ status: VPCEPRegistry.ServiceStatus) -> VPCEPProto.ServiceStatus {
        switch status {
        case .creating: .creating
        case .available: .available
        case .failed: .failed
        case .deleting: .deleting
        }
    }
}

struct EndpointServicesPeer: RegistrableRPCService {
    let registry: Registry
    let context: CallContext

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let registry = registry
        let context = context
        router.registerHandler(
            forMethod: PeerEndpointServices.getEndpointService,
            deserializer: ProtoDeserializer<GetEndpointServiceRequest>(),
            serializer: ProtoSerializer<VPCEPProto.EndpointService>()
        ) { streamRequest, _ in
            let request = try await ServerRequest(stream: streamRequest)
            do {
                let found = try await registry.getEndpointService(
                    context, id: request.message.id.isEmpty ? nil : request.message.id,
                    serviceName: request.message.serviceName.isEmpty ? nil : request.message.serviceName)
                return StreamingServerResponse(single: ServerResponse(message: Mapping.endpointService(found)))
            } catch {
                return StreamingServerResponse(error: RPCError(code: .notFound, message: "\(error)"))
            }
        }
    }
}

let port = Int(option("--port"))!
let store = try await SQLiteRegistryStore.open(directory: option("--data-dir"))
let region = option("--region", "eu-west-1")
let registry = Registry(store: store, regions: [region])
let transport = HTTP2ServerTransport.Posix(
    address: .ipv4(host: "127.0.0.1", port: port),
    transportSecurity: .mTLS(
        certificateChain: [.file(path: option("--tls-cert"), format: .pem)],
        privateKey: .file(path: option("--tls-key"), format: .pem)
    ) { tls in
        tls.trustRoots = .certificates([.file(path: option("--tls-ca"), format: .pem)])
        tls.clientCertificateVerification = .noHostnameVerification
    }
)
// The caller is fixed (the tenant of the benchmark's client certificate) instead of read from
// the verified certificate per call; mutual TLS itself is still required and verified.
let server = GRPCServer(
    transport: transport,
    services: [EndpointServicesPeer(registry: registry,
                                    context: CallContext(caller: .tenant(option("--tenant", "alice")), region: region))]
)
print("vpcep-grpc-peer listening on 127.0.0.1:\(port)")
try await server.serve()
