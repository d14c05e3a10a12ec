import NIOCore

/// Cuts frames out of a byte stream. Feed it whatever arrived, then take frames until it returns
/// nil; it checks each header before waiting for the payload, so an oversize frame is refused
/// without buffering it.
public struct FrameDecoder: Sendable {
    public var maxFrameSize: Int
    private var buffer: ByteBuffer?

    public init(maxFrameSize: Int) {
        self.maxFrameSize = maxFrameSize
    }

    /// Bytes received but not yet part of a returned frame.
    public var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    public mutating func append(_ bytes: ByteBuffer) {
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = bytes
        } else {
            var incoming = bytes
            buffer!.writeBuffer(&incoming)
        }
    }

    /// The next complete frame, nil when more bytes are needed, or a `WireError` that makes the
    /// whole connection unusable (framing is lost after it).
    public mutating func next() throws(WireError) -> Frame? {
        guard var view = buffer, view.readableBytes >= FrameHeader.size else { return nil }
        guard let (header, reserved) = view.readFrameHeader() else { return nil }
        guard reserved == 0 else { throw .reservedBitsSet(callID: header.callID) }
        guard FrameType.known.contains(header.type) else {
            throw .unknownFrameType(header.type.rawValue, callID: header.callID)
        }
        guard header.length <= maxFrameSize else {
            throw .frameTooLarge(length: Int(header.length), limit: maxFrameSize, callID: header.callID)
        }
        guard let payload = view.readSlice(length: Int(header.length)) else { return nil }
        buffer = view.readableBytes == 0 ? nil : view
        if buffer != nil, buffer!.readerIndex > 64 * 1024 { buffer!.discardReadBytes() }
        return Frame(header: header, payload: payload)
    }
}

extension Frame {
    init(header: FrameHeader, payload: ByteBuffer) {
        self.header = header
        self.payload = payload
    }
}
