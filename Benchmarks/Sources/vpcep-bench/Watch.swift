// `vpcep-bench watch`: issue 11's watch scenario, the same for vpcep and for etcd (Benchmarks/watch.sh).
//
//   1. write throughput without watchers: `callers` closed-loop writers for `tputDuration` s;
//   2. `watchers` watches over `watchConnections` connections, each seeing every write below (the
//      `all` layout) or the writes to one resource of its own (the `spread` layout);
//   3. `rate` writes/s, paced, for `duration` s: each write carries its number and the monotonic
//      time it was sent, and every watcher computes, on delivery, the latency against the same
//      clock (one process writes and watches); then lost and duplicate deliveries;
//   4. write throughput again with writes the watchers do not see (vpcep: another tenant's; etcd:
//      keys outside the prefix), the cost of watchers merely being there (`all` layout only); then
//      with the watchers following the writes.
//
// `all`: a write is one durable change that every watcher sees exactly once: vpcep, a `CreateVpc`
// whose name is the payload (the watchers follow `kinds = [VPC]` as its tenant); etcd, a `Put` of
// the key `/bench/<payload>` (the watchers follow the prefix `/bench/`).
// `spread`: watcher i follows resource i alone, made before the clock starts, and write n updates
// resource n mod `watchers`, so each write is delivered to exactly one watcher: vpcep, an
// `UpdateEndpointService` of service i whose description is the payload (watch `resource_id` = that
// service); etcd, a `Put` of the key `/spread/<i>` (watch that one key).
import Foundation
import Synchronization

/// Who sees a write.
enum WatchLayout: String, Sendable {
    /// Every watcher follows every write: a write is delivered `watchers` times.
    case all
    /// Watcher i follows resource i alone; write n updates resource n mod `watchers`: one delivery.
    case spread
}

/// What one write does.
enum WatchWrite: Sendable {
    /// A new resource that every watcher of the `all` layout sees.
    case seen
    /// A new resource that no watcher sees (another tenant's, another prefix).
    case unseen
    /// An update of spread resource n, which only watcher n sees.
    case update(Int)
}

struct WatchScenarioOptions: Sendable {
    var layout = WatchLayout.all
    var watchers = 1000
    var watchConnections = 40
    var rate = 500
    var duration = 20.0
    var callers = 64
    var writeConnections = 8
    var tputWarmup = 2.0
    var tputDuration = 8.0
    /// How long deliveries may still arrive after the last paced write before the missing count as lost.
    var grace = 5.0
}

/// What the scenario needs of a system under test.
protocol WatchTarget: Sendable {
    var name: String { get }
    /// Opens the connections that writers use, `count` of them.
    func openWriters(count: Int) async throws
    /// Makes the `spread` layout's `count` resources (after `openWriters`, before any clock starts).
    func prepareSpread(count: Int) async throws
    /// One durable write carrying `payload` (at most 40 ASCII characters of `[A-Za-z0-9-]`), on
    /// writer connection `connection`.
    func write(connection: Int, payload: String, _ write: WatchWrite) async throws
    /// Runs watch `index` on watch connection `connection` until the task is cancelled: of every
    /// write (`resource` nil, the `all` layout) or of spread resource `resource` alone. Calls
    /// `live()` once the server confirmed the watch, and `deliver` with each event's payload.
    func watch(index: Int, connection: Int, resource: Int?, live: @escaping @Sendable () -> Void,
               deliver: @escaping @Sendable (UnsafeRawBufferPointer) -> Void) async throws
    /// Opens `count` connections for watches.
    func openWatchConnections(count: Int) async throws
    func close() async
}

/// A count shared by tasks.
final class Tally: Sendable {
    private let count = Atomic<Int>(0)

    /// Adds one; returns the new count.
    @discardableResult func add() -> Int { count.add(1, ordering: .relaxed).newValue }
    var value: Int { count.load(ordering: .relaxed) }
}

/// The monotonic clock shared by writers and watchers, in nanoseconds.
@inline(__always) func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// One watcher's record. Only its own watch task touches it while the watch runs; it is read
/// after that task ended (hence unchecked).
final class WatcherRecord: @unchecked Sendable {
    let writes: Int
    /// First deliveries of paced writes, over all watchers.
    let delivered: Tally
    /// In the `spread` layout, the watcher's own writes are those whose number is `index` modulo `of`.
    let own: (index: Int, of: Int)?
    var seen: [UInt64]
    var latenciesMicros: [UInt32] = []
    var duplicates = 0
    var otherEvents = 0
    var malformed = 0
    /// Writes to another watcher's resource (a filter that let them through).
    var foreign = 0

    init(writes: Int, delivered: Tally, own: (index: Int, of: Int)? = nil) {
        self.writes = writes
        self.delivered = delivered
        self.own = own
        seen = [UInt64](repeating: 0, count: (writes + 63) / 64)
        latenciesMicros.reserveCapacity(own.map { (writes + $0.of - 1) / $0.of } ?? writes)
    }

    /// A payload is `w<number>-<sent ns>` for a paced write, `t<number>` for a throughput write.
    func deliver(_ payload: UnsafeRawBufferPointer, now: UInt64) {
        guard payload.first == UInt8(ascii: "w") else { otherEvents += 1; return }
        var number = 0, sent: UInt64 = 0, i = 1
        while i < payload.count, payload[i] != UInt8(ascii: "-") { number = number * 10 + Int(payload[i] &- 48); i += 1 }
        i += 1
        while i < payload.count { sent = sent * 10 + UInt64(payload[i] &- 48); i += 1 }
        guard number < writes, sent > 0 else { malformed += 1; return }
        if let own, number % own.of != own.index { foreign += 1; return }
        let (word, bit) = (number / 64, UInt64(1) << UInt64(number % 64))
        if seen[word] & bit != 0 { duplicates += 1; return }
        seen[word] |= bit
        latenciesMicros.append(UInt32(clamping: (now &- sent) / 1000))
        delivered.add()
    }
}

typealias Throughput = (perSecond: Double, errors: Int, p50: Double, p99: Double)

/// Closed-loop writes by `callers` workers for `warmup + duration` s; writes/s in the window.
func writeThroughput(_ target: any WatchTarget, options: WatchScenarioOptions, tag: String,
                     counter: Counter, unseen: Bool = false) async -> Throughput {
    let start = monotonicNanoseconds()
    let measureStart = start + UInt64(options.tputWarmup * 1e9)
    let measureEnd = measureStart + UInt64(options.tputDuration * 1e9)
    let results = await withTaskGroup(of: ([UInt32], Int).self) { group in
        for worker in 0..<options.callers {
            group.addTask {
                var latencies: [UInt32] = []
                var errors = 0
                while true {
                    let t0 = monotonicNanoseconds()
                    if t0 >= measureEnd { break }
                    var failed = false
                    let n = counter.next()
                    let write: WatchWrite = options.layout == .spread ? .update(n % options.watchers) : unseen ? .unseen : .seen
                    do { try await target.write(connection: worker % options.writeConnections, payload: "\(tag)\(n)", write) } catch {
                        failed = true
                        if errors == 0 { logError("\(target.name) write: \(error)") }
                    }
                    let t1 = monotonicNanoseconds()
                    if t0 >= measureStart && t1 <= measureEnd {
                        if failed { errors += 1 } else { latencies.append(UInt32(clamping: (t1 - t0) / 1000)) }
                    }
                    if failed { try? await Task.sleep(for: .milliseconds(1)) }
                }
                return (latencies, errors)
            }
        }
        var all: [UInt32] = []
        var errors = 0
        for await (l, e) in group { all.append(contentsOf: l); errors += e }
        return (all, errors)
    }
    let sorted = results.0.sorted()
    return (Double(sorted.count) / options.tputDuration, results.1, percentile(sorted, 0.50), percentile(sorted, 0.99))
}

func percentile(_ sorted: [UInt32], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return Double(sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)])
}

/// Where the run is, for a profiler started from outside (stderr).
func logPhase(_ phase: String) {
    logError("phase: \(phase)")
}

func logError(_ message: String) {
    FileHandle.standardError.write(Data("vpcep-bench watch: \(message)\n".utf8))
}

func runWatchScenario(_ target: any WatchTarget, options: WatchScenarioOptions) async throws -> [String: Any] {
    try await target.openWriters(count: options.writeConnections)
    let spread = options.layout == .spread
    let setupStarted = monotonicNanoseconds()
    if spread { try await target.prepareSpread(count: options.watchers) }
    let setupSeconds = Double(monotonicNanoseconds() - setupStarted) / 1e9
    let counter = Counter()

    // 1. Throughput without watchers.
    logPhase("throughput without watchers")
    let without = await writeThroughput(target, options: options, tag: "t", counter: counter)

    // 2. The watches.
    let writes = Int(Double(options.rate) * options.duration)
    try await target.openWatchConnections(count: options.watchConnections)
    let delivered = Tally()
    let records = (0..<options.watchers).map {
        WatcherRecord(writes: writes, delivered: delivered, own: spread ? (index: $0, of: options.watchers) : nil)
    }
    let live = Tally()
    let streamErrors = Tally()
    let openStarted = monotonicNanoseconds()
    let watchTasks = records.enumerated().map { index, record in
        Task {
            do {
                try await target.watch(
                    index: index, connection: index % options.watchConnections, resource: spread ? index : nil,
                    live: { live.add() },
                    deliver: { record.deliver($0, now: monotonicNanoseconds()) })
            } catch where !Task.isCancelled {
                if streamErrors.add() == 1 { logError("\(target.name) watch \(index) ended: \(error)") }
            } catch {}
        }
    }
    while live.value < options.watchers {
        if monotonicNanoseconds() - openStarted > 60_000_000_000 {
            logError("\(target.name): only \(live.value) of \(options.watchers) watches live after 60 s")
            break
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    let openSeconds = Double(monotonicNanoseconds() - openStarted) / 1e9

    // 3. Paced writes: write i goes out at start + i/rate, from writer (i mod pacers), which
    // writes in turn; the payload's time is when it actually went out.
    logPhase("paced writes")
    let pacers = options.writeConnections * 2
    let interval = 1e9 / Double(options.rate)
    let paceStart = monotonicNanoseconds() + 50_000_000
    // A system that cannot take `rate` writes/s gets fewer: the phase ends on time, not on count.
    let paceEnd = paceStart + UInt64(options.duration * 1e9) + 1_000_000_000
    let paced = await withTaskGroup(of: ([UInt32], Int, Int, Int).self) { group in
        for pacer in 0..<pacers {
            group.addTask {
                var latencies: [UInt32] = []
                var errors = 0, late = 0, sentCount = 0
                for number in stride(from: pacer, to: writes, by: pacers) {
                    let due = paceStart + UInt64(Double(number) * interval)
                    let now = monotonicNanoseconds()
                    if now >= paceEnd { break }
                    if now < due { try? await Task.sleep(for: .nanoseconds(Int(due - now))) } else if now > due + 10_000_000 { late += 1 }
                    let sent = monotonicNanoseconds()
                    sentCount += 1
                    do {
                        try await target.write(connection: pacer % options.writeConnections, payload: "w\(number)-\(sent)",
                                               spread ? .update(number % options.watchers) : .seen)
                        latencies.append(UInt32(clamping: (monotonicNanoseconds() - sent) / 1000))
                    } catch {
                        errors += 1
                        if errors == 1 { logError("\(target.name) paced write: \(error)") }
                    }
                }
                return (latencies, errors, late, sentCount)
            }
        }
        var all: [UInt32] = []
        var errors = 0, late = 0, sent = 0
        for await (l, e, lt, n) in group { all.append(contentsOf: l); errors += e; late += lt; sent += n }
        return (all.sorted(), errors, late, sent)
    }
    let pacedSeconds = Double(monotonicNanoseconds() - paceStart) / 1e9
    // A write that failed may still have committed (a timeout): its deliveries count, but not as lost.
    let written = paced.3 - paced.1
    let expected = written * (spread ? 1 : options.watchers)
    // Deliveries still on their way: wait while they keep coming, until `grace` s pass without
    // one (or 30 s in all, to bound the run); what is missing then counts as lost.
    var lastCount = -1, lastProgress = monotonicNanoseconds()
    let drainStarted = lastProgress
    while delivered.value < expected {
        let count = delivered.value, now = monotonicNanoseconds()
        if count != lastCount { lastCount = count; lastProgress = now }
        if now - lastProgress > UInt64(options.grace * 1e9) || now - drainStarted > 30_000_000_000 { break }
        try await Task.sleep(for: .milliseconds(20))
    }
    let drainSeconds = Double(monotonicNanoseconds() - drainStarted) / 1e9
    // Still missing when the throughput phases start; a backlog then weighs on their figures.
    let missingAtDrainEnd = expected - delivered.value

    // 4. Throughput with the watchers following.
    // Unseen first: the watchers are caught up now, and would not be after the seen writes. Not in
    // the `spread` layout, where a write no watcher sees would be a different kind of write.
    logPhase("throughput with watchers")
    let withUnseen: Throughput? =
        if spread { nil } else { await writeThroughput(target, options: options, tag: "u", counter: counter, unseen: true) }
    let with = await writeThroughput(target, options: options, tag: "t", counter: counter)

    for task in watchTasks { task.cancel() }
    for task in watchTasks { await task.value }

    // 5. Throughput without watchers again, the watches ended: the paced writes grew the store since
    // the first measure, and a ratio against that one alone charged the growth to the watchers (with
    // one watcher instead of 1,000 it came out at 0.92-0.94). The ratio is against the mean of both.
    logPhase("throughput without watchers, again")
    let withoutAgain = await writeThroughput(target, options: options, tag: "t", counter: counter)
    await target.close()
    let baseline = (without.perSecond + withoutAgain.perSecond) / 2

    var all: [UInt32] = []
    all.reserveCapacity(expected)
    var duplicates = 0, other = 0, malformed = 0, foreign = 0
    for record in records {
        all.append(contentsOf: record.latenciesMicros)
        duplicates += record.duplicates
        other += record.otherEvents
        malformed += record.malformed
        foreign += record.foreign
    }
    all.sort()
    var result: [String: Any] = [
        "target": target.name, "layout": options.layout.rawValue, "foreign_deliveries": foreign, "setup_s": setupSeconds,
        "watchers": options.watchers, "watch_connections": options.watchConnections,
        "write_connections": options.writeConnections, "callers": options.callers,
        "watches_open_s": openSeconds, "watch_stream_errors": streamErrors.value,
        "paced_writes": written, "drain_s": drainSeconds, "missing_at_drain_end": missingAtDrainEnd, "paced_write_errors": paced.1, "paced_late_10ms": paced.2,
        "paced_rate": Double(written) / pacedSeconds,
        "paced_write_p50_us": percentile(paced.0, 0.50), "paced_write_p99_us": percentile(paced.0, 0.99),
        "deliveries": all.count, "expected_deliveries": expected, "missing_after_drain": expected - all.count,
        "duplicates": duplicates, "malformed": malformed, "throughput_events_seen": other,
        "delivery_p50_us": percentile(all, 0.50), "delivery_p99_us": percentile(all, 0.99),
        "delivery_p999_us": percentile(all, 0.999), "delivery_max_us": Double(all.last ?? 0),
        "tput_without": without.perSecond, "tput_without_errors": without.errors,
        "tput_without_p50_us": without.p50, "tput_without_p99_us": without.p99,
        "tput_with": with.perSecond, "tput_with_errors": with.errors,
        "tput_with_p50_us": with.p50, "tput_with_p99_us": with.p99,
        "tput_without_again": withoutAgain.perSecond, "tput_without_again_errors": withoutAgain.errors,
        "tput_ratio": baseline > 0 ? with.perSecond / baseline : 0,
        "tput_ratio_first": without.perSecond > 0 ? with.perSecond / without.perSecond : 0,
    ]
    if let withUnseen {
        result["tput_unseen"] = withUnseen.perSecond
        result["tput_unseen_errors"] = withUnseen.errors
        result["tput_unseen_p50_us"] = withUnseen.p50
        result["tput_unseen_p99_us"] = withUnseen.p99
        result["tput_unseen_ratio"] = baseline > 0 ? withUnseen.perSecond / baseline : 0
    }
    return result
}
