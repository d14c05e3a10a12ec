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
final class VPCEPWatchTarget: WatchTarget {
    let name = "vpcep"
    private let port: Int
    private let region: String
    private let tls: BenchTLS
    private let otherTLS: BenchTLS
    private let writers = Mutex<[BenchConnection]>([])
    private let otherWriters = Mutex<[BenchConnection]>([])
    private let watchers = Mutex<[BenchConnection]>([])

    init(port: Int, region: String, tls: BenchTLS, otherTLS: BenchTLS) {
        self.port = port
        self.region = region
        self.tls = tls
        self.otherTLS = otherTLS
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

    func write(connection: Int, payload: String, unseen: Bool) async throws {
        let writer = unseen ? otherWriters.withLock { $0[connection] } : writers.withLock { $0[connection] }
        _ = try await writer.unary(InventoryAPI.createVpc, CreateVpcRequest(name: payload, cidr: "10.30.0.0/16"),
                                   region: region, timeout: .seconds(10))
    }

    func watch(index: Int, connection: Int, live: @escaping @Sendable () -> Void,
               deliver: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws {
        let watcher = watchers.withLock { $0[connection] }
        // On the connection's event loop, so that a delivery is resumed without waking another thread.
        try await withTaskExecutorPreference(watcher.taskExecutor) {
            var isLive = false
            for try await response in watcher.serverStreaming(HistoryAPI.watch, WatchRequest(kinds: [.vpc]), region: region) {
                if response.kind == .bookmark, !isLive {
                    isLive = true
                    live()
                } else if response.kind == .event, var name = response.entry?.vpc?.name {
                    name.withUTF8 { deliver(UnsafeRawBufferPointer($0)) }
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
/// An unseen write puts `/other/<payload>`.
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
        for index in 0..<count { try await write(connection: index, payload: "warm\(index)", unseen: true) }
    }

    func openWatchConnections(count: Int) async throws {
        let clients = try connect(count: count)
        watchers.withLock { $0 = clients }
    }

    func write(connection: Int, payload: String, unseen: Bool) async throws {
        let client = writers.withLock { $0[connection] }
        let request = PutRequest(key: Array("\(unseen ? "/other/" : "/bench/")\(payload)".utf8), value: Array(payload.utf8))
        _ = try await client.unary(
            request: ClientRequest(message: request), descriptor: EtcdAPI.put,
            serializer: EtcdSerializer<PutRequest>(), deserializer: EtcdDeserializer<PutResponse>(), options: .defaults
        ) { response in try response.message }
    }

    func watch(index: Int, connection: Int, live: @escaping @Sendable () -> Void,
               deliver: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws {
        let client = watchers.withLock { $0[connection] }
        let create = WatchCreateRequest(prefix: Array("/bench/".utf8))
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
