import NIOCore
import VPCEPWire

/// The keepalive rule both ends of a connection follow (docs/PROTOCOL.md §8.3): after `interval`
/// without receiving a byte, send a PING; when `timeout` more passes without a byte, the peer is
/// gone. Under backpressure probing is suspended: the answer could not get through, so silence
/// proves nothing.
///
/// A value `ConnectionManagementHandler.StateMachine` drives, for both ends; it decides when
/// probing applies (the server once the TLS handshake is done, the client while calls are pending).
struct Keepalive {
    enum Action: Equatable {
        case wait
        /// Write a PING (`ByteBuffer.writeKeepalivePing(at:)`).
        case sendPing
        /// Nothing arrived within `timeout` of the PING.
        case timedOut
    }

    let interval: TimeAmount
    let timeout: TimeAmount
    private var lastRead: NIODeadline
    private var pingSent: NIODeadline?

    init(interval: TimeAmount, timeout: TimeAmount, now: NIODeadline) {
        self.interval = interval
        self.timeout = timeout
        self.lastRead = now
    }

    /// Something arrived, or watching starts: the silence is counted from `now`, and an
    /// outstanding PING counts as answered.
    mutating func reset(at now: NIODeadline) {
        lastRead = now
        pingSent = nil
    }

    /// When `check` can next decide something.
    func nextCheck(now: NIODeadline, suspended: Bool) -> NIODeadline {
        if suspended { return now + interval }
        if let pingSent { return pingSent + timeout }
        return lastRead + interval
    }

    mutating func check(now: NIODeadline, suspended: Bool) -> Action {
        if suspended {
            // An outstanding PING's answer may be stuck behind the pressure: start over later.
            pingSent = nil
            return .wait
        }
        if let pingSent { return now - pingSent >= timeout ? .timedOut : .wait }
        guard now - lastRead >= interval else { return .wait }
        pingSent = now
        return .sendPing
    }
}

extension ByteBuffer {
    /// A keepalive PING (docs/PROTOCOL.md §3.6); its 8 opaque bytes are the sender's clock.
    mutating func writeKeepalivePing(at now: NIODeadline) {
        writeFrame(type: .ping, callID: 0) { $0.writeInteger(UInt64(now.uptimeNanoseconds)) }
    }
}
