// The two systems of `vpcep-bench watch`: vpcep through raw BenchConnections (no client-library
// resuming or keepalive in the measure) and etcd through grpc-swift-2, both over mutual TLS.
import EtcdWatchAPI
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
@_spi(Benchmarks) import VPCEPBenchSupport
import VPCEPClient

/// vpcep: a write is a `CreateVpc` named by the payload; a watch follows `kinds = [VPC]` from now,
/// live at its first bookmark (a start "now" sends one at once, docs/DOMAIN.md "Watch"). The
/// watchers are tenant alice; an unseen write is another tenant's (`otherTLS`), out of their view.
/// Spread: alice's endpoint services, one per watcher (the operator `operatorTLS` raises her quota
/// first), 100 on each load balancer; a write sets one's description to the payload (an `updated`
/// event), and a watch follows `resource_id` = its service from now.
final class VPCEPWatchTarget: WatchTarget {
    let name = "vpcep"
    private let port: Int
    private let region: String
    private let tenant: String
    private let tls: BenchTLS
    private let otherTLS: BenchTLS
    private let operatorTLS: BenchTLS?
    private let writers = Mutex<[BenchConnection]>([])
    private let otherWriters = Mutex<[BenchConnection]>([])
    private let watchers = Mutex<[BenchConnection]>([])
    private let services = Mutex<[String]>([])

    init(port: Int, region: String, tenant: String, tls: BenchTLS, otherTLS: BenchTLS, operatorTLS: BenchTLS?) {
        self.port = port
        self.region = region
        self.tenant = tenant
        self.tls = tls
        self.otherTLS = otherTLS
        self.operatorTLS = operatorTLS
    }

    private func connect(count: Int, tls: BenchTLS? = nil) async throws -> [BenchConnection] {
        let tls = tls ?? self.tls
        var connections: [BenchConnection] = []
        for _ in 0..<count {
            connections.append(try await BenchConnection.connect(host: "127.0.0.1", port: port, tls: tls, serverHostname: "localhost"))
        }
        return connections
    }

    func openWriters(count: Int) async throws {
        let connections = try await connect(count: count)
        writers.withLock { $0 = connections }
        let others = try await connect(count: count, tls: otherTLS)
        otherWriters.withLock { $0 = others }
    }

    func openWatchConnections(count: Int) async throws {
        let connections = try await connect(count: count)
        watchers.withLock { $0 = connections }
    }

    func prepareSpread(count: Int) async throws {
        guard let operatorTLS else { throw SpreadSetupError(reason: "the spread layout needs --operator-cert and --operator-key") }
        let admin = try await BenchConnection.connect(host: "127.0.0.1", port: port, tls: operatorTLS, serverHostname: "localhost")
        // The default quota is 20 services per tenant; SetQuota allows at most 10,000.
        _ = try await admin.unary(QuotasAPI.setQuota, SetQuotaRequest(tenantId: tenant, type: .endpointService, limit: UInt32(count)),
                                  region: region, timeout: .seconds(10))
        await admin.close()
        let writers = self.writers.withLock { $0 }
        let timeout = Duration.seconds(30)
        let vpc = try await writers[0].unary(InventoryAPI.createVpc, CreateVpcRequest(name: "spread", cidr: "10.40.0.0/16"),
                                             region: region, timeout: timeout)
        let subnet = try await writers[0].unary(InventoryAPI.createSubnet, CreateSubnetRequest(vpcId: vpc.id, name: "spread", cidr: "10.40.0.0/24"),
                                                region: region, timeout: timeout)
        // A create reads every service of its backend (service ports may not repeat on one), so 100
        // services per load balancer rather than 1,000 on one keeps the set-up short; service i
        // listens on 10000 + i.
        var backends: [String] = []
        for index in 0..<(count + 99) / 100 {
            backends.append(try await writers[0].unary(
                InventoryAPI.createLoadBalancer,
                CreateLoadBalancerRequest(vpcId: vpc.id, subnetId: subnet.id, name: "spread\(index)", ingressCidrs: ["198.19.128.0/17"]),
                region: region, timeout: timeout).id)
        }
        let ids = try await withThrowingTaskGroup(of: [(Int, String)].self) { group in
            for worker in 0..<writers.count {
                group.addTask { [region, backends] in
                    var made: [(Int, String)] = []
                    for index in stride(from: worker, to: count, by: writers.count) {
                        let request = CreateEndpointServiceRequest(
                            vpcId: vpc.id, backendType: .loadBalancer, backendId: backends[index / 100],
                            ports: [PortMapping(terminalPort: 8080, servicePort: UInt32(10_000 + index), protocol: .tcp)],
                            name: "s\(index)")
                        made.append((index, try await writers[worker].unary(EndpointServicesAPI.createEndpointService, request,
                                                                            region: region, timeout: timeout).id))
                    }
                    return made
                }
            }
            var ids = [String](repeating: "", count: count)
            for try await made in group { for (index, id) in made { ids[index] = id } }
            return ids
        }
        services.withLock { $0 = ids }
    }

    func write(connection: Int, payload: String, _ write: WatchWrite) async throws {
        switch write {
        case .seen, .unseen:
            let writer = if case .unseen = write { otherWriters.withLock { $0[connection] } } else { writers.withLock { $0[connection] } }
            _ = try await writer.unary(InventoryAPI.createVpc, CreateVpcRequest(name: payload, cidr: "10.30.0.0/16"),
                                       region: region, timeout: .seconds(10))
        case .update(let resource):
            let (writer, service) = (writers.withLock { $0[connection] }, services.withLock { $0[resource] })
            _ = try await writer.unary(EndpointServicesAPI.updateEndpointService,
                                       UpdateEndpointServiceRequest(id: service, description: payload),
                                       region: region, timeout: .seconds(10))
        }
    }

    func watch(index: Int, connection: Int, resource: Int?, live: @escaping @Sendable () -> Void,
               deliver: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws {
        let watcher = watchers.withLock { $0[connection] }
        let request = if let resource { WatchRequest(resourceId: services.withLock { $0[resource] }) } else { WatchRequest(kinds: [.vpc]) }
        // On the connection's event loop, so that a delivery is resumed without waking another thread.
        try await withTaskExecutorPreference(watcher.taskExecutor) {
            var isLive = false
            for try await response in watcher.serverStreaming(HistoryAPI.watch, request, region: region) {
                if response.kind == .bookmark, !isLive {
                    isLive = true
                    live()
                } else if response.kind == .event, let entry = response.entry {
                    // The all layout's payload is a VPC's name, the spread layout's a service's description.
                    if var name = entry.vpc?.name {
                        name.withUTF8 { deliver(UnsafeRawBufferPointer($0)) }
                    } else if var description = entry.endpointService?.description {
                        description.withUTF8 { deliver(UnsafeRawBufferPointer($0)) }
                    }
                }
            }
        }
    }

    func close() async {
        for connection in writers.withLock({ $0 }) + otherWriters.withLock({ $0 }) + watchers.withLock({ $0 }) {
            await connection.close()
        }
    }
}

/// etcd: a write is a `Put` of `/bench/<payload>` (value: the payload); a watch is one
/// `Watch/Watch` stream with one watcher on the prefix `/bench/`, live at its `created` response.
/// An unseen write puts `/other/<payload>`. Spread: a write puts the payload as the value of
/// `/spread/<i>` (each key put once beforehand), and a watch follows that one key.
final class EtcdWatchTarget: WatchTarget {
    let name = "etcd"
    private let port: Int
    private let caFile: String, certFile: String, keyFile: String
    private let writers = Mutex<[GRPCClient<HTTP2ClientTransport.Posix>]>([])
    private let watchers = Mutex<[GRPCClient<HTTP2ClientTransport.Posix>]>([])
    private let runners = Mutex<[Task<Void, Never>]>([])

    init(port: Int, caFile: String, certFile: String, keyFile: String) {
        self.port = port
        self.caFile = caFile
        self.certFile = certFile
        self.keyFile = keyFile
    }

    private func connect(count: Int) throws -> [GRPCClient<HTTP2ClientTransport.Posix>] {
        var clients: [GRPCClient<HTTP2ClientTransport.Posix>] = []
        for _ in 0..<count {
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: "127.0.0.1", port: port),
                transportSecurity: .mTLS(
                    certificateChain: [.file(path: certFile, format: .pem)], privateKey: .file(path: keyFile, format: .pem)
                ) { tls in
                    tls.trustRoots = .certificates([.file(path: caFile, format: .pem)])
                })
            let client = GRPCClient(transport: transport)
            clients.append(client)
            let runner = Task { _ = try? await client.runConnections() }
            runners.withLock { $0.append(runner) }
        }
        return clients
    }

    func openWriters(count: Int) async throws {
        let clients = try connect(count: count)
        writers.withLock { $0 = clients }
        // One call per client first, so that each holds its connection before the clock starts.
        for index in 0..<count { try await write(connection: index, payload: "warm\(index)", .unseen) }
    }

    func openWatchConnections(count: Int) async throws {
        let clients = try connect(count: count)
        watchers.withLock { $0 = clients }
    }

    func prepareSpread(count: Int) async throws {
        let connections = writers.withLock { $0.count }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<connections {
                group.addTask {
                    for index in stride(from: worker, to: count, by: connections) {
                        try await self.write(connection: worker, payload: "initial", .update(index))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private static func spreadKey(_ resource: Int) -> [UInt8] { Array("/spread/\(resource)".utf8) }

    func write(connection: Int, payload: String, _ write: WatchWrite) async throws {
        let client = writers.withLock { $0[connection] }
        let key = switch write {
        case .seen: Array("/bench/\(payload)".utf8)
        case .unseen: Array("/other/\(payload)".utf8)
        case .update(let resource): Self.spreadKey(resource)
        }
        let request = PutRequest(key: key, value: Array(payload.utf8))
        _ = try await client.unary(
            request: ClientRequest(message: request), descriptor: EtcdAPI.put,
            serializer: EtcdSerializer<PutRequest>(), deserializer: EtcdDeserializer<PutResponse>(), options: .defaults
        ) { response in try response.message }
    }

    func watch(index: Int, connection: Int, resource: Int?, live: @escaping @Sendable () -> Void,
               deliver: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws {
        let client = watchers.withLock { $0[connection] }
        let create = if let resource { WatchCreateRequest(key: Self.spreadKey(resource)) } else { WatchCreateRequest(prefix: Array("/bench/".utf8)) }
        try await client.bidirectionalStreaming(
            request: StreamingClientRequest(of: WatchCreateRequest.self) { writer in
                try await writer.write(create)
                // The request side stays open for the watch's life: the task's cancellation ends both.
                try? await Task.sleep(for: .seconds(86_400))
            },
            descriptor: EtcdAPI.watch, serializer: EtcdSerializer<WatchCreateRequest>(),
            deserializer: EtcdDeserializer<EtcdWatchAPI.WatchResponse>(), options: .defaults
        ) { response in
            for try await message in response.messages {
                if message.created { live() }
                if message.canceled { throw WatchCanceled(reason: message.cancelReason) }
                for event in message.events { event.value.withUnsafeBytes { deliver($0) } }
            }
        }
    }

    func close() async {
        for client in writers.withLock({ $0 }) + watchers.withLock({ $0 }) { client.beginGracefulShutdown() }
        for runner in runners.withLock({ $0 }) { await runner.value }
    }
}

struct WatchCanceled: Error {
    var reason: String
}

struct SpreadSetupError: Error {
    var reason: String
}
