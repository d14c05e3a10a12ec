import NIOCore
import VPCEPProto
import VPCEPWire

/// What one server connection holds for sending (docs/PROTOCOL.md §8.2): frames that become ready
/// in one event-loop tick are coalesced into one write (one TLS record, one syscall), and a write
/// counts until the channel has completed it, which includes what TLS and the socket have not
/// sent yet. Every byte is also counted in the server-wide total.
struct OutboundBuffer {
    private var buffer: ByteBuffer?
    private var inChannel = 0
    private var flushScheduled = false
    private let statistics: ServerStatistics

    init(statistics: ServerStatistics) {
        self.statistics = statistics
    }

    var bufferedBytes: Int { (buffer?.readableBytes ?? 0) + inChannel }

    /// Appends frames; returns true when the caller should schedule a flush for the end of the tick.
    mutating func append(allocator: ByteBufferAllocator, _ write: (inout ByteBuffer) -> Void) -> Bool {
        if buffer == nil { buffer = allocator.buffer(capacity: 512) }
        let before = buffer!.readableBytes
        write(&buffer!)
        statistics.adjustBufferedBytes(buffer!.readableBytes - before)
        defer { flushScheduled = true }
        return !flushScheduled
    }

    /// What to write now, counted as in the channel until `written`.
    mutating func take() -> ByteBuffer? {
        flushScheduled = false
        guard let taken = buffer, taken.readableBytes > 0 else { return nil }
        buffer = nil
        inChannel += taken.readableBytes
        return taken
    }

    mutating func written(_ count: Int) {
        inChannel -= count
        statistics.adjustBufferedBytes(-count)
    }

    /// The connection is gone: what was never handed to the channel no longer counts.
    mutating func discard() {
        statistics.adjustBufferedBytes(-(buffer?.readableBytes ?? 0))
        buffer = nil
    }
}

extension ByteBuffer {
    /// A STATUS frame (docs/PROTOCOL.md §3.4).
    mutating func writeStatusFrame(_ status: Status, callID: UInt32) {
        let bytes = (try? status.serializedBytes()) ?? []
        writeFrame(type: .status, callID: callID) { $0.writeBytes(bytes) }
    }

    /// A GOAWAY frame (docs/PROTOCOL.md §3.7).
    mutating func writeGoAwayFrame(lastCallID: UInt32, _ status: Status) {
        let bytes = (try? status.serializedBytes()) ?? []
        writeFrame(type: .goAway, callID: 0) {
            $0.writeInteger(lastCallID)
            $0.writeBytes(bytes)
        }
    }
}
