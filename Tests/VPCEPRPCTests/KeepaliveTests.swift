import NIOCore
import Testing
@testable import VPCEPRPC
import VPCEPWire

/// The keepalive rule the client and the server handler share (docs/PROTOCOL.md §8.3), on a clock
/// the test moves by hand.
@Suite("Keepalive")
struct KeepaliveTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }

    @Test("§8.3 a PING after `interval` of silence; no answer within `timeout` times out")
    func pingThenTimeout() {
        var keepalive = Keepalive(interval: .seconds(60), timeout: .seconds(20), now: start)
        #expect(keepalive.nextCheck(now: at(1), suspended: false) == at(60))
        #expect(keepalive.check(now: at(59), suspended: false) == .wait)
        #expect(keepalive.check(now: at(60), suspended: false) == .sendPing)
        #expect(keepalive.nextCheck(now: at(60), suspended: false) == at(80))
        #expect(keepalive.check(now: at(79), suspended: false) == .wait)
        #expect(keepalive.check(now: at(80), suspended: false) == .timedOut)
    }

    @Test("§8.3 anything received answers the PING and restarts the silence")
    func receivedAnswers() {
        var keepalive = Keepalive(interval: .seconds(60), timeout: .seconds(20), now: start)
        #expect(keepalive.check(now: at(60), suspended: false) == .sendPing)
        keepalive.reset(at: at(70))
        #expect(keepalive.check(now: at(80), suspended: false) == .wait)
        #expect(keepalive.nextCheck(now: at(80), suspended: false) == at(130))
        #expect(keepalive.check(now: at(130), suspended: false) == .sendPing)
    }

    @Test("§8.3 under backpressure nothing is probed, and an outstanding PING is forgotten")
    func suspended() {
        var keepalive = Keepalive(interval: .seconds(60), timeout: .seconds(20), now: start)
        #expect(keepalive.check(now: at(60), suspended: false) == .sendPing)
        #expect(keepalive.check(now: at(100), suspended: true) == .wait)
        #expect(keepalive.nextCheck(now: at(100), suspended: true) == at(160))
        // The old PING's answer may have been stuck: a new one goes out instead of a timeout.
        #expect(keepalive.check(now: at(160), suspended: false) == .sendPing)
    }

    @Test("§3.6 the PING is a frame with call id 0 and 8 bytes, without ACK")
    func pingFrame() throws {
        var buffer = ByteBuffer()
        buffer.writeKeepalivePing(at: start)
        var decoder = FrameDecoder(maxFrameSize: 1024)
        decoder.append(buffer)
        let frame = try #require(try decoder.next())
        #expect(frame.type == .ping)
        #expect(frame.callID == 0)
        #expect(frame.flags.isEmpty)
        #expect(frame.payload.readableBytes == 8)
    }
}
