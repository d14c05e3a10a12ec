/// A framing error: the byte stream cannot be trusted past it, so the connection ends (after a
/// GOAWAY saying why).
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Value: String { case frameTooLarge, unknownFrameType, reservedBitsSet, malformedFrame }
        private let value: Value
        public static let frameTooLarge = Code(value: .frameTooLarge)
        public static let unknownFrameType = Code(value: .unknownFrameType)
        public static let reservedBitsSet = Code(value: .reservedBitsSet)
        public static let malformedFrame = Code(value: .malformedFrame)
        public var description: String { value.rawValue }
    }

    public var code: Code
    public var message: String
    /// The call the bad frame named, when it named one.
    public var callID: UInt32

    public init(code: Code, message: String, callID: UInt32) {
        self.code = code
        self.message = message
        self.callID = callID
    }

    public var description: String { "\(code): \(message)" }

    public static func frameTooLarge(length: Int, limit: Int, callID: UInt32) -> WireError {
        WireError(code: .frameTooLarge, message: "frame of \(length) bytes exceeds the limit of \(limit) bytes",
                  callID: callID)
    }

    public static func unknownFrameType(_ type: UInt8, callID: UInt32) -> WireError {
        WireError(code: .unknownFrameType, message: "unknown frame type 0x\(String(type, radix: 16))", callID: callID)
    }

    public static func reservedBitsSet(callID: UInt32) -> WireError {
        WireError(code: .reservedBitsSet, message: "reserved header bits must be zero", callID: callID)
    }

    public static func malformed(_ message: String, callID: UInt32) -> WireError {
        WireError(code: .malformedFrame, message: message, callID: callID)
    }
}
