import Foundation
import VPCEPClient

/// `vpcep endpoint wait`: follows the endpoint's changes through a Watch (a snapshot of that one
/// endpoint, then its events) rather than polling, so it returns as soon as the change commits.
enum EndpointWait {
    private static let finals: Set<EndpointStatus> = [.accepted, .rejected, .failed]

    private enum Outcome: Sendable {
        case reached(Endpoint)
        case failed(VPCEPError)
        /// Cancelled by the timer; the last status seen, if any.
        case timedOut(EndpointStatus?)
    }

    /// The endpoint once it has `target`; fails FAILED_PRECONDITION / `STATUS_NOT_REACHED` when it
    /// settles in another final status, DEADLINE_EXCEEDED / `WAIT_TIMED_OUT` after `seconds`, and
    /// as `GetEndpoint` does when there is no such endpoint.
    static func until(
        _ target: EndpointStatus, id: String, seconds: Int, client: VPCEPClient
    ) async throws(VPCEPError) -> Endpoint {
        let watching = Task { await follow(id: id, target: target, client: client) }
        let timer = Task {
            guard (try? await Task.sleep(for: .seconds(seconds))) != nil else { return }
            watching.cancel()
        }
        defer { timer.cancel() }
        switch await withTaskCancellationHandler(operation: { await watching.value }, onCancel: { watching.cancel() }) {
        case .reached(let endpoint):
            return endpoint
        case .failed(let error):
            throw error
        case .timedOut(let last):
            let shown = last.map { " is still \($0.jsonName)" } ?? " did not show up"
            throw VPCEPError(code: .deadlineExceeded, reason: .waitTimedOut, message: "endpoint \(id)\(shown) after \(seconds) s")
        }
    }

    private static func follow(id: String, target: EndpointStatus, client: VPCEPClient) async -> Outcome {
        let started = ContinuousClock.now
        let request = WatchRequest(kinds: [.endpoint], resourceId: id, start: .snapshot)
        let options = WatchOptions(resyncOnCompaction: true, maxConsecutiveFailures: client.configuration.retryPolicy.maxAttempts)
        var last: Endpoint?
        var snapshotDone = false
        do throws(VPCEPError) {
            for try await change in client.watchChanges(request, options: options) {
                switch change {
                case .snapshot(let entry), .event(let entry):
                    guard entry.resourceId == id else { continue }
                    if entry.type == .deleted {
                        // Gone: fail exactly as a look-up of it does.
                        _ = try await client.getEndpoint(GetEndpointRequest(id: id))
                        continue
                    }
                    guard let endpoint = entry.endpoint else { continue }
                    last = endpoint
                case .bookmark:
                    guard !snapshotDone else { continue }
                    snapshotDone = true
                    // No snapshot item: the endpoint does not exist for the caller; say so as a look-up does.
                    if last == nil { last = try await client.getEndpoint(GetEndpointRequest(id: id)) }
                case .resync:
                    last = nil
                    snapshotDone = false
                    continue
                }
                guard snapshotDone, let endpoint = last else { continue }
                if endpoint.status == target { return .reached(endpoint) }
                let shown = endpoint.status.jsonName
                if finals.contains(endpoint.status) {
                    return .failed(VPCEPError(
                        code: .failedPrecondition, reason: .statusNotReached,
                        message: "endpoint \(id) is \(shown), which will not become \(target.jsonName) by itself"))
                }
                let elapsed = (ContinuousClock.now - started).components.seconds
                Terminal.progress("waiting for \(id) to be \(target.jsonName): \(shown), \(elapsed) s")
            }
            return .failed(VPCEPError(code: .unavailable, reason: .connectionClosed, message: "the watch ended"))
        } catch {
            if error.code == .cancelled && Task.isCancelled { return .timedOut(last?.status) }
            return .failed(error)
        }
    }
}
