import NIOCore
import Testing
@testable import VPCEPRPC
import VPCEPWire

/// The server connection's protocol rules without NIO (docs/PROTOCOL.md §4, §6, §7).
@Suite("Server connection state machine")
struct ServerStateMachineTests {
    typealias Machine = ServerConnectionHandler.StateMachine

    private func frame(_ type: FrameType, flags: FrameFlags = [], callID: UInt32, bytes: Int = 0) -> Frame {
        Frame(type: type, flags: flags, callID: callID, payload: ByteBuffer(repeating: 0, count: bytes))
    }

    private func violationMessage(_ action: Machine.FrameAction) -> String? {
        if case .goAwayAndClose(_, let error) = action, error.reason.rawValue == "PROTOCOL_VIOLATION" { return error.message }
        return nil
    }

    @Test("§4.1 call ids must increase; a reused id ends the connection")
    func callIDsIncrease() {
        var machine = Machine(maxConcurrentCalls: 10)
        guard case .startCall(1, _) = machine.frameReceived(frame(.call, callID: 1)) else { Issue.record(); return }
        guard case .startCall(5, _) = machine.frameReceived(frame(.call, callID: 5)) else { Issue.record(); return }
        let action = machine.frameReceived(frame(.call, callID: 5))
        guard case .goAwayAndClose(let lastCallID, let error) = action else { Issue.record("\(action)"); return }
        #expect(lastCallID == 5)
        #expect(error.code == .invalidArgument && error.reason.rawValue == "PROTOCOL_VIOLATION")
        #expect(machine.state == .closed)
        // Nothing more is processed.
        guard case .ignore = machine.frameReceived(frame(.call, callID: 6)) else { Issue.record(); return }
    }

    @Test("§4.1 call id 0 is not a call")
    func callIDZero() {
        var machine = Machine(maxConcurrentCalls: 10)
        #expect(violationMessage(machine.frameReceived(frame(.call, callID: 0))) != nil)
    }

    @Test("§6 frames a client may not send end the connection", arguments: [FrameType.message, .status, .goAway])
    func serverOnlyFrames(type: FrameType) {
        var machine = Machine(maxConcurrentCalls: 10)
        #expect(violationMessage(machine.frameReceived(frame(type, callID: 1)))?.contains("\(type)") == true)
    }

    @Test("§8 the concurrency limit refuses the call, not the connection")
    func concurrencyLimit() {
        var machine = Machine(maxConcurrentCalls: 2)
        _ = machine.frameReceived(frame(.call, callID: 1))
        _ = machine.frameReceived(frame(.call, callID: 2))
        guard case .refuse(3, let error) = machine.frameReceived(frame(.call, callID: 3)) else { Issue.record(); return }
        #expect(error.code == .resourceExhausted && error.reason.rawValue == "TOO_MANY_CONCURRENT_CALLS")
        #expect(error.retryAfter != nil)
        machine.callEnded(1)
        guard case .startCall(4, _) = machine.frameReceived(frame(.call, callID: 4)) else { Issue.record(); return }
    }

    @Test("§4.6 CANCEL of an unknown or finished call is ignored; of an open call, cancels it")
    func cancel() {
        var machine = Machine(maxConcurrentCalls: 10)
        guard case .ignore = machine.frameReceived(frame(.cancel, callID: 9)) else { Issue.record(); return }
        _ = machine.frameReceived(frame(.call, callID: 1))
        guard case .cancel(1) = machine.frameReceived(frame(.cancel, callID: 1)) else { Issue.record(); return }
        guard case .ignore = machine.frameReceived(frame(.cancel, callID: 1)) else { Issue.record(); return }
        #expect(machine.openCalls.isEmpty)
        #expect(violationMessage(machine.frameReceived(frame(.cancel, callID: 0))) != nil)
    }

    @Test("§3.6 PING needs call id 0 and 8 bytes; ACKs are noted")
    func ping() {
        var machine = Machine(maxConcurrentCalls: 10)
        guard case .pong(let payload) = machine.frameReceived(frame(.ping, callID: 0, bytes: 8)) else {
            Issue.record()
            return
        }
        #expect(payload.readableBytes == 8)
        guard case .pingAcknowledged = machine.frameReceived(frame(.ping, flags: .ack, callID: 0, bytes: 8)) else {
            Issue.record()
            return
        }
        var other = Machine(maxConcurrentCalls: 10)
        #expect(violationMessage(other.frameReceived(frame(.ping, callID: 0, bytes: 3))) != nil)
        var third = Machine(maxConcurrentCalls: 10)
        #expect(violationMessage(third.frameReceived(frame(.ping, callID: 7, bytes: 8))) != nil)
    }

    @Test("§6 an oversize frame is RESOURCE_EXHAUSTED / FRAME_TOO_LARGE; other framing errors are violations")
    func decodingErrors() {
        var machine = Machine(maxConcurrentCalls: 10)
        _ = machine.frameReceived(frame(.call, callID: 3))
        guard case .goAwayAndClose(3, let error) = machine.decodingFailed(.frameTooLarge(length: 10, limit: 5, callID: 4))
        else { Issue.record(); return }
        #expect(error.code == .resourceExhausted && error.reason.rawValue == "FRAME_TOO_LARGE")
        var other = Machine(maxConcurrentCalls: 10)
        #expect(violationMessage(other.decodingFailed(.unknownFrameType(0x7f, callID: 0))) != nil)
    }

    @Test("§7 draining: GOAWAY names the last call; later calls are refused as retryable")
    func draining() {
        var machine = Machine(maxConcurrentCalls: 10)
        _ = machine.frameReceived(frame(.call, callID: 1))
        _ = machine.frameReceived(frame(.call, callID: 2))
        let first = machine.beginDraining()
        let second = machine.beginDraining()
        #expect(first == 2)
        #expect(second == nil)
        guard case .refuse(3, let error) = machine.frameReceived(frame(.call, callID: 3)) else { Issue.record(); return }
        #expect(error.code == .unavailable && error.reason.rawValue == "SERVER_GOING_AWAY" && error.isRetryable)
    }

    @Test("§7 a violation while draining names the call id of the first GOAWAY, not refused calls")
    func violationWhileDraining() {
        var machine = Machine(maxConcurrentCalls: 10)
        _ = machine.frameReceived(frame(.call, callID: 1))
        _ = machine.beginDraining()
        _ = machine.frameReceived(frame(.call, callID: 2))
        guard case .goAwayAndClose(1, _) = machine.frameReceived(frame(.status, callID: 1)) else { Issue.record(); return }
    }
}
