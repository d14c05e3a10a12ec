// Issue 14's scale scenario (Benchmarks/scale.sh, scale.py). Its own executable, without gRPC, so
// that it builds with the main package alone. Each subcommand prints JSON on stdout.
//
//   vpcep-scale seed    --data-dir D --records N [--tenants 1000 --seed 14 --workers 128 --region R
//                       --operator ops] --ids-out FILE       -> the mix seeded and its time; service ids to FILE
//   vpcep-scale measure --port P --ids FILE --tls-ca CA --tls-cert CRT --tls-key KEY (an operator's)
//                       [--callers 64 --warmup 3 --duration 6 --list-calls 200 --server-pids PID]
//                       -> one JSON line per scenario: get, then each list's first and deep pages
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

switch CommandLine.arguments.dropFirst().first {
case "seed":
    let plan = ScaleSeedPlan(
        records: Int(option("--records"))!, tenants: Int(option("--tenants", "1000"))!,
        seed: UInt64(option("--seed", "14"))!, region: region, operatorName: option("--operator", "ops"),
        workers: Int(option("--workers", "128"))!)
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

default:
    FileHandle.standardError.write(Data("usage: vpcep-scale seed|measure ... (see the top of main.swift)\n".utf8))
    exit(2)
}
