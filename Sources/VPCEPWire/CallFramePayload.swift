import NIOCore

/// The payload of a CALL frame: u32 length of the `CallHeader` bytes, those bytes, then the
/// request message (docs/PROTOCOL.md §4).
public struct CallFramePayload: Sendable {
    public var header: ByteBuffer
    public var message: ByteBuffer

    public init(parsing payload: ByteBuffer, callID: UInt32) throws(WireError) {
        var payload = payload
        guard let headerLength = payload.readInteger(as: UInt32.self) else {
            throw .malformed("CALL payload shorter than its 4-byte header length", callID: callID)
        }
        guard let header = payload.readSlice(length: Int(headerLength)) else {
            throw .malformed("CALL header length \(headerLength) runs past the frame", callID: callID)
        }
        self.header = header
        self.message = payload
    }
}

/// The payload of a GOAWAY frame: u32 last call id the server accepted, then a `Status`.
public struct GoAwayPayload: Sendable {
    public var lastCallID: UInt32
    public var status: ByteBuffer

    public init(parsing payload: ByteBuffer) throws(WireError) {
        var payload = payload
        guard let lastCallID = payload.readInteger(as: UInt32.self) else {
            throw .malformed("GOAWAY payload shorter than 4 bytes", callID: 0)
        }
        self.lastCallID = lastCallID
        self.status = payload
    }
}
