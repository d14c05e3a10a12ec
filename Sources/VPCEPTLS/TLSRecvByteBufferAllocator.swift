public import NIOCore

/// The receive allocator for TLS connections: NIO's adaptive allocator, except that it does not
/// grow while the connection receives its first few kilobytes (the TLS handshake).
///
/// NIO keeps each channel's receive buffer for as long as the channel is open, at the largest
/// size the allocator asked for. With NIO's default (adaptive, initial 2 KiB) every idle
/// connection kept 2 KiB, and with any initial size below ~1.2 KB a mutual-TLS client's
/// certificate flight filled a read and made the buffer double. Here the buffer stays at
/// `initial` (256 bytes) for the first `handshakeAllowance` bytes received, so the handshake takes
/// a few more reads and an idle connection keeps 256 bytes; after that it adapts as NIO's does.
public struct TLSRecvByteBufferAllocator: RecvByteBufferAllocator {
    private var adaptive: AdaptiveRecvByteBufferAllocator
    private var unreadAllowance: Int

    public init(minimum: Int = 64, initial: Int = 256, maximum: Int = 65536, handshakeAllowance: Int = 4096) {
        self.adaptive = AdaptiveRecvByteBufferAllocator(minimum: minimum, initial: initial, maximum: maximum)
        self.unreadAllowance = handshakeAllowance
    }

    public func buffer(allocator: ByteBufferAllocator) -> ByteBuffer {
        self.adaptive.buffer(allocator: allocator)
    }

    public func nextBufferSize() -> Int? {
        self.adaptive.nextBufferSize()
    }

    public mutating func record(actualReadBytes: Int) -> Bool {
        if self.unreadAllowance > 0 {
            self.unreadAllowance -= actualReadBytes
            return false
        }
        return self.adaptive.record(actualReadBytes: actualReadBytes)
    }
}
