import NIOCore
import Testing
@testable import VPCEPRPC
import VPCEPProto
import VPCEPWire

/// The client connection's protocol rules without NIO (docs/PROTOCOL.md §4, §6, §7). Calls are
/// named by strings: the machine hands back whatever the handler keeps per call.
@Suite("Client connection state machine")
struct ClientStateMachineTests {
    typealias Machine = ClientConnectionHandler.StateMachine<String>

    private func frame(_ type: FrameType, flags: FrameFlags = [], callID: UInt32, _ bytes: [UInt8] = []) -> Frame {
        Frame(type: type, flags: flags, callID: callID, payload: ByteBuffer(bytes: bytes))
    }

    private func status(_ code: StatusCode, _ reason: String = "") -> [UInt8] {
        encoded(Status(code: code.rawValue, reason: reason, message: "why", fieldViolations: [], retryAfterMs: 0, requestId: ""))
    }

    private func goAway(lastCallID: UInt32, _ code: StatusCode, _ reason: String) -> Frame {
        var payload: [UInt8] = withUnsafeBytes(of: lastCallID.bigEndian, Array.init)
        payload += status(code, reason)
        return frame(.goAway, callID: 0, payload)
    }

    @discardableResult
    private func start(_ machine: inout Machine, _ name: String, _ kind: Machine.CallKind = .unary,
                       deadline: NIODeadline? = nil) -> UInt32? {
        guard case .send(let callID) = machine.startCall(name, kind: kind, deadline: deadline) else { return nil }
        return callID
    }

    /// The calls a `closeConnection` fails and its error, when the action is one.
    private func closing(_ action: Machine.FrameAction) -> (calls: [String], error: VPCEPError)? {
        guard case .closeConnection(let calls, let error) = action else { return nil }
        return (calls.map(\.call), error)
    }

    @Test("§4.1 calls get ids 1, 2, 3, …")
    func callIDs() {
        var machine = Machine()
        #expect([start(&machine, "a"), start(&machine, "b"), start(&machine, "c")] == [1, 2, 3])
        #expect(machine.lastCallID == 3 && Set(machine.pendingCallIDs) == [1, 2, 3])
    }

    @Test("§4.1 the call that takes id 2³²−1 is sent; later calls are refused and the others go on")
    func callIDsExhausted() {
        var machine = Machine(lastCallID: .max - 1)
        #expect(start(&machine, "last") == .max)
        guard case .refuse(let error) = machine.startCall("next", kind: .unary, deadline: nil) else { Issue.record(); return }
        #expect(error.code == .unavailable && error.reason == .callIDsExhausted)
        guard case .finish(.max, "last", .response) = machine.frameReceived(frame(.message, flags: .endOK, callID: .max)) else {
            Issue.record()
            return
        }
    }

    @Test("§4.8 MESSAGE or STATUS for a call id never used is a protocol violation that fails every call",
          arguments: [FrameType.message, .status], [0, 3] as [UInt32])
    func frameForACallNeverMade(type: FrameType, callID: UInt32) throws {
        var machine = Machine()
        start(&machine, "a")
        start(&machine, "b")
        let (calls, error) = try #require(closing(machine.frameReceived(frame(type, callID: callID, status(.ok)))))
        #expect(calls == ["a", "b"])
        #expect(error.code == .internalError && error.reason == .protocolViolation && error.message.contains("never made"))
        #expect(machine.state == .closed(error) && !machine.hasPendingCalls)
        // Closed: new calls fail with the violation, later frames are ignored.
        guard case .refuse(error) = machine.startCall("c", kind: .unary, deadline: nil) else { Issue.record(); return }
        guard case .none = machine.frameReceived(frame(.ping, callID: 0, Array(repeating: 0, count: 8))) else { Issue.record(); return }
    }

    @Test("§4.8 frames for a call that ended here (cancel, deadline, STATUS) are ignored")
    func frameForAnEndedCall() {
        var machine = Machine()
        start(&machine, "cancelled")
        start(&machine, "expired")
        start(&machine, "answered")
        #expect(machine.cancel(1)?.error.reason == .cancelled)
        #expect(machine.deadlinePassed(2)?.error.reason == .deadlineExceeded)
        guard case .finish(3, "answered", .failed(let failure)) = machine.frameReceived(frame(.status, callID: 3, status(.notFound, "GONE"))) else {
            Issue.record()
            return
        }
        #expect(failure.code == .notFound && failure.reason.rawValue == "GONE")
        for callID: UInt32 in [1, 2, 3] {
            guard case .none = machine.frameReceived(frame(.message, flags: .endOK, callID: callID)) else { Issue.record(); return }
            // A duplicate STATUS ends nothing twice.
            guard case .none = machine.frameReceived(frame(.status, callID: callID, status(.internalError))) else { Issue.record(); return }
        }
        // Cancelling or expiring an ended call does nothing.
        #expect(machine.cancel(3) == nil && machine.deadlinePassed(1) == nil)
        #expect(machine.state == .active && !machine.hasPendingCalls)
    }

    @Test("§4.4 unary: MESSAGE is the response; STATUS OK without one is MISSING_RESPONSE")
    func unary() {
        var machine = Machine()
        start(&machine, "a")
        start(&machine, "b")
        guard case .finish(1, "a", .response(let response)) = machine.frameReceived(frame(.message, flags: .endOK, callID: 1, [7])) else {
            Issue.record()
            return
        }
        #expect(Array(response.readableBytesView) == [7])
        guard case .finish(2, "b", .failed(let error)) = machine.frameReceived(frame(.status, callID: 2, status(.ok))) else {
            Issue.record()
            return
        }
        #expect(error.code == .internalError && error.reason == .missingResponse)
    }

    @Test("§4.4 streams: messages, then STATUS OK or a failure; MESSAGE with END_OK is the last message and OK")
    func streams() {
        var machine = Machine()
        start(&machine, "ok", .serverStreaming)
        start(&machine, "endOK", .serverStreaming)
        start(&machine, "failing", .serverStreaming)
        start(&machine, "garbled", .serverStreaming)
        guard case .deliver(1, "ok", _) = machine.frameReceived(frame(.message, callID: 1, [1])) else { Issue.record(); return }
        guard case .finish(1, "ok", .streamEnded(lastMessage: nil)) = machine.frameReceived(frame(.status, callID: 1, status(.ok))) else {
            Issue.record()
            return
        }
        guard case .finish(2, "endOK", .streamEnded(let last?)) = machine.frameReceived(frame(.message, flags: .endOK, callID: 2, [2])) else {
            Issue.record()
            return
        }
        #expect(Array(last.readableBytesView) == [2])
        guard case .finish(3, "failing", .failed(let error)) = machine.frameReceived(frame(.status, callID: 3, status(.aborted, "CONFLICT"))) else {
            Issue.record()
            return
        }
        #expect(error.code == .aborted && error.reason.rawValue == "CONFLICT")
        guard case .finish(4, "garbled", .failed(let unreadable)) = machine.frameReceived(frame(.status, callID: 4, [0xff, 0xff])) else {
            Issue.record()
            return
        }
        #expect(unreadable.reason == .malformedStatus)
    }

    @Test("§7 GOAWAY fails the calls above its last call id as never processed; the others finish; no new calls")
    func goAwayPartitions() throws {
        var machine = Machine()
        for name in ["a", "b", "c", "d"] { start(&machine, name) }
        _ = machine.cancel(2)
        guard case .goAway(let failed, let error) = machine.frameReceived(goAway(lastCallID: 2, .unavailable, "SERVER_SHUTTING_DOWN")) else {
            Issue.record()
            return
        }
        #expect(failed.map(\.callID) == [3, 4] && failed.map(\.call) == ["c", "d"])
        #expect(error.code == .unavailable && error.reason == .serverGoingAway && error.wasNeverProcessed)
        #expect(Array(machine.pendingCallIDs) == [1])
        guard case .refuse(let refused) = machine.startCall("e", kind: .unary, deadline: nil) else { Issue.record(); return }
        #expect(refused.reason == .serverGoingAway && refused.wasNeverProcessed)
        // The call the server read is still answered.
        guard case .finish(1, "a", .response) = machine.frameReceived(frame(.message, flags: .endOK, callID: 1)) else { Issue.record(); return }
        // A second GOAWAY (a violation while draining) names the same id: nothing more to fail,
        // and the first one's reason stays.
        guard case .goAway(let none, _) = machine.frameReceived(goAway(lastCallID: 2, .invalidArgument, "PROTOCOL_VIOLATION")),
              none.isEmpty else { Issue.record(); return }
        guard case .draining(let refusal, let onClose) = machine.state else { Issue.record(); return }
        #expect(refusal.reason == .serverGoingAway && onClose?.reason.rawValue == "SERVER_SHUTTING_DOWN")
    }

    @Test("§3.7 calls the GOAWAY covers that the close then cuts off may have been processed: never SERVER_GOING_AWAY",
          arguments: [(StatusCode.unavailable, "SERVER_SHUTTING_DOWN"), (.ok, ""), (.unknown, "")])
    func goAwayThenClose(code: StatusCode, reason: String) {
        var machine = Machine()
        start(&machine, "read")
        _ = machine.frameReceived(goAway(lastCallID: 1, code, reason))
        let (calls, error) = machine.closed()
        #expect(calls.map(\.call) == ["read"])
        #expect(!error.wasNeverProcessed && error.code == .unavailable)
        #expect(error.reason.rawValue == (code == .unavailable ? reason : "CONNECTION_CLOSED"))
    }

    @Test("§6 frames a server may not send, and PING or GOAWAY off call id 0, end the connection",
          arguments: [
            (FrameType.call, 1 as UInt32, 0), (.cancel, 1, 0), (.ping, 1, 8), (.ping, 0, 7), (.goAway, 1, 4),
          ])
    func violations(type: FrameType, callID: UInt32, bytes: Int) throws {
        var machine = Machine()
        start(&machine, "a")
        let (calls, error) = try #require(closing(machine.frameReceived(frame(type, callID: callID, Array(repeating: 0, count: bytes)))))
        #expect(calls == ["a"] && error.reason == .protocolViolation)
    }

    @Test("§6 a malformed frame from the decoder ends the connection once")
    func decodingFailure() throws {
        var machine = Machine()
        start(&machine, "a")
        let error = WireError.malformed("reserved bits set", callID: 0)
        let (calls, failure) = try #require(closing(machine.decodingFailed(error)))
        #expect(calls == ["a"] && failure.reason == .protocolViolation && failure.message.contains("reserved bits set"))
        guard case .none = machine.decodingFailed(error) else { Issue.record(); return }
    }

    @Test("§3.6 a PING is answered with its 8 bytes; an ACK needs no answer")
    func ping() {
        var machine = Machine()
        guard case .pong(let payload) = machine.frameReceived(frame(.ping, callID: 0, [1, 2, 3, 4, 5, 6, 7, 8])) else {
            Issue.record()
            return
        }
        #expect(Array(payload.readableBytesView) == [1, 2, 3, 4, 5, 6, 7, 8])
        guard case .none = machine.frameReceived(frame(.ping, flags: .ack, callID: 0, Array(repeating: 0, count: 8))) else {
            Issue.record()
            return
        }
    }

    @Test("§4.5 each call's own deadline: due calls, and the earliest of the rest")
    func deadlines() {
        var machine = Machine()
        let start = NIODeadline.uptimeNanoseconds(1_000)
        self.start(&machine, "late", deadline: start + .seconds(5))
        self.start(&machine, "early", deadline: start + .seconds(2))
        self.start(&machine, "none")
        #expect(machine.callsDue(at: start + .seconds(1)).due.isEmpty)
        #expect(machine.callsDue(at: start + .seconds(1)).next == start + .seconds(2))
        let due = machine.callsDue(at: start + .seconds(2))
        #expect(due.due == [2] && due.next == start + .seconds(5))
        _ = machine.deadlinePassed(2)
        #expect(machine.callsDue(at: start + .seconds(3)).next == start + .seconds(5))
    }

    @Test("a failure closes the connection: every call fails, and so do new ones, with the first failure")
    func fail() {
        var machine = Machine()
        start(&machine, "a")
        let first = VPCEPError(code: .unavailable, reason: .keepaliveTimeout, message: "silent")
        #expect(machine.fail(first).map(\.call) == ["a"])
        let second = VPCEPError(code: .unavailable, reason: .connectionFailed, message: "reset")
        #expect(machine.fail(second).isEmpty)
        guard case .refuse(first) = machine.startCall("b", kind: .unary, deadline: nil) else { Issue.record(); return }
        #expect(machine.closed().error == first)
    }
}
