import VPCEPProto
import VPCEPRegistry
import VPCEPService
import VPCEPStoreSQLite

/// GetEndpointService answered from a vpcep data directory, with the mapping vpcep-server uses, for
/// Benchmarks/' gRPC peer: it serves the same bytes from the same store under another protocol.
///
/// The caller is fixed at open instead of read from a certificate per call: the peer checks mutual
/// TLS itself, and the benchmark's client has one identity.
@_spi(Benchmarks)
public struct EndpointServiceReader: Sendable {
    private let registry: Registry
    private let context: CallContext

    public static func open(dataDirectory: String, region: String, tenant: String) async throws -> EndpointServiceReader {
        let store = try await SQLiteRegistryStore.open(directory: dataDirectory)
        return EndpointServiceReader(
            registry: Registry(store: store, regions: [region]),
            context: CallContext(caller: .tenant(tenant), region: region))
    }

    /// The service `request` names, as vpcep-server answers it; throws the registry's error otherwise.
    public func get(_ request: GetEndpointServiceRequest) async throws -> VPCEPProto.EndpointService {
        let found = try await registry.getEndpointService(
            context, id: request.id.isEmpty ? nil : request.id,
            serviceName: request.serviceName.isEmpty ? nil : request.serviceName)
        return WireMapping.endpointService(found)
    }
}
