// The load generator of Benchmarks/run.sh. Each subcommand prints one JSON object on stdout.
//
//   vpcep-bench seed    --port P --tls-ca CA --tls-cert CRT --tls-key KEY            -> {"serviceId": ...}
//   vpcep-bench read    --target vpcep|grpc --port P --conns C --inflight K --warmup S --duration S
//                       --service ID --server-pids PID[,PID] (+ TLS options)      -> throughput, latency, CPU, RSS
//   vpcep-bench creates --port P --callers N --warmup S --duration S --server-pids PID[,PID] (+ TLS options)
//                       [--ports P1,P2,P3: callers spread over several servers (replicas of one registry)]
//   vpcep-bench watch   --target vpcep|etcd --port P [--watchers 1000 --watch-conns 40 --rate 500
//                       --duration 20 --callers 64 --tput-duration 8] (+ TLS options)  -> Watch.swift
//                       vpcep also: --other-cert CRT --other-key KEY (another tenant, for writes no watcher sees)
//                       --layout all|spread (all: every watcher sees every write; spread: watcher i one
//                       resource of its own, see Watch.swift); vpcep's spread also: --operator-cert CRT
//                       --operator-key KEY (to raise --tenant's service quota; tenant default alice)
//   vpcep-bench idle-watches --port P --conns N --settle S --server-pids PID [--watch-batch N] (+ TLS options)
//                       -> the server's RSS for N idle connections, then with one idle Watch on each
//
// Latency percentiles are exact (every call's latency is kept and sorted), not histogram buckets.
// Failed calls are counted by status (`errors_by_status`, e.g. ABORTED, UNAVAILABLE), never retried.
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCPeerService
import NIOCore
import NIOPosix
import Synchronization
@_spi(Benchmarks) import VPCEPBenchSupport
import VPCEPClient

func option(_ name: String, _ fallback: String? = nil) -> String {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    guard let fallback else { FileHandle.standardError.write(Data("vpcep-bench: \(name) is required\n".utf8)); exit(2) }
    return fallback
}

let port = Int(option("--port"))!
let caFile = option("--tls-ca")
let certFile = option("--tls-cert")
let keyFile = option("--tls-key")
let region = option("--region", "eu-west-1")

/// CPU seconds (user + system) and RSS of the server process(es), from /proc.
struct ProcSample {
    var cpuSeconds: Double = 0
    var rssKiB: Int = 0

    static func take(_ pids: [Int]) -> ProcSample {
        var sample = ProcSample()
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        for pid in pids {
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
               let close = stat.lastIndex(of: ")") {
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
                sample.cpuSeconds += (Double(fields[11]) ?? 0) / ticks + (Double(fields[12]) ?? 0) / ticks
            }
            if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) {
                sample.rssKiB += Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
            }
        }
        return sample
    }
}

let serverPIDs = option("--server-pids", "").split(separator: ",").compactMap { Int($0) }

func clientTLS() throws -> BenchTLS {
    try BenchTLS(caFile: caFile, certificateFile: certFile, keyFile: keyFile)
}

func json(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

/// Runs `workers` loops of `call` until the measure window ends; returns latencies (ns) of calls
/// that started after the warm-up and finished within the window, and the errors in the window.
/// `executor(worker)`, when given, is where that worker's loop runs (vpcep: its connection's event loop).
func drive(
    workers: Int, warmup: Double, duration: Double, executor: (Int) -> (any TaskExecutor)? = { _ in nil },
    call: @escaping @Sendable (Int) async throws -> Void
) async -> DriveResult {
    let clock = ContinuousClock()
    let start = clock.now
    let measureStart = start + .milliseconds(Int(warmup * 1000))
    let measureEnd = measureStart + .milliseconds(Int(duration * 1000))
    let sampler = Task { () -> (ProcSample, ProcSample) in
        try? await Task.sleep(until: measureStart, clock: clock)
        let before = ProcSample.take(serverPIDs)
        try? await Task.sleep(until: measureEnd, clock: clock)
        return (before, ProcSample.take(serverPIDs))
    }
    let results = await withTaskGroup(of: ([UInt64], [String: Int]).self) { group in
        for worker in 0..<workers {
            group.addTask(executorPreference: executor(worker)) {
                var latencies: [UInt64] = []
                latencies.reserveCapacity(1 << 16)
                var errors: [String: Int] = [:]
                while true {
                    let t0 = clock.now
                    if t0 >= measureEnd { break }
                    var failure: String?
                    do { try await call(worker) } catch { failure = statusName(error) }
                    let failed = failure != nil
                    let t1 = clock.now
                    if t0 >= measureStart && t1 <= measureEnd {
                        if let failure { errors[failure, default: 0] += 1 } else {
                            let d = t1 - t0
                            latencies.append(UInt64(d.components.seconds) * 1_000_000_000 + UInt64(d.components.attoseconds / 1_000_000_000))
                        }
                    }
                    if failed { try? await Task.sleep(for: .milliseconds(1)) }
                }
                return (latencies, errors)
            }
        }
        var all: [UInt64] = []
        var errors: [String: Int] = [:]
        for await (latencies, e) in group {
            all.append(contentsOf: latencies)
            errors.merge(e, uniquingKeysWith: +)
        }
        return (all, errors)
    }
    let (before, after) = await sampler.value
    return DriveResult(latencies: results.0, errors: results.1, window: duration, before: before, after: after)
}

struct DriveResult {
    var latencies: [UInt64]
    /// Failed calls in the window, by status name (`ABORTED`, `UNAVAILABLE`, …; `other` for failures without one).
    var errors: [String: Int]
    var window: Double
    var before: ProcSample
    var after: ProcSample
}

/// A failed call's status name, so that a report tells conflicts (ABORTED) from outages (UNAVAILABLE).
func statusName(_ error: any Error) -> String {
    if let failure = error as? VPCEPError { return failure.code.name }
    if let failure = error as? RPCError { return "grpc \(failure.code)" }
    return "other"
}

func report(_ scenario: String, _ r: DriveResult) {
    let sorted = r.latencies.sorted()
    func pct(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]) / 1000
    }
    let calls = sorted.count
    json([
        "scenario": scenario, "calls": calls, "errors": r.errors.values.reduce(0, +), "errors_by_status": r.errors,
        "rps": Double(calls) / r.window,
        "p50_us": pct(0.50), "p90_us": pct(0.90), "p99_us": pct(0.99), "p999_us": pct(0.999),
        "server_cpu_us_per_call": calls > 0 ? (r.after.cpuSeconds - r.before.cpuSeconds) / Double(calls) * 1e6 : 0,
        "server_rss_kib": r.after.rssKiB,
    ])
}

let callTimeout = Duration.seconds(10)

switch CommandLine.arguments.dropFirst().first {
case "seed":
    let client = try VPCEPClient(configuration: .init(host: "127.0.0.1", port: port, region: region, caFile: caFile,
                                                      certificateFile: certFile, keyFile: keyFile))
    let vpc = try await client.createVpc(CreateVpcRequest(name: "bench-vpc", cidr: "10.20.0.0/16"))
    let subnet = try await client.createSubnet(CreateSubnetRequest(vpcId: vpc.id, name: "bench-subnet", cidr: "10.20.1.0/24"))
    let lb = try await client.createLoadBalancer(CreateLoadBalancerRequest(
        vpcId: vpc.id, subnetId: subnet.id, name: "bench-lb", ip: "10.20.1.10"))
    let service = try await client.createEndpointService(CreateEndpointServiceRequest(
        vpcId: vpc.id, backendType: .loadBalancer, backendId: lb.id,
        ports: [PortMapping(terminalPort: 80, servicePort: 8080, protocol: .tcp)], name: "bench-service",
        description: "the one service every read scenario reads"))
    let bytes = try service.serializedBytes().count
    await client.close()
    json(["serviceId": service.id, "responseBytes": bytes])

case "read":
    let conns = Int(option("--conns"))!
    let inflight = Int(option("--inflight"))!
    let warmup = Double(option("--warmup", "5"))!
    let duration = Double(option("--duration", "10"))!
    let request = GetEndpointServiceRequest(id: option("--service"))
    let target = option("--target")
    let scenario = "read C=\(conns) K=\(inflight)"
    if target == "vpcep" {
        let tls = try clientTLS()
        var connections: [BenchConnection] = []
        for _ in 0..<conns {
            connections.append(try await BenchConnection.connect(host: "127.0.0.1", port: port, tls: tls, serverHostname: "localhost"))
        }
        let pool = connections
        // Each loop runs on its connection's event loop (BenchConnection.taskExecutor), so a call
        // is written and its answer resumed without waking another thread.
        let result = await drive(workers: conns * inflight, warmup: warmup, duration: duration,
                                 executor: { pool[$0 % conns].taskExecutor }) { worker in
            _ = try await pool[worker % conns].unary(
                EndpointServicesAPI.getEndpointService, request, region: region, timeout: callTimeout)
        }
        report(scenario, result)
        for c in pool { await c.close() }
    } else {
        var clients: [GRPCClient<HTTP2ClientTransport.Posix>] = []
        for _ in 0..<conns {
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: "127.0.0.1", port: port),
                transportSecurity: .mTLS(
                    certificateChain: [.file(path: certFile, format: .pem)], privateKey: .file(path: keyFile, format: .pem)
                ) { tls in
                    tls.trustRoots = .certificates([.file(path: caFile, format: .pem)])
                })
            clients.append(GRPCClient(transport: transport))
        }
        let pool = clients
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in pool { group.addTask { try await client.runConnections() } }
            // One call per client first, so that each holds its connection before the clock starts.
            for client in pool { _ = try await PeerEndpointServices.getEndpointService(client, request) }
            let result = await drive(workers: conns * inflight, warmup: warmup, duration: duration) { worker in
                _ = try await PeerEndpointServices.getEndpointService(pool[worker % conns], request)
            }
            report(scenario, result)
            for client in pool { client.beginGracefulShutdown() }
            try await group.waitForAll()
        }
    }

case "creates":
    let callers = Int(option("--callers"))!
    let warmup = Double(option("--warmup", "2"))!
    let duration = Double(option("--duration", "10"))!
    let tls = try clientTLS()
    let ports = option("--ports", String(port)).split(separator: ",").map { Int($0)! }
    // Callers share a few connections, as a client process would; each call is its own durable create.
    // With several servers, each gets as many connections (connection c goes to server c % servers), so
    // the callers are spread evenly over them.
    let perServer = (min(callers, 8) + ports.count - 1) / ports.count
    let connectionCount = min(callers, perServer * ports.count)
    var connections: [BenchConnection] = []
    for c in 0..<connectionCount {
        connections.append(try await BenchConnection.connect(
            host: "127.0.0.1", port: ports[c % ports.count], tls: tls, serverHostname: "localhost"))
    }
    let pool = connections
    let counter = Counter()
    let result = await drive(workers: callers, warmup: warmup, duration: duration,
                             executor: { pool[$0 % connectionCount].taskExecutor }) { worker in
        let n = counter.next()
        _ = try await pool[worker % connectionCount].unary(
            InventoryAPI.createVpc, CreateVpcRequest(name: "bench-\(n)", cidr: "10.\(n % 250).0.0/16"),
            region: region, timeout: callTimeout)
    }
    report("durable creates, \(callers) callers, \(ports.count) server(s)", result)
    for c in pool { await c.close() }

case "watch":
    var options = WatchScenarioOptions()
    guard let layout = WatchLayout(rawValue: option("--layout", "all")) else {
        FileHandle.standardError.write(Data("vpcep-bench watch: --layout is all or spread\n".utf8))
        exit(2)
    }
    options.layout = layout
    options.watchers = Int(option("--watchers", "1000"))!
    options.watchConnections = Int(option("--watch-conns", "40"))!
    options.rate = Int(option("--rate", "500"))!
    options.duration = Double(option("--duration", "20"))!
    options.callers = Int(option("--callers", "64"))!
    options.tputWarmup = Double(option("--tput-warmup", "2"))!
    options.tputDuration = Double(option("--tput-duration", "8"))!
    let target: any WatchTarget = option("--target") == "etcd"
        ? EtcdWatchTarget(port: port, caFile: caFile, certFile: certFile, keyFile: keyFile)
        : VPCEPWatchTarget(
            port: port, region: region, tenant: option("--tenant", "alice"), tls: try clientTLS(),
            otherTLS: try BenchTLS(caFile: caFile, certificateFile: option("--other-cert"), keyFile: option("--other-key")),
            operatorTLS: layout == .spread
                ? try BenchTLS(caFile: caFile, certificateFile: option("--operator-cert"), keyFile: option("--operator-key")) : nil)
    json(try await runWatchScenario(target, options: options))
case "idle-watches":
    // Issue 11's bound: an idle watch costs at most 2 KiB of server memory beyond its connection.
    let count = Int(option("--conns", "1000"))!
    let settle = Double(option("--settle", "3"))!
    // Watches started at a time: all at once by default; 50 starts them as connections are opened.
    let watchBatch = max(Int(option("--watch-batch", "0"))!, 0)
    let tls = try clientTLS()
    func open(_ n: Int) async throws -> [BenchConnection] {
        var opened: [BenchConnection] = []
        while opened.count < n {
            try await withThrowingTaskGroup(of: BenchConnection.self) { group in
                for _ in 0..<min(50, n - opened.count) {
                    group.addTask {
                        try await BenchConnection.connect(host: "127.0.0.1", port: port, tls: tls, serverHostname: "localhost")
                    }
                }
                for try await connection in group { opened.append(connection) }
            }
        }
        return opened
    }
    /// One Watch (start now) per connection, each held by a task until cancelled; returns once every
    /// watch has had its first message (the bookmark of its start), so the server has set it up.
    /// `--watch-batch N`: N at a time, each batch set up before the next starts.
    func watch(_ connections: [BenchConnection]) async -> [Task<Void, Never>] {
        guard watchBatch > 0, connections.count > watchBatch else { return await watchAll(connections) }
        var tasks: [Task<Void, Never>] = []
        for start in stride(from: 0, to: connections.count, by: watchBatch) {
            tasks += await watchAll(Array(connections[start..<min(start + watchBatch, connections.count)]))
        }
        return tasks
    }
    func watchAll(_ connections: [BenchConnection]) async -> [Task<Void, Never>] {
        let sent = WatchRequest()  // start now
        let (started, signal) = AsyncStream.makeStream(of: Void.self)
        let tasks = connections.map { connection in
            Task {
                var messages = connection.serverStreaming(HistoryAPI.watch, sent, region: region).makeAsyncIterator()
                _ = try? await messages.next()
                signal.yield()
                while (try? await messages.next()) != nil {}
            }
        }
        var seen = 0
        for await _ in started {
            seen += 1
            if seen == connections.count { break }
        }
        return tasks
    }
    func pause() async throws { try await Task.sleep(for: .milliseconds(Int(settle * 1000))) }
    let empty = ProcSample.take(serverPIDs)
    // Warm-up: a tenth as many watches, kept to the end, for what the first ones set up once (the feed's
    // loop). Not watches that then end: the new ones would reuse their freed memory and hide their cost.
    let warm = try await open(max(count / 10, 1))
    let warmTasks = await watch(warm)
    try await pause()
    let base = ProcSample.take(serverPIDs)
    let connections = try await open(count)
    try await pause()
    let idleConnections = ProcSample.take(serverPIDs)
    let tasks = await watch(connections)
    try await pause()
    let idleWatches = ProcSample.take(serverPIDs)
    json([
        "scenario": "idle watches (\(count))", "watch_batch": watchBatch, "rss_start_kib": empty.rssKiB, "rss_after_warmup_kib": base.rssKiB,
        "rss_idle_conns_kib": idleConnections.rssKiB, "rss_idle_watches_kib": idleWatches.rssKiB,
        "bytes_per_conn": (idleConnections.rssKiB - base.rssKiB) * 1024 / count,
        "bytes_per_watch": (idleWatches.rssKiB - idleConnections.rssKiB) * 1024 / count,
    ])
    for t in tasks + warmTasks { t.cancel() }
    for c in connections + warm { await c.close() }

default:
    FileHandle.standardError.write(Data("usage: vpcep-bench seed|read|creates|watch ... (see the top of main.swift)\n".utf8))
    exit(2)
}

final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    func next() -> Int { value.add(1, ordering: .relaxed).newValue }
}
