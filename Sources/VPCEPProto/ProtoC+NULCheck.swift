internal import CProtobufC
#if canImport(Glibc)
import Glibc
#endif

extension ProtoC {
    /// The path of the first string field in `bytes` that contains a NUL byte, or nil.
    ///
    /// protobuf-c unpacks every string into a NUL-terminated copy, so a NUL on the wire (legal
    /// protobuf, e.g. from another implementation) would silently cut the string short. This
    /// walks an encoding protobuf-c has already accepted, guided by the same descriptors, and
    /// only looks at the length-delimited fields that are strings or messages.
    static func pathOfStringWithNUL(
        in bytes: UnsafeRawBufferPointer,
        descriptor: UnsafePointer<ProtobufCMessageDescriptor>
    ) -> String? {
        // No zero byte at all: no string can hold one (most messages; the walk below allocates).
        guard let base = bytes.baseAddress, memchr(base, 0, bytes.count) != nil else { return nil }
        return scan(bytes, descriptor, depth: 0)
    }

    private static let maxDepth = 100

    private static func scan(
        _ bytes: UnsafeRawBufferPointer,
        _ descriptor: UnsafePointer<ProtobufCMessageDescriptor>,
        depth: Int
    ) -> String? {
        var reader = WireReader(bytes)
        var repeatedIndex: [UInt32: Int] = [:]
        while !reader.isAtEnd {
            // protobuf-c accepted the input, so a failure to read here is not expected; stop
            // rather than guess.
            guard let key = reader.varint() else {
                return nil
            }
            switch key & 7 {
            case 0:
                guard reader.varint() != nil else { return nil }
            case 1:
                guard reader.skip(8) else { return nil }
            case 5:
                guard reader.skip(4) else { return nil }
            case 2:
                guard let length = reader.varint(), let payload = reader.take(length) else {
                    return nil
                }
                guard
                    key >> 3 <= UInt64(UInt32.max),
                    let field = protobuf_c_message_descriptor_get_field(descriptor, UInt32(key >> 3))
                else {
                    continue  // an unknown field
                }
                let isString = field.pointee.type == PROTOBUF_C_TYPE_STRING
                let isMessage = field.pointee.type == PROTOBUF_C_TYPE_MESSAGE
                guard isString || isMessage else {
                    continue
                }
                var index: Int?
                if field.pointee.label == PROTOBUF_C_LABEL_REPEATED {
                    let next = repeatedIndex[field.pointee.id, default: 0]
                    repeatedIndex[field.pointee.id] = next + 1
                    index = next
                }
                if isString {
                    if payload.contains(0) {
                        return ProtoPath.join(String(cString: field.pointee.name), index, nil)
                    }
                } else if depth < maxDepth, let nested = field.pointee.descriptor {
                    let nestedDescriptor = nested.assumingMemoryBound(to: ProtobufCMessageDescriptor.self)
                    if let path = scan(payload, nestedDescriptor, depth: depth + 1) {
                        return ProtoPath.join(String(cString: field.pointee.name), index, path)
                    }
                }
            default:
                return nil  // groups; protobuf-c does not produce them
            }
        }
        return nil
    }
}

/// Reads protobuf wire-format primitives from a buffer; every read is bounds-checked.
private struct WireReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    var isAtEnd: Bool {
        offset >= bytes.count
    }

    mutating func varint() -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 {
                return result
            }
            shift += 7
        }
        return nil
    }

    mutating func skip(_ count: Int) -> Bool {
        guard bytes.count - offset >= count else {
            return false
        }
        offset += count
        return true
    }

    mutating func take(_ count: UInt64) -> UnsafeRawBufferPointer? {
        guard count <= UInt64(bytes.count - offset) else {
            return nil
        }
        let start = offset
        offset += Int(count)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
    }
}
