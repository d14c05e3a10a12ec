import NIOCore
import Testing
import VPCEPWire

@Suite("Frame decoder")
struct FrameDecoderTests {
    private func frameBytes(type: FrameType = .call, flags: FrameFlags = [], callID: UInt32 = 1, payload: [UInt8]) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeFrame(type: type, flags: flags, callID: callID, payload: ByteBuffer(bytes: payload))
        return buffer
    }

    @Test("a frame round-trips with its header fields")
    func roundTrip() throws {
        var decoder = FrameDecoder(maxFrameSize: 1024)
        decoder.append(frameBytes(type: .message, flags: .endOK, callID: 7, payload: [1, 2, 3]))
        let frame = try #require(try decoder.next())
        #expect(frame.type == .message)
        #expect(frame.flags == .endOK)
        #expect(frame.callID == 7)
        #expect(Array(frame.payload.readableBytesView) == [1, 2, 3])
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedBytes == 0)
    }

    @Test("the header layout is 12 big-endian bytes: length, type, flags, reserved, call id")
    func headerLayout() {
        let bytes = Array(frameBytes(type: .status, callID: 0x0102_0304, payload: [0xAA]).readableBytesView)
        #expect(bytes == [0, 0, 0, 1, 0x03, 0, 0, 0, 1, 2, 3, 4, 0xAA])
    }

    @Test("a frame fed one byte at a time comes out once, whole")
    func dripFed() throws {
        var decoder = FrameDecoder(maxFrameSize: 1024)
        let bytes = Array(frameBytes(callID: 3, payload: Array(repeating: 9, count: 40)).readableBytesView)
        var frames: [Frame] = []
        for byte in bytes {
            decoder.append(ByteBuffer(bytes: [byte]))
            while let frame = try decoder.next() { frames.append(frame) }
        }
        #expect(frames.count == 1)
        #expect(frames.first?.payload.readableBytes == 40)
    }

    @Test("many frames in one read all come out, in order")
    func manyPerRead() throws {
        var decoder = FrameDecoder(maxFrameSize: 1024)
        var buffer = ByteBuffer()
        for id in 1...100 { buffer.writeFrame(type: .call, callID: UInt32(id), payload: ByteBuffer(bytes: [UInt8(id)])) }
        decoder.append(buffer)
        var ids: [UInt32] = []
        while let frame = try decoder.next() { ids.append(frame.callID) }
        #expect(ids == Array(1...100))
    }

    @Test("a truncated header or payload waits for more bytes")
    func truncated() throws {
        var decoder = FrameDecoder(maxFrameSize: 1024)
        let bytes = Array(frameBytes(payload: [1, 2, 3, 4]).readableBytesView)
        decoder.append(ByteBuffer(bytes: bytes.prefix(11)))
        #expect(try decoder.next() == nil)
        decoder.append(ByteBuffer(bytes: bytes[11..<14]))
        #expect(try decoder.next() == nil)
        decoder.append(ByteBuffer(bytes: bytes[14...]))
        #expect(try decoder.next()?.payload.readableBytes == 4)
    }

    @Test("an unknown frame type is refused")
    func unknownType() {
        var decoder = FrameDecoder(maxFrameSize: 1024)
        decoder.append(frameBytes(type: FrameType(rawValue: 0x7F), payload: []))
        #expect(throws: WireError.self) { try decoder.next() }
        do {
            _ = try decoder.next()
        } catch {
            #expect(error.code == .unknownFrameType)
        }
    }

    @Test("reserved bits must be zero")
    func reservedBits() {
        var decoder = FrameDecoder(maxFrameSize: 1024)
        var buffer = frameBytes(payload: [])
        buffer.setInteger(UInt16(1), at: buffer.readerIndex + 6)
        decoder.append(buffer)
        do {
            _ = try decoder.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .reservedBitsSet)
        }
    }

    @Test("a length past the limit is refused from the header alone, before any payload arrives")
    func oversize() {
        var decoder = FrameDecoder(maxFrameSize: 1024)
        var header = ByteBuffer()
        header.writeFrameHeader(FrameHeader(length: 1025, type: .call, callID: 1))
        decoder.append(header)
        do {
            _ = try decoder.next()
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .frameTooLarge)
            #expect(error.callID == 1)
        }
    }

    @Test("a CALL payload whose header length runs past the frame is malformed")
    func callPayloadBounds() throws {
        var payload = ByteBuffer()
        payload.writeInteger(UInt32(10))
        payload.writeBytes([1, 2, 3])
        #expect(throws: WireError.self) { try CallFramePayload(parsing: payload, callID: 1) }
        #expect(throws: WireError.self) { try CallFramePayload(parsing: ByteBuffer(bytes: [0, 0]), callID: 1) }

        var good = ByteBuffer()
        good.writeInteger(UInt32(2))
        good.writeBytes([7, 8, 9, 10])
        let parsed = try CallFramePayload(parsing: good, callID: 1)
        #expect(Array(parsed.header.readableBytesView) == [7, 8])
        #expect(Array(parsed.message.readableBytesView) == [9, 10])
    }

    @Test("a frame written in place gets its length patched")
    func inPlaceBody() throws {
        var buffer = ByteBuffer()
        buffer.writeFrame(type: .message, callID: 5) { $0.writeBytes([1, 2, 3, 4, 5]) }
        var decoder = FrameDecoder(maxFrameSize: 1024)
        decoder.append(buffer)
        #expect(try decoder.next()?.payload.readableBytes == 5)
    }
}
