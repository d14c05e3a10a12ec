// The gRPC peer: grpc-swift-2 over grpc-swift-nio-transport (HTTP/2, mutual TLS with vpcep's
// certificates) serving GetEndpointService from the same Registry and SQLite store as vpcep-server.
//
//   vpcep-grpc-peer --port P --data-dir D --tls-ca CA --tls-cert CRT --tls-key KEY [--tenant alice] [--region R]
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCPeerService
@_spi(Benchmarks) import VPCEPBenchSupport
import VPCEPClient

func option(_ name: String, _ fallback: String? = nil) -> String {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    guard let fallback else { FileHandle.standardError.write(Data("vpcep-grpc-peer: \(name) is required\n".utf8)); exit(2) }
    return fallback
}

struct EndpointServicesPeer: RegistrableRPCService {
    let reader: EndpointServiceReader

    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        let reader = reader
        router.registerHandler(
            forMethod: PeerEndpointServices.getEndpointService,
            deserializer: ProtoDeserializer<GetEndpointServiceRequest>(),
            serializer: ProtoSerializer<EndpointService>()
        ) { streamRequest, _ in
            let request = try await ServerRequest(stream: streamRequest)
            do {
                return StreamingServerResponse(single: ServerResponse(message: try await reader.get(request.message)))
            } catch {
                return StreamingServerResponse(error: RPCError(code: .notFound, message: "\(error)"))
            }
        }
    }
}

let port = Int(option("--port"))!
let reader = try await EndpointServiceReader.open(
    dataDirectory: option("--data-dir"), region: option("--region", "eu-west-1"), tenant: option("--tenant", "alice"))
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
let server = GRPCServer(transport: transport, services: [EndpointServicesPeer(reader: reader)])
print("vpcep-grpc-peer listening on 127.0.0.1:\(port)")
try await server.serve()
