import Foundation
import Logging
import NIOCore
import Synchronization
import Testing
@testable import VPCEPRPC
import VPCEPProto
import VPCEPWire

/// Test methods over existing message types: `WhoAmIResponse` carries a payload (`id`), a command
/// (`region`) and a count or size (`regions`).
enum TestAPI {
    static let echo = MethodDescriptor<WhoAmIResponse, WhoAmIResponse>(service: "test.Echo", method: "Echo", kind: .unary)
    /// Sleeps until cancelled, recording the cancellation.
    static let hang = MethodDescriptor<WhoAmIResponse, WhoAmIResponse>(service: "test.Echo", method: "Hang", kind: .unary)
    /// Sleeps until `probe.release()`, then answers.
    static let gated = MethodDescriptor<WhoAmIResponse, WhoAmIResponse>(service: "test.Echo", method: "Gated", kind: .unary)
    /// Streams `Int(id)` messages (or forever when `id` is "forever"), each `regions[0]` bytes big.
    static let stream = MethodDescriptor<WhoAmIResponse, WhoAmIResponse>(
        service: "test.Echo", method: "Stream", kind: .serverStreaming)
    /// Streams two messages, then fails with FAILED_PRECONDITION.
    static let failingStream = MethodDescriptor<WhoAmIResponse, WhoAmIResponse>(
        service: "test.Echo", method: "FailingStream", kind: .serverStreaming)

    /// Sends its request once; on `probe.release()` gives up on that send (cancels it, recorded as a
    /// cancellation once the send has ended) and ends with OK.
    static let abandonedSend = MethodDescriptor<WhoAmIResponse, WhoAmIResponse>(
        service: "test.Echo", method: "AbandonedSend", kind: .serverStreaming)

    /// A detached stream (`DetachedServerStream`): a task of the handler's sends `Int(id)` messages and
    /// ends; then the stream ends with OK when `region` is "ok", FAILED_PRECONDITION when "fail", and
    /// otherwise stays open with no task until the call ends, which its owner hears (`probe.cancelled()`).
    /// The owner (a `DetachedOwner`, which holds the stream) counts in `probe.released` once freed.
    static let detached = MethodDescriptor<WhoAmIResponse, WhoAmIResponse>(
        service: "test.Echo", method: "Detached", kind: .serverStreaming)

    /// Answers with its context's deadline (`id`: uptime nanoseconds, or "none").
    static let deadline = MethodDescriptor<WhoAmIResponse, WhoAmIResponse>(service: "test.Echo", method: "Deadline", kind: .unary)

    static func router(_ probe: Probe) -> RPCRouter {
        var router = RPCRouter()
        router.register(deadline) { _, context in
            WhoAmIResponse(kind: .tenant, id: context.deadline.map { "\($0.uptimeNanoseconds)" } ?? "none", region: "", regions: [])
        }
        router.register(echo) { request, context in
            var response = request
            response.region = context.region
            response.regions = [context.peer.description, context.requestID]
            return response
        }
        router.register(hang) { _, _ in
            probe.started()
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                probe.cancelled()
                throw error
            }
            return WhoAmIResponse()
        }
        router.register(gated) { request, _ in
            probe.started()
            await probe.waitForRelease()
            return request
        }
        router.registerServerStreaming(stream) { request, _, writer in
            probe.started()
            let size = Int(request.regions.first ?? "") ?? 10
            var message = WhoAmIResponse()
            message.id = String(repeating: "x", count: size)
            do {
                var index = 0
                while request.id == "forever" || index < Int(request.id) ?? 0 {
                    message.region = "\(index)"
                    try await writer.send(message)
                    index += 1
                }
            } catch {
                probe.cancelled()
                throw error
            }
        }
        router.registerServerStreaming(abandonedSend) { request, _, writer in
            probe.started()
            let send = Task { try await writer.send(request) }
            await probe.waitForRelease()
            send.cancel()
            if case .failure = await send.result { probe.cancelled() }
        }
        router.registerDetachedStreaming(detached) { request, _, stream in
            probe.started()
            let owner = DetachedOwner(stream: stream, probe: probe)
            // The owner is kept only by the stream's cancellation action: a cycle the call's end breaks.
            stream.onCancel {
                probe.cancelled()
                // After the call ended: a no-op.
                owner.stream.finish(throwing: nil)
            }
            Task {
                for index in 0..<(Int(request.id) ?? 0) {
                    try await stream.send(serialized: encoded(WhoAmIResponse(kind: .tenant, id: "\(index)", region: "", regions: [])))
                }
                switch request.region {
                case "ok": stream.finish(throwing: nil)
                case "fail":
                    stream.finish(throwing: VPCEPError(code: .failedPrecondition, reason: .init(rawValue: "TEST_FAILURE"),
                                                       message: "failed on purpose"))
                default: break
                }
            }
        }
        router.registerServerStreaming(failingStream) { _, _, writer in
            try await writer.send(WhoAmIResponse(kind: .tenant, id: "one", region: "", regions: []))
            try await writer.send(WhoAmIResponse(kind: .tenant, id: "two", region: "", regions: []))
            throw VPCEPError(code: .failedPrecondition, reason: .init(rawValue: "TEST_FAILURE"), message: "failed on purpose")
        }
        return router
    }
}

/// The owner of a detached test stream; counts its release.
final class DetachedOwner: Sendable {
    let stream: DetachedServerStream<WhoAmIResponse>
    let probe: Probe

    init(stream: DetachedServerStream<WhoAmIResponse>, probe: Probe) {
        self.stream = stream
        self.probe = probe
    }

    deinit { probe.releasedOwner() }
}

/// What the test handlers saw, with waits that end on an event rather than after a time.
final class Probe: Sendable {
    private struct State {
        var started = 0
        var cancelled = 0
        var releasedOwners = 0
        var released = false
        var releaseWaiters: [CheckedContinuation<Void, Never>] = []
        var waiters: [(condition: @Sendable (Int, Int) -> Bool, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    var startedCount: Int { state.withLock { $0.started } }
    var cancelledCount: Int { state.withLock { $0.cancelled } }

    var releasedOwnerCount: Int { state.withLock { $0.releasedOwners } }

    func started() { update { $0.started += 1 } }
    func cancelled() { update { $0.cancelled += 1 } }
    func releasedOwner() { state.withLock { $0.releasedOwners += 1 } }

    private func update(_ change: (inout State) -> Void) {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            change(&state)
            let (started, cancelled) = (state.started, state.cancelled)
            let ready = state.waiters.filter { $0.condition(started, cancelled) }.map(\.continuation)
            state.waiters.removeAll { $0.condition(started, cancelled) }
            return ready
        }
        ready.forEach { $0.resume() }
    }

    /// Returns once `condition(started, cancelled)` holds.
    func wait(until condition: @escaping @Sendable (_ started: Int, _ cancelled: Int) -> Bool) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if condition(state.started, state.cancelled) { return true }
                state.waiters.append((condition, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    func release() {
        let waiters = state.withLock { state in
            state.released = true
            defer { state.releaseWaiters = [] }
            return state.releaseWaiters
        }
        waiters.forEach { $0.resume() }
    }

    func waitForRelease() async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.released { return true }
                state.releaseWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

// MARK: Frames

func encoded(_ message: some ProtoMessage) -> [UInt8] {
    (try? message.serializedBytes()) ?? []
}

/// The bytes of one frame.
func frameBytes(_ type: FrameType, flags: FrameFlags = [], callID: UInt32, _ payload: [UInt8] = []) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeFrame(type: type, flags: flags, callID: callID, payload: ByteBuffer(bytes: payload))
    return buffer
}

/// A CALL frame's bytes for `method` with `request`.
func callFrame(
    _ callID: UInt32, _ method: String, _ request: some ProtoMessage, timeoutMs: UInt64 = 0, region: String = "eu-west-1",
    requestID: String = ""
) -> ByteBuffer {
    let header = encoded(CallHeader(method: method, region: region, timeoutMs: timeoutMs, requestId: requestID,
                                    idempotencyKey: ""))
    var payload: [UInt8] = []
    withUnsafeBytes(of: UInt32(header.count).bigEndian) { payload += $0 }
    payload += header
    payload += encoded(request)
    return frameBytes(.call, callID: callID, payload)
}

func decodeStatus(_ payload: ByteBuffer) throws -> Status {
    try Status(serializedBytes: Array(payload.readableBytesView))
}

func decodeMessage(_ payload: ByteBuffer) throws -> WhoAmIResponse {
    try WhoAmIResponse(serializedBytes: Array(payload.readableBytesView))
}

/// Cuts every frame out of what a channel wrote.
func frames(in buffers: [ByteBuffer]) throws -> [Frame] {
    var decoder = FrameDecoder(maxFrameSize: 1 << 30)
    var result: [Frame] = []
    for buffer in buffers {
        decoder.append(buffer)
        while let frame = try decoder.next() { result.append(frame) }
    }
    #expect(decoder.bufferedBytes == 0, "a frame was cut short")
    return result
}

let testLogger: Logger = {
    var logger = Logger(label: "vpcep.rpc.tests")
    logger.logLevel = .critical
    return logger
}()

/// The server's per-connection handlers as `RPCServer` adds them, minus TLS. With a `peer` the
/// handshake counts as done; without one the handshake timeout runs until a test fires
/// `TLSHandshakeCompleted`.
func addServerHandlers(
    to pipeline: ChannelPipeline.SynchronousOperations, router: RPCRouter, configuration: RPCServerConfiguration,
    statistics: ServerStatistics, peer: PeerIdentity?, runsCallsOnEventLoop: Bool = false
) throws {
    try pipeline.addHandler(ConnectionManagementHandler(
        configuration: configuration.connectionManagement(handshakeTimeout: peer == nil ? configuration.handshakeTimeout : nil),
        statistics: statistics))
    try pipeline.addHandler(ServerConnectionHandler(
        router: router, configuration: configuration, statistics: statistics, logger: testLogger,
        peerForTesting: peer, runsCallsOnEventLoop: runsCallsOnEventLoop))
}
