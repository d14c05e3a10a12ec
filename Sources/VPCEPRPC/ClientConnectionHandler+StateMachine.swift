import NIOCore
import VPCEPProto
import VPCEPWire

extension ClientConnectionHandler {
    /// The protocol rules of one client connection (docs/PROTOCOL.md §4, §6, §7), without NIO
    /// channels, tasks or timers: call ids, what each server frame means for the call it names,
    /// GOAWAY, protocol violations and closing. The handler feeds it events and carries out the
    /// actions it returns.
    ///
    /// `Call` is whatever the handler keeps per call (where its outcome goes); the machine hands it
    /// back with each action that feeds or ends the call, so a call cannot end twice.
    struct StateMachine<Call> {
        enum CallKind: Equatable {
            /// One MESSAGE with END_OK, or a failing STATUS (§4.4).
            case unary
            /// MESSAGEs, then one STATUS (§4.4).
            case serverStreaming
        }

        enum State: Equatable {
            /// Taking new calls.
            case active
            /// No new calls (GOAWAY read, or every call id used); pending calls go on. New calls
            /// fail with `refusal`; calls still pending when the connection closes with `onClose`,
            /// or `CONNECTION_CLOSED` when nil.
            case draining(refusal: VPCEPError, onClose: VPCEPError?)
            /// Closing or closed: nothing more is processed, and new calls fail with this.
            case closed(VPCEPError)
        }

        enum StartAction {
            /// Write the CALL frame with this id.
            case send(callID: UInt32)
            /// The call cannot start on this connection; nothing was sent.
            case refuse(VPCEPError)
        }

        /// How a call ended.
        enum Outcome {
            /// A unary call's response message.
            case response(ByteBuffer)
            /// A stream ended with OK, after this last message when the server sent MESSAGE with END_OK.
            case streamEnded(lastMessage: ByteBuffer?)
            case failed(VPCEPError)
        }

        enum FrameAction {
            case none
            /// A stream's message; the call goes on.
            case deliver(callID: UInt32, Call, ByteBuffer)
            /// The call ended; it is no longer pending.
            case finish(callID: UInt32, Call, Outcome)
            /// Answer the server's PING with these 8 bytes.
            case pong(ByteBuffer)
            /// GOAWAY: no new call starts here (`refusal` says why); these calls (above its last
            /// call id) were never processed: fail them with the error. The others go on.
            case goAway(failing: [(callID: UInt32, call: Call)], VPCEPError)
            /// The server broke the protocol (§6): fail these calls with the error and close.
            case closeConnection([(callID: UInt32, call: Call)], VPCEPError)
        }

        private struct PendingCall {
            var call: Call
            var kind: CallKind
            var deadline: NIODeadline?
        }

        private(set) var state: State = .active
        /// The highest call id used on this connection (0: none).
        private(set) var lastCallID: UInt32
        private var pending: [UInt32: PendingCall] = [:]

        /// `lastCallID` other than 0 only to test the end of the id space.
        init(lastCallID: UInt32 = 0) {
            self.lastCallID = lastCallID
        }

        var pendingCallIDs: some Collection<UInt32> { pending.keys }
        var hasPendingCalls: Bool { !pending.isEmpty }

        /// The error a new call gets here, once the connection takes no more.
        var refusal: VPCEPError? {
            switch state {
            case .active: nil
            case .draining(let refusal, _): refusal
            case .closed(let error): error
            }
        }

        // MARK: Calls

        /// A caller starts a call; `deadline` is when the client stops waiting (§4.5).
        mutating func startCall(_ call: Call, kind: CallKind, deadline: NIODeadline?) -> StartAction {
            if let refusal { return .refuse(refusal) }
            // Ids increase by one from 1 (§4.1); `draining` below stops this before it overflows.
            lastCallID += 1
            pending[lastCallID] = PendingCall(call: call, kind: kind, deadline: deadline)
            if lastCallID == .max {
                // §4.1: a client that has used id 2³²−1 must open a new connection.
                state = .draining(
                    refusal: VPCEPError(code: .unavailable, reason: .callIDsExhausted,
                                        message: "this connection has used every call id; retry on a new connection"),
                    onClose: nil)
            }
            return .send(callID: lastCallID)
        }

        /// The caller gave up on the call (§4.6): fail it, and send CANCEL. Nil when it had ended.
        mutating func cancel(_ callID: UInt32) -> (call: Call, error: VPCEPError)? {
            guard let ended = pending.removeValue(forKey: callID) else { return nil }
            return (ended.call, VPCEPError(code: .cancelled, reason: .cancelled, message: "the call was cancelled by the caller"))
        }

        /// The call's deadline passed (§4.5): fail it, and send CANCEL. Nil when it had ended.
        mutating func deadlinePassed(_ callID: UInt32) -> (call: Call, error: VPCEPError)? {
            guard let ended = pending.removeValue(forKey: callID) else { return nil }
            return (ended.call, VPCEPError(code: .deadlineExceeded, reason: .deadlineExceeded,
                                           message: "no answer from the server before the deadline"))
        }

        /// The calls whose deadline is at or before `now`, and the earliest deadline of the others.
        func callsDue(at now: NIODeadline) -> (due: [UInt32], next: NIODeadline?) {
            EarliestDeadlineTimer.due(pending.lazy.map { ($0.key, $0.value.deadline) }, now: now)
        }

        // MARK: Server frames

        mutating func frameReceived(_ frame: Frame) -> FrameAction {
            if case .closed = state { return .none }
            switch frame.type {
            case .message, .status:
                return callFrameReceived(frame)
            case .ping:
                guard frame.callID == 0, frame.payload.readableBytes == Self.pingPayloadSize else {
                    return violation("a PING must have call id 0 and an 8-byte payload")
                }
                return frame.flags.contains(.ack) ? .none : .pong(frame.payload)
            case .goAway:
                guard frame.callID == 0 else { return violation("GOAWAY on call id \(frame.callID)") }
                return goAwayReceived(frame.payload)
            default:
                return violation("a server may not send \(frame.type) frames")
            }
        }

        /// PING payloads are exactly this long (§3.6).
        static var pingPayloadSize: Int { 8 }

        private mutating func callFrameReceived(_ frame: Frame) -> FrameAction {
            let callID = frame.callID
            guard callID != 0, callID <= lastCallID else {
                return violation("\(frame.type) for call \(callID), which was never made")
            }
            // §4.8: a call that ended here already (deadline, cancel, GOAWAY) may still be answered.
            guard let entry = pending[callID] else { return .none }
            if frame.type == .message {
                switch entry.kind {
                case .unary:
                    // A unary call's one message always carries END_OK (§4.4).
                    pending[callID] = nil
                    return .finish(callID: callID, entry.call, .response(frame.payload))
                case .serverStreaming:
                    guard frame.flags.contains(.endOK) else { return .deliver(callID: callID, entry.call, frame.payload) }
                    pending[callID] = nil
                    return .finish(callID: callID, entry.call, .streamEnded(lastMessage: frame.payload))
                }
            }
            pending[callID] = nil
            let failure = Self.decodeStatus(frame.payload)
            switch (entry.kind, failure) {
            case (_, let failure?):
                return .finish(callID: callID, entry.call, .failed(failure))
            case (.unary, nil):
                return .finish(callID: callID, entry.call, .failed(VPCEPError(
                    code: .internalError, reason: .missingResponse,
                    message: "the server ended a unary call with OK but no response")))
            case (.serverStreaming, nil):
                return .finish(callID: callID, entry.call, .streamEnded(lastMessage: nil))
            }
        }

        private mutating func goAwayReceived(_ payload: ByteBuffer) -> FrameAction {
            // A GOAWAY too short to name a last call id says nothing we could act on safely.
            guard let goAway = try? GoAwayPayload(parsing: payload) else { return .none }
            let status = Self.decodeStatus(goAway.status)
            // An OK or UNKNOWN status says nothing more than that the server is going away.
            let why = status.flatMap { $0.code == .unknown ? nil : $0 }?.message ?? "the server is closing this connection"
            // §3.7, §7: calls above the last call id were never processed and may go elsewhere,
            // and so may the calls this connection refuses from now on.
            let notProcessed = VPCEPError(code: .unavailable, reason: .serverGoingAway,
                                          message: "the server stopped accepting calls on this connection: \(why)")
            let firstGoAway: Bool
            switch state {
            case .active: firstGoAway = true
            case .draining(let refusal, _): firstGoAway = refusal.reason == .callIDsExhausted
            case .closed: firstGoAway = false
            }
            // A second GOAWAY (§3.7) names the same last call id; the first one's reason stays.
            if firstGoAway {
                // Calls at or below the last call id were read: if the connection closes before
                // they are answered they may or may not have been processed, so they never get a
                // "not processed" reason.
                let onClose = status.flatMap { $0.code == .unknown || $0.wasNeverProcessed ? nil : $0 }
                state = .draining(refusal: notProcessed, onClose: onClose)
            }
            let above = pending.keys.filter { $0 > goAway.lastCallID }.sorted()
            let calls = above.map { (callID: $0, call: pending.removeValue(forKey: $0)!.call) }
            return .goAway(failing: calls, notProcessed)
        }

        /// A framing error from the decoder: the stream cannot be trusted past it.
        mutating func decodingFailed(_ error: WireError) -> FrameAction {
            if case .closed = state { return .none }
            return violation("the server sent a malformed frame: \(error.message)")
        }

        private mutating func violation(_ message: String) -> FrameAction {
            let error = VPCEPError(code: .internalError, reason: .protocolViolation, message: message)
            return .closeConnection(fail(error), error)
        }

        // MARK: Closing

        /// The connection is ending because of `error` (a TLS failure, keepalive timeout, protocol
        /// violation): every pending call fails with it, and so do new ones.
        mutating func fail(_ error: VPCEPError) -> [(callID: UInt32, call: Call)] {
            if case .closed = state {} else { state = .closed(error) }
            return removeAll()
        }

        /// The connection closed: the pending calls and the error they fail with.
        mutating func closed() -> (calls: [(callID: UInt32, call: Call)], error: VPCEPError) {
            let connectionClosed = VPCEPError(code: .unavailable, reason: .connectionClosed,
                                              message: "the connection to the server closed")
            let error: VPCEPError
            switch state {
            case .active: error = connectionClosed
            case .draining(_, let onClose): error = onClose ?? connectionClosed
            case .closed(let earlier): error = earlier
            }
            state = .closed(error)
            return (removeAll(), error)
        }

        private mutating func removeAll() -> [(callID: UInt32, call: Call)] {
            let calls = pending.sorted { $0.key < $1.key }.map { (callID: $0.key, call: $0.value.call) }
            pending.removeAll()
            return calls
        }

        /// The failure a STATUS payload reports; nil for OK.
        static func decodeStatus(_ payload: ByteBuffer) -> VPCEPError? {
            do {
                let status = try payload.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                    try Status(serializedBytes: bytes)
                }
                return VPCEPError(status)
            } catch {
                return VPCEPError(code: .internalError, reason: .malformedStatus, message: "the server sent an unreadable status")
            }
        }
    }
}
