import NIOCore
import VPCEPWire

extension ServerConnectionHandler {
    /// The protocol rules of one server connection (docs/PROTOCOL.md §4, §6, §7), without NIO
    /// channels, tasks or timers: which frames a client may send, the call id order, the
    /// concurrency limit, and which calls a GOAWAY lets finish. The handler feeds it events and carries out
    /// the actions it returns.
    struct StateMachine {
        enum State: Equatable {
            /// Taking new calls.
            case active
            /// GOAWAY sent with `lastCallID`: calls up to it finish, later ones are refused.
            case draining(lastCallID: UInt32)
            /// Closing or closed: nothing more is processed.
            case closed
        }

        enum FrameAction {
            /// A new call passed the connection's rules and now counts as open; the handler
            /// parses its payload and either runs it or ends it with `callEnded`.
            case startCall(callID: UInt32, payload: ByteBuffer)
            /// Answer this call with a STATUS and forget it (it was never counted as open).
            case refuse(callID: UInt32, VPCEPError)
            /// Stop the call's work; send nothing for it.
            case cancel(callID: UInt32)
            /// Answer a PING with this payload.
            case pong(ByteBuffer)
            /// The client answered our PING.
            case pingAcknowledged
            case ignore
            /// Send GOAWAY with `lastCallID` and this status, then close.
            case goAwayAndClose(lastCallID: UInt32, VPCEPError)
        }

        private(set) var state: State = .active
        /// The highest call id the client has used.
        private(set) var lastCallID: UInt32 = 0
        private(set) var openCalls: Set<UInt32> = []
        let maxConcurrentCalls: Int

        init(maxConcurrentCalls: Int) {
            self.maxConcurrentCalls = maxConcurrentCalls
        }

        /// PING payloads are exactly this long.
        static let pingPayloadSize = 8

        mutating func frameReceived(_ frame: Frame) -> FrameAction {
            if state == .closed { return .ignore }
            switch frame.type {
            case .call:
                return callReceived(frame)
            case .cancel:
                guard frame.callID != 0 else { return violation("CANCEL on call id 0") }
                guard openCalls.remove(frame.callID) != nil else { return .ignore }
                return .cancel(callID: frame.callID)
            case .ping:
                guard frame.callID == 0, frame.payload.readableBytes == Self.pingPayloadSize else {
                    return violation("a PING must have call id 0 and an 8-byte payload")
                }
                return frame.flags.contains(.ack) ? .pingAcknowledged : .pong(frame.payload)
            default:
                return violation("a client may not send \(frame.type) frames")
            }
        }

        private mutating func callReceived(_ frame: Frame) -> FrameAction {
            let callID = frame.callID
            guard callID > lastCallID else {
                return violation("call id \(callID) is not above the last call id \(lastCallID)")
            }
            lastCallID = callID
            if case .draining(let goAwayID) = state {
                // Sent before the client saw our GOAWAY; never processed, so safe to retry.
                return .refuse(callID: callID, VPCEPError(
                    code: .unavailable, reason: .serverGoingAway,
                    message: "call \(callID) arrived after GOAWAY (last accepted call \(goAwayID)); retry on a new connection"))
            }
            guard openCalls.count < maxConcurrentCalls else {
                return .refuse(callID: callID, VPCEPError(
                    code: .resourceExhausted, reason: .tooManyConcurrentCalls,
                    message: "more than \(maxConcurrentCalls) calls in flight on one connection",
                    retryAfter: .milliseconds(100)))
            }
            openCalls.insert(callID)
            return .startCall(callID: callID, payload: frame.payload)
        }

        /// The last call id a GOAWAY may name: the highest accepted, which while draining is the
        /// one the first GOAWAY named (later calls were refused).
        var acceptedCallID: UInt32 {
            if case .draining(let lastCallID) = state { return lastCallID }
            return lastCallID
        }

        /// A framing error from the decoder: the stream cannot be trusted past it.
        mutating func decodingFailed(_ error: WireError) -> FrameAction {
            if state == .closed { return .ignore }
            if error.code == .frameTooLarge {
                let accepted = acceptedCallID
                state = .closed
                return .goAwayAndClose(lastCallID: accepted, VPCEPError(
                    code: .resourceExhausted, reason: .frameTooLarge, message: error.message))
            }
            return violation(error.message)
        }

        private mutating func violation(_ message: String) -> FrameAction {
            let accepted = acceptedCallID
            state = .closed
            return .goAwayAndClose(lastCallID: accepted, VPCEPError(
                code: .invalidArgument, reason: .protocolViolation, message: message))
        }

        /// A call ended (answered, refused after parsing, expired or cancelled). When a draining
        /// connection closes is the connection management handler's business.
        mutating func callEnded(_ callID: UInt32) {
            openCalls.remove(callID)
        }

        /// Starts a graceful shutdown (or an idle close): no new calls, open ones may finish.
        /// Returns the last call id for the GOAWAY; nil when one was sent already or it is closed.
        mutating func beginDraining() -> UInt32? {
            guard state == .active else { return nil }
            state = .draining(lastCallID: lastCallID)
            return lastCallID
        }

        /// The connection is going away for good (closed, timed out, grace period over).
        mutating func close() {
            state = .closed
            openCalls.removeAll()
        }
    }
}
