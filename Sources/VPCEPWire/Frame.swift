import NIOCore

/// One decoded frame: its header and exactly `header.length` bytes of payload.
public struct Frame: Sendable, Hashable {
    public var header: FrameHeader
    public var payload: ByteBuffer

    public init(type: FrameType, flags: FrameFlags = [], callID: UInt32, payload: ByteBuffer) {
        self.header = FrameHeader(length: UInt32(payload.readableBytes), type: type, flags: flags, callID: callID)
        self.payload = payload
    }

    public var type: FrameType { header.type }
    public var flags: FrameFlags { header.flags }
    public var callID: UInt32 { header.callID }
}

extension ByteBuffer {
    /// Appends a whole frame: header then payload.
    public mutating func writeFrame(type: FrameType, flags: FrameFlags = [], callID: UInt32, payload: ByteBuffer) {
        writeFrameHeader(FrameHeader(length: UInt32(payload.readableBytes), type: type, flags: flags, callID: callID))
        writeImmutableBuffer(payload)
    }

    /// Appends a frame whose payload `body` writes in place, then patches the length; saves a copy
    /// for messages that are serialized straight into the outbound buffer.
    public mutating func writeFrame(
        type: FrameType, flags: FrameFlags = [], callID: UInt32, body: (inout ByteBuffer) throws -> Void
    ) rethrows {
        let headerIndex = writerIndex
        writeFrameHeader(FrameHeader(length: 0, type: type, flags: flags, callID: callID))
        let start = writerIndex
        do {
            try body(&self)
        } catch {
            moveWriterIndex(to: headerIndex)
            throw error
        }
        setInteger(UInt32(writerIndex - start), at: headerIndex)
    }
}
