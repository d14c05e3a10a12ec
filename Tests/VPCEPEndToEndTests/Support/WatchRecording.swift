import Foundation
import Synchronization
import Testing
import VPCEPClient
import VPCEPTestSupport

/// One event as watchers are compared: where it is in the log and what it did to which revision.
struct Trail: Hashable, Sendable, CustomStringConvertible {
    var seq: UInt64
    var type: ChangeType
    var resourceID: String
    var revision: UInt64

    init(_ entry: HistoryEntry) {
        seq = entry.seq
        type = entry.type
        resourceID = entry.resourceId
        revision = entry.revisionAfter
    }

    var description: String { "\(seq) \(type.shortName ?? "?") \(resourceID) r\(revision)" }
}

extension SeededGenerator {
    /// VPCEP_TEST_SEED replays a failure; otherwise a new seed, printed so that it can be.
    static func seed(for test: String) -> UInt64 {
        let seed = ProcessInfo.processInfo.environment["VPCEP_TEST_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 1...UInt64.max)
        print("\(test): seed \(seed) (replay with VPCEP_TEST_SEED=\(seed))")
        return seed
    }
}

/// A client of `identity` to any port on 127.0.0.1 (a proxy's, or a server's that restarts).
func makeClient(_ identity: String, port: Int, timeout: Duration = .seconds(20)) throws -> VPCEPClient {
    let certificates = TestCertificates.shared
    var configuration = VPCEPClient.Configuration(
        host: "127.0.0.1", port: port, region: ServerProcess.regions[0], caFile: certificates.ca,
        certificateFile: certificates.certificate(identity), keyFile: certificates.key(identity),
        serverHostname: "localhost", defaultTimeout: timeout)
    // Reconnect soon after a cut: the tests cut often, and a watcher backs off between attempts.
    configuration.retryPolicy.maxBackoff = .milliseconds(200)
    configuration.failoverBackoff = .zero
    return try VPCEPClient(configuration: configuration)
}

/// A `watchChanges` from the start of the log, run in the background, recording every event it yields.
final class RecordingWatcher: Sendable {
    private struct State {
        var events: [Trail] = []
        var position: UInt64 = 0
        var failure: VPCEPError?
        var ended = false
    }

    private final class Recorded: Sendable {
        let state = Mutex(State())
    }

    private let recorded = Recorded()
    private let task: Task<Void, Never>

    init(_ client: VPCEPClient, request: WatchRequest = WatchRequest(start: .afterSeq, afterSeq: 0)) {
        let recorded = recorded
        task = Task {
            do throws(VPCEPError) {
                for try await change in client.watchChanges(request) {
                    recorded.state.withLock { state in
                        switch change {
                        case .event(let entry):
                            state.events.append(Trail(entry))
                            state.position = entry.seq
                        case .bookmark(let seq):
                            state.position = seq
                        case .snapshot, .resync:
                            break
                        }
                    }
                }
            } catch {
                recorded.state.withLock { $0.failure = error }
            }
            recorded.state.withLock { $0.ended = true }
        }
    }

    var events: [Trail] { recorded.state.withLock { $0.events } }

    /// Waits until the watcher has passed `seq` (an event or a bookmark), and returns its events;
    /// throws when the watch ended before.
    func events(through seq: UInt64) async throws -> [Trail] {
        while true {
            let (position, ended, failure, events) = recorded.state.withLock { ($0.position, $0.ended, $0.failure, $0.events) }
            if position >= seq { return events }
            if ended { throw WatcherEnded(failure: failure, events: events) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    func stop() async {
        task.cancel()
        await task.value
    }
}

struct WatcherEnded: Error, CustomStringConvertible {
    var failure: VPCEPError?
    var events: [Trail]
    var description: String { "the watch ended after \(events.count) events: \(failure.map { "\($0)" } ?? "OK")" }
}

extension VPCEPClient {
    /// Every entry of the change log this caller may see, oldest first.
    func wholeHistory() async throws -> [HistoryEntry] {
        var entries: [HistoryEntry] = []
        while true {
            let page = try await listHistory(ListHistoryRequest(
                page: PageRequest(limit: 1000, offset: UInt32(entries.count), sortDir: "asc")))
            entries += page.items
            if page.items.count < 1000 { return entries }
        }
    }

    /// The newest sequence of the change log: a watch started "now" begins with a bookmark of it.
    func logHead() async throws -> UInt64 {
        let now = Task { () async throws -> UInt64 in
            for try await message in watch(WatchRequest()) where message.kind == .bookmark { return message.seq }
            throw VPCEPError(code: .unavailable, reason: .connectionClosed, message: "the watch ended before its bookmark")
        }
        defer { now.cancel() }
        return try await now.value
    }
}

/// Checks that `events` is `expected` exactly, and names the first difference when it is not.
func expectSameEvents(
    _ events: [Trail], _ expected: [Trail], _ who: String, seed: UInt64? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    guard events != expected else { return }
    let first = zip(events, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
        ?? min(events.count, expected.count)
    Issue.record(
        """
        \(who) saw \(events.count) events, the log has \(expected.count)\(seed.map { " (seed \($0))" } ?? ""); \
        first difference at index \(first): \(first < events.count ? "\(events[first])" : "nothing") \
        instead of \(first < expected.count ? "\(expected[first])" : "nothing")
        """, sourceLocation: sourceLocation)
}

/// Changes of every kind a provider's watch sees, chosen by a seeded generator: VPC creates and
/// deletes, service updates, consumers' connection requests and the provider's decisions on them.
struct Workload: Sendable {
    let provider: VPCEPClient
    let consumer: VPCEPClient
    let service: EndpointService
    let consumerNetwork: Network
    private var vpcs: [String] = []
    private var pending: [String] = []

    /// The provider's service with the consumer on its allow-list; connections need approval.
    static func make(provider: VPCEPClient, consumer: VPCEPClient) async throws -> Workload {
        let network = try await Network.make(provider)
        let service = try await provider.createEndpointService(network.serviceRequest())
        _ = try await provider.addPermissions(AddPermissionsRequest(
            serviceId: service.id, entries: [PermissionEntry(permission: "iam:domain::bob")]))
        let consumerNetwork = try await Network.make(consumer)
        return Workload(provider: provider, consumer: consumer, service: service, consumerNetwork: consumerNetwork)
    }

    private init(provider: VPCEPClient, consumer: VPCEPClient, service: EndpointService, consumerNetwork: Network) {
        self.provider = provider
        self.consumer = consumer
        self.service = service
        self.consumerNetwork = consumerNetwork
    }

    /// One change. A later step builds only on calls that succeeded, and a resource is taken off the
    /// lists before the call that changes it: a call that failed may or may not have been made.
    mutating func step(_ index: Int, using random: inout SeededGenerator) async throws {
        switch Int.random(in: 0..<5, using: &random) {
        case 0 where !vpcs.isEmpty:
            let id = vpcs.removeFirst()
            _ = try await provider.deleteVpc(DeleteResourceRequest(id: id))
        case 1:
            _ = try await provider.updateEndpointService(UpdateEndpointServiceRequest(
                id: service.id, description: "step \(index)"))
        case 2 where pending.count < 10:
            let endpoint = try await consumer.createEndpoint(CreateEndpointRequest(
                serviceId: service.id, vpcId: consumerNetwork.vpc.id, subnetId: consumerNetwork.subnet.id))
            pending.append(endpoint.id)
        case 3 where !pending.isEmpty:
            let id = pending.removeFirst()
            let decision = DecideConnectionsRequest(serviceId: service.id, endpointIds: [id])
            if Bool.random(using: &random) {
                _ = try await provider.acceptConnections(decision)
            } else {
                _ = try await provider.rejectConnections(decision)
            }
        default:
            let vpc = try await provider.createVpc(CreateVpcRequest(name: "w\(index)", cidr: "10.\(index % 200 + 50).0.0/16"))
            vpcs.append(vpc.id)
        }
    }
}
