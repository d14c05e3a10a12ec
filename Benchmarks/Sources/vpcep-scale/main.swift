// Issue 14's scale scenario (Benchmarks/scale.sh, scale.py). Its own executable, without gRPC, so
// that it builds with the main package alone. Each subcommand prints JSON on stdout.
//
//   vpcep-scale seed    --data-dir D --records N [--tenants 1000 --seed 14 --workers 1 (128 --per-record) --region R
//                       --operator ops --per-record] --ids-out FILE  -> the mix seeded and its time; service
//                       ids to FILE. --per-record: one store transaction per registry call (the old, slow way)
//   vpcep-scale measure --port P --ids FILE --tls-ca CA --tls-cert CRT --tls-key KEY (an operator's)
//                       [--callers 64 --warm-pass 1 --warmup 3 --duration 6 --list-calls 200 --server-pids PID]
//                       -> one JSON line per scenario: get, then each list's first and deep pages
//   vpcep-scale mixed   --port P --ids FILE --tls-ca CA --tls-cert CRT --tls-key KEY (an operator's)
//                       --tenant-certs DIR --tenants t00000,t00001,… [--callers 64 --warmup 3 --duration 6
//                       --seed 14 --server-pids PID --writes-only]
//                       -> "read-only" then "mixed": calls/s and latencies, overall and per kind; with
//                       --writes-only the second phase is "writes-only" (the mixed phase's writes, no reads:
//                       what the one writer gives by itself)
//   vpcep-scale cold    --port P --ids FILE --tls-… (an operator's) [--services 100000 --callers 64 --seed 14]
//                       -> the first GetEndpointService of each service after a restart
import Foundation
import Synchronization
@_spi(Benchmarks) import VPCEPBenchSupport
import VPCEPClient

func option(_ name: String, _ fallback: String? = nil) -> String {
    let args = CommandLine.arguments
    if let i = args.firstIndex(of: name), i + 1 < args.count { return args[i + 1] }
    guard let fallback else { FileHandle.standardError.write(Data("vpcep-scale: \(name) is required\n".utf8)); exit(2) }
    return fallback
}

func json(_ object: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
    fflush(nil)  // every stream: a line is read as soon as it is printed
}

func note(_ text: String) {
    FileHandle.standardError.write(Data("vpcep-scale: \(text)\n".utf8))
}

let region = option("--region", "eu-west-1")
let clock = ContinuousClock()

func microseconds(_ d: Duration) -> Double {
    Double(d.components.seconds) * 1e6 + Double(d.components.attoseconds) / 1e12
}

/// Exact percentiles (every latency kept), in µs.
func percentiles(_ latencies: [Double]) -> [String: Any] {
    let sorted = latencies.sorted()
    func pct(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
    }
    return ["calls": sorted.count, "p50_us": pct(0.5), "p90_us": pct(0.9), "p99_us": pct(0.99), "max_us": sorted.last ?? 0]
}

/// utime+stime (s) and VmRSS (KiB) of the server, from /proc.
func procSample(_ pid: Int) -> (cpu: Double, rssKiB: Int) {
    guard pid > 0 else { return (0, 0) }
    var cpu = 0.0
    var rss = 0
    if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
       let close = stat.lastIndex(of: ")") {
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        cpu = ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticks
    }
    if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
       let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) {
        rss = Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
    }
    return (cpu, rss)
}


/// One kind of call of the mixed scenario, and where its latencies go.
enum CallKind: String, CaseIterable {
    case get, list, update, create, decide
}

/// What a caller of the mixed scenario writes to: its tenant's own services, a subnet made for this
/// run in the tenant's VPC, and the endpoints waiting for the tenant's decision.
struct WriteTarget {
    var tenant: BenchConnection
    var services: [String]
    var vpcID: String
    var subnetID: String
    var pending: [(service: String, endpoint: String)]
}

/// Raises the tenant's endpoint quota (as the operator, as seeding does) and makes the caller's subnet:
/// a free /22 of the tenant's 10.0.0.0/16 above the seeded subnets (10.0.0.0-10.0.63.255), so that every
/// create of the run finds an address; each run takes another /22 (48 runs per store).
func prepareWrites(ops: BenchConnection, tenant: BenchConnection, tenantID: String) async throws -> WriteTarget {
    let timeout = Duration.seconds(30)
    _ = try await ops.unary(QuotasAPI.setQuota, SetQuotaRequest(tenantId: tenantID, type: .endpoint, limit: 10_000),
                            region: region, timeout: timeout)
    let services = try await tenant.unary(
        EndpointServicesAPI.listEndpointServices, ListEndpointServicesRequest(page: PageRequest(limit: 100)),
        region: region, timeout: timeout).items
    guard let vpcID = services.first?.vpcId else { throw ScaleError("tenant \(tenantID) has no service") }
    let pending = try await tenant.unary(
        EndpointsAPI.listEndpoints, ListEndpointsRequest(page: PageRequest(limit: 100), status: .pendingAcceptance),
        region: region, timeout: timeout).items
    var subnets: [Subnet] = []
    var token = ""
    repeat {
        let page = try await tenant.unary(
            InventoryAPI.listSubnets, ListSubnetsRequest(page: PageRequest(limit: 100, pageToken: token), vpcId: vpcID),
            region: region, timeout: timeout)
        subnets += page.items
        token = page.nextPageToken
    } while !token.isEmpty
    let used = Set(subnets.compactMap { Int($0.cidr.split(separator: ".")[2]) }.map { $0 / 4 * 4 })
    // Callers sharing a tenant are prepared one after the other, so each sees the others' subnets.
    guard let block = stride(from: 64, to: 256, by: 4).first(where: { !used.contains($0) }) else {
        throw ScaleError("tenant \(tenantID) has no free /22 left for the mixed scenario")
    }
    let subnet = try await tenant.unary(
        InventoryAPI.createSubnet,
        CreateSubnetRequest(vpcId: vpcID, name: "mixed-\(block)", cidr: "10.0.\(block).0/22"), region: region, timeout: timeout)
    return WriteTarget(
        tenant: tenant, services: services.map(\.id), vpcID: vpcID, subnetID: subnet.id,
        pending: pending.map { ($0.serviceId, $0.id) })
}

struct ScaleError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `callers` callers, each one call in flight, for `duration` after `warmup`: a call is a get (as the
/// operator, of services w, w+callers, … of the shuffled list), a list (as the caller's tenant, a page
/// of 20 of its own services or endpoints), or, with `writes`, one of the tenant's writes; kinds drawn
/// per call from the caller's seeded generator: 80% gets / 10% lists / 10% writes with writes, 8:1
/// gets to lists without. Every call counts; a failed one is an error of its kind.
func runMix(
    name: String, readers: [BenchConnection], targets: [WriteTarget], writes: Bool, writesOnly: Bool = false,
    services: [String], seed: UInt64,
    warmup: Double, duration: Double, pid: Int
) async -> [String: Any] {
    let timeout = Duration.seconds(30)
    let callers = readers.count
    let measureStart = clock.now + .milliseconds(Int(warmup * 1000))
    let measureEnd = measureStart + .milliseconds(Int(duration * 1000))
    let sampler = Task { () -> (Double, Double) in
        try? await Task.sleep(until: measureStart, clock: clock)
        let before = procSample(pid).cpu
        try? await Task.sleep(until: measureEnd, clock: clock)
        return (before, procSample(pid).cpu)
    }
    typealias Outcome = [CallKind: (latencies: [Double], errors: Int)]
    let outcomes = await withTaskGroup(of: Outcome.self) { group in
        for w in 0..<callers {
            let reader = readers[w]
            let target = targets[w]
            group.addTask(executorPreference: reader.taskExecutor) { [target] in
                var target = target
                var rng = SplitMix64Bench(seed: seed &+ UInt64(w) &* 0x9E37_79B9_7F4A_7C15)
                var outcome: Outcome = [:]
                var i = w
                var n = 0
                while true {
                    let t0 = clock.now
                    if t0 >= measureEnd { break }
                    let draw = writesOnly ? 90 + Int(rng.next() % 10) : Int(rng.next() % 100)
                    var kind: CallKind = !writes ? (draw < 89 ? .get : .list) : draw < 80 ? .get : draw < 90 ? .list
                        : draw < 93 ? .update : draw < 96 ? .create : .decide
                    if kind == .decide && target.pending.isEmpty { kind = .update }
                    n += 1
                    var failed = false
                    do {
                        switch kind {
                        case .get:
                            _ = try await reader.unary(EndpointServicesAPI.getEndpointService,
                                                       GetEndpointServiceRequest(id: services[i % services.count]),
                                                       region: region, timeout: timeout)
                            i += callers
                        case .list:
                            let lister = target.tenant
                            if n % 2 == 0 {
                                _ = try await lister.unary(EndpointServicesAPI.listEndpointServices,
                                                           ListEndpointServicesRequest(page: PageRequest(limit: 20)),
                                                           region: region, timeout: timeout)
                            } else {
                                _ = try await lister.unary(EndpointsAPI.listEndpoints,
                                                           ListEndpointsRequest(page: PageRequest(limit: 20)),
                                                           region: region, timeout: timeout)
                            }
                        case .update:
                            let t = target
                            _ = try await t.tenant.unary(
                                EndpointServicesAPI.updateEndpointService,
                                UpdateEndpointServiceRequest(id: t.services[n % t.services.count], description: "mixed \(w) \(n)"),
                                region: region, timeout: timeout)
                        case .create:
                            let t = target
                            let endpoint = try await t.tenant.unary(
                                EndpointsAPI.createEndpoint,
                                CreateEndpointRequest(serviceId: t.services[n % t.services.count], vpcId: t.vpcID,
                                                      subnetId: t.subnetID, description: "mixed \(w) \(n)"),
                                region: region, timeout: timeout)
                            if endpoint.status == .pendingAcceptance {
                                target.pending.append((endpoint.serviceId, endpoint.id))
                            }
                        case .decide:
                            let (service, endpoint) = target.pending.removeLast()
                            let request = DecideConnectionsRequest(serviceId: service, endpointIds: [endpoint])
                            _ = try await target.tenant.unary(
                                n % 2 == 0 ? EndpointServicesAPI.acceptConnections : EndpointServicesAPI.rejectConnections,
                                request, region: region, timeout: timeout)
                        }
                    } catch {
                        failed = true
                        if outcome[kind, default: ([], 0)].errors == 0 { note("\(name) \(kind.rawValue): \(error)") }
                    }
                    let t1 = clock.now
                    if t0 >= measureStart && t1 <= measureEnd {
                        if failed { outcome[kind, default: ([], 0)].errors += 1 } else {
                            outcome[kind, default: ([], 0)].latencies.append(microseconds(t1 - t0))
                        }
                    }
                }
                return outcome
            }
        }
        var all: Outcome = [:]
        for await part in group {
            for (kind, o) in part {
                all[kind, default: ([], 0)].latencies += o.latencies
                all[kind, default: ([], 0)].errors += o.errors
            }
        }
        return all
    }
    let (cpuBefore, cpuAfter) = await sampler.value
    let everything = outcomes.values.flatMap(\.latencies)
    var result = percentiles(everything)
    result["scenario"] = name
    result["callers"] = callers
    result["rps"] = Double(everything.count) / duration
    result["errors"] = outcomes.values.reduce(0) { $0 + $1.errors }
    result["server_cpu_us_per_call"] = everything.isEmpty ? 0 : (cpuAfter - cpuBefore) / Double(everything.count) * 1e6
    var kinds: [String: Any] = [:]
    for kind in CallKind.allCases {
        guard let o = outcomes[kind] else { continue }
        var k = percentiles(o.latencies)
        k["errors"] = o.errors
        k["rps"] = Double(o.latencies.count) / duration
        kinds[kind.rawValue] = k
    }
    result["kinds"] = kinds
    return result
}

/// Which service the next free caller of the cold scenario reads.
final class NextIndex: Sendable {
    let value = Atomic<Int>(0)
}

/// SplitMix64 (as ScaleSeeder's), so that a seed number fixes each caller's sequence of kinds.
struct SplitMix64Bench {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The service ids of FILE in an order fixed by the seed.
func shuffledIDs(_ file: String, seed: UInt64) throws -> [String] {
    var ids = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: file))) as! [String]
    var rng = SplitMix64Bench(seed: seed)
    for i in stride(from: ids.count - 1, to: 0, by: -1) {
        ids.swapAt(i, Int(rng.next() % UInt64(i + 1)))
    }
    return ids
}

switch CommandLine.arguments.dropFirst().first {
case "seed":
    let perRecord = CommandLine.arguments.contains("--per-record")
    let plan = ScaleSeedPlan(
        records: Int(option("--records"))!, tenants: Int(option("--tenants", "1000"))!,
        seed: UInt64(option("--seed", "14"))!, region: region, operatorName: option("--operator", "ops"),
        // One tenant at a time by default: the store serializes transactions anyway, and concurrent
        // tenants would join one group commit of up to 256 tenants, all held in memory until it.
        workers: Int(option("--workers", perRecord ? "128" : "1"))!, perTenantTransaction: !perRecord)
    let start = clock.now
    let lastReport = Mutex(clock.now)
    let summary = try await ScaleSeeder.seed(dataDirectory: option("--data-dir"), plan: plan) { created in
        let now = clock.now
        let due = lastReport.withLock { last in
            guard now - last >= .seconds(10) else { return false }
            last = now
            return true
        }
        if due { note("\(created) records created after \(Int(microseconds(now - start) / 1e6)) s") }
    }
    let seconds = microseconds(clock.now - start) / 1e6
    let ids = try JSONSerialization.data(withJSONObject: summary.serviceIDs)
    try ids.write(to: URL(fileURLWithPath: option("--ids-out")))
    json([
        "records": plan.records, "seed": plan.seed, "tenants": summary.tenants, "services": summary.services,
        "endpoints": summary.endpoints, "pending_endpoints": summary.pendingEndpoints,
        "dev_services": summary.devServices, "dev_endpoints": summary.devEndpoints, "seed_seconds": seconds,
        "per_tenant_transaction": plan.perTenantTransaction,
    ])

case "measure":
    let port = Int(option("--port"))!
    let tls = try BenchTLS(caFile: option("--tls-ca"), certificateFile: option("--tls-cert"), keyFile: option("--tls-key"))
    let pid = Int(option("--server-pids", "0"))!
    let callers = Int(option("--callers", "64"))!
    let warmup = Double(option("--warmup", "3"))!
    let duration = Double(option("--duration", "6"))!
    let listCalls = Int(option("--list-calls", "200"))!
    let timeout = Duration.seconds(30)
    var ids = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: option("--ids")))) as! [String]
    var rng = SystemRandomNumberGenerator()
    ids.shuffle(using: &rng)
    let services = ids

    // GetEndpointService: `callers` connections with one call in flight each (as "read C=64 K=1"), caller
    // w reading services w, w+callers, … of the shuffled list, so that every call names another service
    // until the list wraps around.
    var connections: [BenchConnection] = []
    for _ in 0..<callers {
        connections.append(try await BenchConnection.connect(host: "127.0.0.1", port: port, tls: tls, serverHostname: "localhost"))
    }
    let pool = connections
    // The steady state, not first reads (those are the cold scenario's): every service is read once
    // before the warm-up, by whichever caller is free, unless `--warm-pass 0`.
    var warmPassSeconds = 0.0
    if option("--warm-pass", "1") != "0" {
        let passStart = clock.now
        let next = NextIndex()
        await withTaskGroup(of: Void.self) { group in
            for w in 0..<callers {
                group.addTask(executorPreference: pool[w].taskExecutor) {
                    while true {
                        let n = next.value.add(1, ordering: .relaxed).oldValue
                        guard n < services.count else { return }
                        _ = try? await pool[w].unary(
                            EndpointServicesAPI.getEndpointService, GetEndpointServiceRequest(id: services[n]),
                            region: region, timeout: timeout)
                    }
                }
            }
        }
        warmPassSeconds = microseconds(clock.now - passStart) / 1e6
    }
    let measureStart = clock.now + .milliseconds(Int(warmup * 1000))
    let measureEnd = measureStart + .milliseconds(Int(duration * 1000))
    let sampler = Task { () -> ((cpu: Double, rssKiB: Int), (cpu: Double, rssKiB: Int)) in
        try? await Task.sleep(until: measureStart, clock: clock)
        let before = procSample(pid)
        try? await Task.sleep(until: measureEnd, clock: clock)
        return (before, procSample(pid))
    }
    let (latencies, errors, calls) = await withTaskGroup(of: ([Double], Int, Int).self) { group in
        for w in 0..<callers {
            group.addTask(executorPreference: pool[w].taskExecutor) {
                var latencies: [Double] = []
                var errors = 0
                var i = w
                var calls = 0
                while true {
                    let t0 = clock.now
                    if t0 >= measureEnd { break }
                    let request = GetEndpointServiceRequest(id: services[i % services.count])
                    i += callers
                    calls += 1
                    var failed = false
                    do {
                        _ = try await pool[w].unary(EndpointServicesAPI.getEndpointService, request, region: region, timeout: timeout)
                    } catch {
                        failed = true
                    }
                    let t1 = clock.now
                    if t0 >= measureStart && t1 <= measureEnd {
                        if failed { errors += 1 } else { latencies.append(microseconds(t1 - t0)) }
                    }
                }
                return (latencies, errors, calls)
            }
        }
        var all: [Double] = []
        var errors = 0
        var calls = 0
        for await (l, e, c) in group {
            all += l
            errors += e
            calls += c
        }
        return (all, errors, calls)
    }
    let (before, after) = await sampler.value
    var get = percentiles(latencies)
    get["scenario"] = "get"
    get["errors"] = errors
    get["rps"] = Double(latencies.count) / duration
    get["distinct_services"] = services.count
    get["calls_incl_warmup"] = calls
    get["warm_pass_s"] = warmPassSeconds
    get["server_cpu_us_per_call"] = latencies.isEmpty ? 0 : (after.cpu - before.cpu) / Double(latencies.count) * 1e6
    get["server_rss_kib"] = after.rssKiB
    json(get)
    for c in pool.dropFirst() { await c.close() }

    // Lists: one caller, one call at a time, as an operator (every owner in the region), pages of 100 in
    // the default order (created_at, newest first). The deep page is the middle one of the matches:
    // reached once by following page tokens from the first page, then asked for again and again with
    // the same token, and for comparison with the same offset.
    let lister = pool[0]
    struct ListCase {
        var name: String
        var call: @Sendable (BenchConnection, PageRequest) async throws -> (total: Int, next: String, items: Int)
    }
    let cases: [ListCase] = [
        ListCase(name: "endpoints status=pending_acceptance") { c, page in
            let r = try await c.unary(EndpointsAPI.listEndpoints, ListEndpointsRequest(page: page, status: .pendingAcceptance),
                                      region: region, timeout: timeout)
            return (Int(r.totalCount), r.nextPageToken, r.items.count)
        },
        ListCase(name: "endpoints tag env=dev") { c, page in
            let r = try await c.unary(EndpointsAPI.listEndpoints, ListEndpointsRequest(page: page, tags: [Tag(key: "env", value: "dev")]),
                                      region: region, timeout: timeout)
            return (Int(r.totalCount), r.nextPageToken, r.items.count)
        },
        ListCase(name: "services tag env=dev") { c, page in
            let r = try await c.unary(EndpointServicesAPI.listEndpointServices,
                                      ListEndpointServicesRequest(page: page, tags: [Tag(key: "env", value: "dev")]),
                                      region: region, timeout: timeout)
            return (Int(r.totalCount), r.nextPageToken, r.items.count)
        },
    ]
    func timed(_ page: PageRequest, _ listCase: ListCase) async throws -> [Double] {
        var latencies: [Double] = []
        for n in 0..<(listCalls + listCalls / 10) {
            let t0 = clock.now
            _ = try await listCase.call(lister, page)
            if n >= listCalls / 10 { latencies.append(microseconds(clock.now - t0)) }  // the first tenth warms up
        }
        return latencies
    }
    for listCase in cases {
        let first = try await listCase.call(lister, PageRequest(limit: 100))
        let pages = (first.total + 99) / 100
        let deep = max(0, pages / 2)  // 0-based index of the deep page
        var token = first.next
        let walkStart = clock.now
        for _ in 1..<max(deep, 1) where !token.isEmpty {
            token = try await listCase.call(lister, PageRequest(limit: 100, pageToken: token)).next
        }
        let walk = clock.now - walkStart
        if deep == 0 { token = "" }
        let deepItems = try await listCase.call(lister, PageRequest(limit: 100, pageToken: token)).items
        let deepOffsetItems = try await listCase.call(lister, PageRequest(limit: 100, offset: UInt32(deep * 100))).items
        let variants: [(String, PageRequest)] = [
            ("first", PageRequest(limit: 100)),
            ("deep token", PageRequest(limit: 100, pageToken: token)),
            ("deep offset", PageRequest(limit: 100, offset: UInt32(deep * 100))),
        ]
        for (variant, page) in variants {
            var result = percentiles(try await timed(page, listCase))
            result["scenario"] = "list \(listCase.name) \(variant)"
            result["matches"] = first.total
            result["page_index"] = variant == "first" ? 0 : deep
            result["items"] = variant == "first" ? first.items : variant == "deep token" ? deepItems : deepOffsetItems
            if variant == "deep token" {
                result["walk_pages"] = max(deep - 1, 0)
                result["walk_us_per_page"] = deep > 1 ? microseconds(walk) / Double(deep - 1) : 0
            }
            json(result)
        }
    }
    json(["scenario": "after", "server_rss_kib": procSample(pid).rssKiB])
    await lister.close()

case "mixed":
    let port = Int(option("--port"))!
    let tls = try BenchTLS(caFile: option("--tls-ca"), certificateFile: option("--tls-cert"), keyFile: option("--tls-key"))
    let pid = Int(option("--server-pids", "0"))!
    let callers = Int(option("--callers", "64"))!
    let warmup = Double(option("--warmup", "3"))!
    let duration = Double(option("--duration", "6"))!
    let seed = UInt64(option("--seed", "14"))!
    let tenants = option("--tenants").split(separator: ",").map(String.init)
    let certs = option("--tenant-certs")
    let services = try shuffledIDs(option("--ids"), seed: seed)
    var readers: [BenchConnection] = []
    for _ in 0..<callers {
        readers.append(try await BenchConnection.connect(host: "127.0.0.1", port: port, tls: tls, serverHostname: "localhost"))
    }
    // Caller w writes as tenant w % tenants.count, on its own connection.
    var writers: [WriteTarget] = []
    for w in 0..<callers {
        let tenantID = tenants[w % tenants.count]
        let tenantTLS = try BenchTLS(caFile: option("--tls-ca"), certificateFile: "\(certs)/\(tenantID).crt",
                                     keyFile: "\(certs)/\(tenantID).key")
        let tenant = try await BenchConnection.connect(host: "127.0.0.1", port: port, tls: tenantTLS, serverHostname: "localhost")
        writers.append(try await prepareWrites(ops: readers[0], tenant: tenant, tenantID: tenantID))
    }
    // The same callers and read mix without writes first, then with them, in one process and one server.
    var readOnly = await runMix(name: "read-only", readers: readers, targets: writers, writes: false, services: services, seed: seed,
                                warmup: warmup, duration: duration, pid: pid)
    readOnly["distinct_services"] = services.count
    json(readOnly)
    let writesOnly = CommandLine.arguments.contains("--writes-only")
    let mixed = await runMix(name: writesOnly ? "writes-only" : "mixed", readers: readers, targets: writers, writes: true,
                             writesOnly: writesOnly, services: services, seed: seed, warmup: warmup, duration: duration, pid: pid)
    json(mixed)
    for c in readers { await c.close() }
    for t in writers { await t.tenant.close() }

case "cold":
    let port = Int(option("--port"))!
    let tls = try BenchTLS(caFile: option("--tls-ca"), certificateFile: option("--tls-cert"), keyFile: option("--tls-key"))
    let callers = Int(option("--callers", "64"))!
    let ids = try shuffledIDs(option("--ids"), seed: UInt64(option("--seed", "14"))!)
    let services = Array(ids.prefix(Int(option("--services", "100000"))!))
    let timeout = Duration.seconds(30)
    var connections: [BenchConnection] = []
    for _ in 0..<callers {
        connections.append(try await BenchConnection.connect(host: "127.0.0.1", port: port, tls: tls, serverHostname: "localhost"))
    }
    let pool = connections
    // Each service once, handed out in order to whichever caller is free.
    let next = NextIndex()
    let start = clock.now
    let (latencies, errors) = await withTaskGroup(of: ([Double], Int).self) { group in
        for w in 0..<callers {
            group.addTask(executorPreference: pool[w].taskExecutor) {
                var latencies: [Double] = []
                var errors = 0
                while true {
                    let k = next.value.add(1, ordering: .relaxed).oldValue
                    guard k < services.count else { break }
                    let t0 = clock.now
                    do {
                        _ = try await pool[w].unary(EndpointServicesAPI.getEndpointService, GetEndpointServiceRequest(id: services[k]),
                                                    region: region, timeout: timeout)
                        latencies.append(microseconds(clock.now - t0))
                    } catch {
                        errors += 1
                    }
                }
                return (latencies, errors)
            }
        }
        var all: [Double] = []
        var errors = 0
        for await (l, e) in group {
            all += l
            errors += e
        }
        return (all, errors)
    }
    let seconds = microseconds(clock.now - start) / 1e6
    var cold = percentiles(latencies)
    cold["scenario"] = "cold"
    cold["errors"] = errors
    cold["services"] = services.count
    cold["callers"] = callers
    cold["total_s"] = seconds
    cold["rps"] = Double(services.count) / seconds
    json(cold)
    for c in pool { await c.close() }

default:
    FileHandle.standardError.write(Data("usage: vpcep-scale seed|measure|mixed|cold ... (see the top of main.swift)\n".utf8))
    exit(2)
}
