import NIOCore
import Testing
import VPCEPTLS

@Suite struct RecvAllocatorTests {
    @Test func staysSmallThroughTheHandshakeThenAdapts() {
        var allocator = TLSRecvByteBufferAllocator()
        #expect(allocator.nextBufferSize() == 256)
        // The first 4096 bytes (a handshake) are read in 256-byte steps, even when reads are full.
        for _ in 0..<16 {
            #expect(allocator.record(actualReadBytes: 256) == false)
        }
        #expect(allocator.nextBufferSize() == 256)
        #expect(allocator.buffer(allocator: ByteBufferAllocator()).capacity >= 256)
        // Then full reads double it, up to the maximum, ...
        #expect(allocator.record(actualReadBytes: 256) == true)
        #expect(allocator.nextBufferSize() == 512)
        for _ in 0..<20 {
            _ = allocator.record(actualReadBytes: 1 << 20)
        }
        #expect(allocator.nextBufferSize() == 65536)
        // ... and two small reads in a row halve it.
        _ = allocator.record(actualReadBytes: 10)
        _ = allocator.record(actualReadBytes: 10)
        #expect(allocator.nextBufferSize() == 32768)
    }
}
