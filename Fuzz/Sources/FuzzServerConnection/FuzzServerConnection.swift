import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import VPCEPProto
@testable import VPCEPRPC
import VPCEPTLS
import VPCEPWire

// Input: the decrypted byte stream of one server connection, after two bytes of options.
//
//     byte 0  bit 0     the client certificate has no vpcep:// identity
//             bits 1-2  calls per connection: 1, 2, 3 or 1024
//             bit 3     graceful shutdown (GOAWAY) after the first chunk
//             bit 4     keepalive PINGs every second
//             bit 5     small limits: 512-byte frames, 64 bytes of outbound buffer
//             bits 6-7  time passing between chunks: none, 10 ms, 1 s, 10 s
//     byte 1  chunk size in bytes (0: the whole stream in one read)
//     rest    the stream
//
// The real `ServerConnectionHandler` runs in an `EmbeddedChannel` with every method of the API
// registered (request decoding included) plus one streaming method. Calls run on the channel's
// event loop, so one input always runs the same way. Each handler picks what it does from its
// request's encoded size: answer, fail, yield once, or wait until cancelled.
//
// Besides not crashing, after the connection closes: no call's handler is still running, the
// server's counters are back to zero, and what the server wrote is a well-formed frame sequence
// in which no call ends twice.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServerConnection(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let options = Options(data[0], chunk: data[1])
    ConnectionRun(options: options).run(UnsafeRawBufferPointer(start: data + 2, count: size - 2))
    return 0
}

struct Options {
    var identity: Bool
    var maxConcurrentCalls: Int
    var drainAfterFirstChunk: Bool
    var keepalive: Bool
    var smallLimits: Bool
    var tick: TimeAmount
    var chunkSize: Int

    init(_ byte: UInt8, chunk: UInt8) {
        identity = byte & 0x01 == 0
        maxConcurrentCalls = [1, 2, 3, 1024][Int(byte >> 1) & 0x03]
        drainAfterFirstChunk = byte & 0x08 != 0
        keepalive = byte & 0x10 != 0
        smallLimits = byte & 0x20 != 0
        tick = [.zero, .milliseconds(10), .seconds(1), .seconds(10)][Int(byte >> 6)]
        chunkSize = Int(chunk)
    }

    var configuration: RPCServerConfiguration {
        .defaults {
            $0.maxConcurrentCallsPerConnection = maxConcurrentCalls
            $0.keepaliveInterval = keepalive ? .seconds(1) : nil
            $0.keepaliveTimeout = .seconds(1)
            $0.idleTimeout = .seconds(30)
            if smallLimits {
                $0.maxFrameSize = 512
                $0.maxBufferedOutboundBytes = 64
            }
        }
    }
}

let fuzzLogger: Logger = {
    var logger = Logger(label: "vpcep.fuzz")
    logger.logLevel = .critical
    return logger
}()

let router = makeRouter()

struct ConnectionRun {
    let options: Options

    func run(_ stream: UnsafeRawBufferPointer) {
        let channel = EmbeddedChannel()
        let loop = channel.embeddedEventLoop
        let statistics = ServerStatistics()
        let handler = ServerConnectionHandler(
            router: router, configuration: options.configuration, statistics: statistics, logger: fuzzLogger)
        var written: [ByteBuffer] = []
        func collect() {
            while let buffer = try? channel.readOutbound(as: ByteBuffer.self) { written.append(buffer) }
        }

        try! channel.pipeline.syncOperations.addHandler(handler)
        try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let uriSANs = options.identity ? ["vpcep://tenant/alice"] : ["spiffe://example.org/no-vpcep-identity"]
        channel.pipeline.fireUserInboundEventTriggered(TLSHandshakeCompleted(
            applicationProtocol: "vpcep/1", peer: PeerCertificate(uriSANs: uriSANs, subject: "CN=fuzz")))

        let chunkSize = options.chunkSize == 0 ? max(stream.count, 1) : options.chunkSize
        var offset = 0
        while offset < stream.count, channel.isActive {
            let end = min(offset + chunkSize, stream.count)
            var buffer = channel.allocator.buffer(capacity: end - offset)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: stream[offset..<end]))
            // Reading a closed channel throws; the loop condition ends the input then.
            _ = try? channel.writeInbound(buffer)
            if offset == 0, options.drainAfterFirstChunk {
                channel.pipeline.triggerUserOutboundEvent(GracefulShutdown(gracePeriod: .seconds(5)), promise: nil)
            }
            loop.run()
            if options.tick != .zero { loop.advanceTime(by: options.tick) }
            collect()
            offset = end
        }

        // Let every timer due within a minute fire (deadlines, grace period, keepalive, idle
        // timeout, close linger), then close whatever is still open.
        loop.advanceTime(by: .seconds(60))
        collect()
        if channel.isActive { channel.close(promise: nil) }
        loop.run()
        collect()
        _ = try? channel.finish(acceptAlreadyClosed: true)

        precondition(liveHandlers.load(ordering: .relaxed) == 0,
                     "\(liveHandlers.load(ordering: .relaxed)) call handlers still running after the connection closed")
        let counters = statistics.snapshot
        precondition(counters.callsInFlight == 0, "callsInFlight is \(counters.callsInFlight) after close")
        precondition(counters.bufferedOutboundBytes == 0,
                     "bufferedOutboundBytes is \(counters.bufferedOutboundBytes) after close")
        checkServerFrames(written)
    }
}

/// What the server wrote must be frames it may send, each with a payload its client can read, and
/// every call must end at most once (STATUS, or MESSAGE with END_OK), with nothing after its end.
func checkServerFrames(_ buffers: [ByteBuffer]) {
    var decoder = FrameDecoder(maxFrameSize: Int(UInt32.max))
    var ended: Set<UInt32> = []
    for buffer in buffers {
        decoder.append(buffer)
        while true {
            let frame: Frame
            do {
                guard let next = try decoder.next() else { break }
                frame = next
            } catch {
                fatalError("the server wrote a frame its client cannot decode: \(error)")
            }
            switch frame.type {
            case .message, .status:
                precondition(frame.callID != 0, "\(frame.type) on call id 0")
                precondition(!ended.contains(frame.callID), "call \(frame.callID) got \(frame.type) after it ended")
                if frame.type == .status {
                    precondition((try? Status(serializedBytes: Array(frame.payload.readableBytesView))) != nil,
                                 "STATUS payload of call \(frame.callID) is not a Status")
                }
                if frame.type == .status || frame.flags.contains(.endOK) { ended.insert(frame.callID) }
            case .ping:
                precondition(frame.callID == 0 && frame.payload.readableBytes == 8, "malformed PING")
            case .goAway:
                precondition(frame.callID == 0, "GOAWAY on call id \(frame.callID)")
                guard let payload = try? GoAwayPayload(parsing: frame.payload),
                      (try? Status(serializedBytes: Array(payload.status.readableBytesView))) != nil
                else { fatalError("GOAWAY payload unreadable") }
            default:
                fatalError("the server sent a \(frame.type) frame")
            }
        }
    }
    precondition(decoder.bufferedBytes == 0, "the server's output ends inside a frame")
}
