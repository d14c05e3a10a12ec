import NIOCore
import Synchronization
import VPCEPRPC

/// Choosing the server: one connection at a time, to the preferred server; when it fails, the
/// next one round robin, passing over the servers that failed within `failoverBackoff` unless
/// all did (docs/PROTOCOL.md §9).
extension VPCEPClient {
    /// The open connection, or a new one when there is none or it stopped accepting calls.
    /// Concurrent callers share one connection attempt; each waits for it no longer than its own
    /// deadline.
    func currentConnection(before deadline: ContinuousClock.Instant?, requestID: String) async throws(VPCEPError) -> Connected {
        let servers = configuration.servers.count
        let failoverBackoff = configuration.failoverBackoff
        let next = state.withLock { state -> ConnectionChoice in
            if let established = state.established {
                if established.connection.isAcceptingCalls { return .ready(established) }
                // GOAWAY or closed: its calls in flight finish or fail there; new ones go to the next
                // server. A GOAWAY is an orderly goodbye (a restart, an idle connection), not a failure
                // to pass the server over for; a closed connection is.
                state.established = nil
                if established.connection.failure?.reason != .serverGoingAway {
                    state.failedAt[established.index] = .now
                }
                state.preferred = (established.index + 1) % servers
            }
            if let connecting = state.connecting { return .wait(connecting) }
            let order = Self.order(servers: servers, from: state.preferred, failedAt: state.failedAt, backoff: failoverBackoff)
            let task = Task { try await self.connect(order: order, deadline: deadline) }
            state.connecting = task
            return .wait(task)
        }
        switch next {
        case .ready(let established):
            return established
        case .wait(let task):
            return try await Self.value(of: task, before: deadline, orElse: deadlineExceeded(requestID))
        }
    }

    /// A call on `connected` failed with UNAVAILABLE: with several servers, the next call goes to
    /// another one. The connection stays open for the calls still in flight on it.
    func callFailed(on connected: Connected, _ error: VPCEPError) {
        let servers = configuration.servers.count
        guard servers > 1 else { return }
        state.withLock { state in
            guard let established = state.established, established.connection === connected.connection else { return }
            state.established = nil
            if error.reason != .serverGoingAway { state.failedAt[connected.index] = .now }
            state.preferred = (connected.index + 1) % servers
            state.retired.removeAll { !$0.isActive }
            if connected.connection.isActive { state.retired.append(connected.connection) }
        }
    }

    /// The servers to try, round robin from `preferred`: first those that have not failed within
    /// `backoff`, then, only when every server has, all of them.
    static func order(servers: Int, from preferred: Int, failedAt: [Int: ContinuousClock.Instant], backoff: Duration,
                      now: ContinuousClock.Instant = .now) -> [Int] {
        let all = (0..<servers).map { (preferred + $0) % servers }
        let healthy = all.filter { index in failedAt[index].map { now - $0 >= backoff } ?? true }
        return healthy.isEmpty ? all : healthy
    }

    /// Tries the servers of `order` one after the other until one accepts a connection; records the
    /// outcome. Each attempt gets the connect timeout, or what is left of the deadline if less.
    private func connect(order: [Int], deadline: ContinuousClock.Instant?) async throws(VPCEPError) -> Connected {
        let configuration = configuration
        var failures: [(ServerAddress, VPCEPError)] = []
        for index in order {
            let server = configuration.servers[index]
            var timeout = configuration.connectTimeout
            var cutByDeadline = false
            if let deadline {
                let left = deadline - ContinuousClock.now
                if left <= .zero { break }
                cutByDeadline = left < timeout
                timeout = min(timeout, left)
            }
            do throws(VPCEPError) {
                let tlsContext = tlsContext
                let serverHostname = configuration.serverHostname
                let connectTimeout = TimeAmount.nanoseconds(Int64(max(1, (timeout / .nanoseconds(1)).rounded(.up))))
                let attempt = Task {
                    try await RPCClientConnection.connect(
                        host: server.host, port: server.port, tlsContext: tlsContext, serverHostname: serverHostname,
                        connectTimeout: connectTimeout
                    )
                }
                // The connect timeout covers the TCP connection only; a server that accepts and then
                // says nothing must not hold the whole list up.
                let connection: RPCClientConnection
                do {
                    // UNAVAILABLE even when the deadline of the call that started this attempt cut it
                    // short: other calls with later deadlines share the attempt and may try again.
                    let timedOut = VPCEPError(
                        code: .unavailable, reason: .connectionFailed,
                        message: "cannot connect to \(server): no TLS handshake within \(timeout)"
                            + (cutByDeadline ? " (what was left of the deadline)" : ""))
                    connection = try await Self.value(of: attempt, before: .now + timeout, orElse: timedOut)
                } catch {
                    Task { if let late = try? await attempt.value { await late.close() } }
                    throw error
                }
                let connected = Connected(connection: connection, index: index)
                state.withLock { state in
                    state.established = connected
                    state.connecting = nil
                    state.preferred = index
                    state.failedAt[index] = nil
                }
                return connected
            } catch {
                failures.append((server, error))
                state.withLock { state in
                    state.failedAt[index] = .now
                    state.preferred = (index + 1) % configuration.servers.count
                }
            }
        }
        state.withLock { $0.connecting = nil }
        throw Self.combined(failures, servers: configuration.servers)
    }

    /// The failure to report when no server could be reached: with one server its own error, with
    /// several the last one's code and reason and every server's message, each naming its server.
    static func combined(_ failures: [(ServerAddress, VPCEPError)], servers: [ServerAddress]) -> VPCEPError {
        guard var last = failures.last?.1 else {
            return VPCEPError(code: .deadlineExceeded, reason: .deadlineExceeded,
                              message: "no time left to connect to \(servers.map(\.description).joined(separator: ", "))")
        }
        guard servers.count > 1 else { return last }
        let each = failures.map { server, error in
            error.message.contains("\(server.host):\(server.port)") ? error.message : "connecting to \(server): \(error.message)"
        }
        last.message = "no server accepted a connection: " + each.joined(separator: "; ")
        return last
    }

    /// The task's value, or `timeout` once `deadline` has passed, or CANCELLED when the waiting
    /// task is cancelled; the task itself (shared by other callers) runs on.
    private static func value<Value: Sendable>(
        of task: Task<Value, any Error>, before deadline: ContinuousClock.Instant?, orElse timeout: VPCEPError
    ) async throws(VPCEPError) -> Value {
        let outcome = ResumeOnce<Result<Value, VPCEPError>>()
        Task {
            switch await task.result {
            case .success(let value): outcome.resume(.success(value))
            case .failure(let error as VPCEPError): outcome.resume(.failure(error))
            case .failure(let error):
                outcome.resume(.failure(VPCEPError(code: .unavailable, reason: .connectionFailed, message: "\(error)")))
            }
        }
        let timer = deadline.map { deadline in
            Task {
                try await Task.sleep(until: deadline, clock: .continuous)
                outcome.resume(.failure(timeout))
            }
        }
        defer { timer?.cancel() }
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { outcome.install($0) }
        } onCancel: {
            outcome.resume(.failure(VPCEPError(code: .cancelled, reason: .cancelled, message: "the call was cancelled by the caller")))
        }
        if case .failure = result, let deadline, ContinuousClock.now >= deadline {
            // The attempt gave up at this caller's deadline (a timer racing this one's): for this
            // caller that is the deadline, whichever timer fired first.
            throw timeout
        }
        return try result.get()
    }
}

/// What a call connects with: the open connection, or the attempt to wait for.
private enum ConnectionChoice {
    case ready(VPCEPClient.Connected)
    case wait(Task<VPCEPClient.Connected, any Error>)
}

/// A continuation resumed by whichever of several racers comes first, even before it is installed.
final class ResumeOnce<Value: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Value, Never>?
        var early: Value?
        var resumed = false
    }

    private let state = Mutex(State())

    func install(_ continuation: CheckedContinuation<Value, Never>) {
        state.withLock { state in
            if let early = state.early, !state.resumed {
                state.resumed = true
                continuation.resume(returning: early)
            } else {
                state.continuation = continuation
            }
        }
    }

    func resume(_ value: Value) {
        state.withLock { state in
            guard !state.resumed else { return }
            if let continuation = state.continuation {
                state.resumed = true
                state.continuation = nil
                continuation.resume(returning: value)
            } else if state.early == nil {
                state.early = value
            }
        }
    }
}
