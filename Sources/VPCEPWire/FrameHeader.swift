import NIOCore

/// The fixed 12-byte header in front of every frame (docs/PROTOCOL.md §3), all integers big-endian:
///
///     0        4      5       6          8         12
///     | length | type | flags | reserved | call id |
///
/// `length` counts the payload only.
public struct FrameHeader: Sendable, Hashable {
    public static let size = 12

    public var length: UInt32
    public var type: FrameType
    public var flags: FrameFlags
    public var callID: UInt32

    public init(length: UInt32, type: FrameType, flags: FrameFlags = [], callID: UInt32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.callID = callID
    }
}

/// A frame's type. Open, so that a peer's unknown type reaches the decoder as a value it can refuse.
public struct FrameType: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Client → server: starts a call. Payload: u32 header length, `CallHeader`, request message.
    public static let call = FrameType(rawValue: 0x01)
    /// Server → client: one response message. With `.endOK` it also ends the call with status OK.
    public static let message = FrameType(rawValue: 0x02)
    /// Server → client: ends the call. Payload: a `Status` message.
    public static let status = FrameType(rawValue: 0x03)
    /// Client → server: the caller gave up on the call. Empty payload.
    public static let cancel = FrameType(rawValue: 0x04)
    /// Either way, on call id 0: liveness probe with 8 opaque bytes, echoed with `.ack`.
    public static let ping = FrameType(rawValue: 0x05)
    /// Server → client, on call id 0: no new calls on this connection. Payload: u32 last accepted
    /// call id, then a `Status` saying why.
    public static let goAway = FrameType(rawValue: 0x06)

    public static let known: Set<FrameType> = [.call, .message, .status, .cancel, .ping, .goAway]

    public var description: String {
        switch self {
        case .call: "CALL"
        case .message: "MESSAGE"
        case .status: "STATUS"
        case .cancel: "CANCEL"
        case .ping: "PING"
        case .goAway: "GOAWAY"
        default: "UNKNOWN(0x\(String(rawValue, radix: 16)))"
        }
    }
}

public struct FrameFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// On MESSAGE: the call ended with OK right after this message (a unary call's one frame).
    public static let endOK = FrameFlags(rawValue: 0x01)
    /// On PING: this is the answer.
    public static let ack = FrameFlags(rawValue: 0x01)
}

extension ByteBuffer {
    /// Reads a header if 12 bytes are readable; leaves the reader index alone otherwise.
    public mutating func readFrameHeader() -> (header: FrameHeader, reserved: UInt16)? {
        guard let (length, type, flags, reserved, callID) = readMultipleIntegers(
            as: (UInt32, UInt8, UInt8, UInt16, UInt32).self
        ) else { return nil }
        let header = FrameHeader(length: length, type: FrameType(rawValue: type),
                                 flags: FrameFlags(rawValue: flags), callID: callID)
        return (header, reserved)
    }

    public mutating func writeFrameHeader(_ header: FrameHeader) {
        writeMultipleIntegers(header.length, header.type.rawValue, header.flags.rawValue, UInt16(0), header.callID)
    }
}
