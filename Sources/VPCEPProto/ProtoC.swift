internal import CProtobufC

/// The generic half of the conversion between generated messages and protobuf-c; the generated
/// half is each message's `CMessageConvertible` conformance.
enum ProtoC {
    // MARK: Decoding

    /// Unpacks `bytes` with protobuf-c's default allocator and copies the result into Swift values
    /// before freeing it.
    static func decode<M: CMessageConvertible>(_ bytes: UnsafeRawBufferPointer) throws(ProtoDecodingError) -> M {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            return M()  // proto3: the empty encoding is the default message
        }
        let descriptor = self.descriptor(of: M.self)
        guard
            let unpacked = protobuf_c_message_unpack(
                descriptor,
                nil,
                bytes.count,
                base.assumingMemoryBound(to: UInt8.self)
            )
        else {
            throw .malformed(M.protoMessageName)
        }
        defer {
            protobuf_c_message_free_unpacked(unpacked, nil)
        }
        if let path = pathOfStringWithNUL(in: bytes, descriptor: descriptor) {
            throw ProtoDecodingError.nulInString(field: path).inMessage(M.protoMessageName)
        }
        do {
            return try M(c: UnsafeRawPointer(unpacked).assumingMemoryBound(to: M.CMessage.self))
        } catch {
            throw error.inMessage(M.protoMessageName)
        }
    }

    /// The message's static protobuf-c descriptor, read from a struct `*__init()` filled in; Swift
    /// cannot take the address of the imported `const` descriptor global without a copy.
    private static func descriptor<M: CMessageConvertible>(of _: M.Type) -> UnsafePointer<ProtobufCMessageDescriptor> {
        withUnsafeTemporaryAllocation(of: M.CMessage.self, capacity: 1) { buffer in
            let c = buffer.baseAddress!
            M.cInit(c)
            return UnsafeRawPointer(c).load(as: ProtobufCMessage.self).descriptor
        }
    }

    static func message<M: CMessageConvertible>(
        _ c: UnsafeMutablePointer<M.CMessage>?,
        as _: M.Type,
        field: String
    ) throws(ProtoDecodingError) -> M? {
        guard let c else {
            return nil
        }
        do {
            return try M(c: c)
        } catch {
            throw error.nested(in: field)
        }
    }

    static func messages<M: CMessageConvertible>(
        _ c: UnsafeMutablePointer<UnsafeMutablePointer<M.CMessage>?>?,
        count: Int,
        as _: M.Type,
        field: String
    ) throws(ProtoDecodingError) -> [M] {
        guard let c, count > 0 else {
            return []
        }
        var result: [M] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            guard let element = c[index] else {
                result.append(M())
                continue
            }
            do {
                result.append(try M(c: element))
            } catch {
                throw error.nested(in: field, index: index)
            }
        }
        return result
    }

    static func string(_ c: UnsafePointer<CChar>?, field: String, index: Int? = nil) throws(ProtoDecodingError) -> String {
        guard let c else {
            return ""
        }
        if c.pointee == 0 {
            return ""
        }
        guard let string = String(validatingCString: c) else {
            throw ProtoDecodingError.invalidUTF8(field: ProtoPath.join(field, index, nil))
        }
        return string
    }

    static func strings(
        _ c: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
        count: Int,
        field: String
    ) throws(ProtoDecodingError) -> [String] {
        guard let c, count > 0 else {
            return []
        }
        var result: [String] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            result.append(try string(c[index], field: field, index: index))
        }
        return result
    }

    static func bytes(_ c: ProtobufCBinaryData) -> [UInt8] {
        guard let data = c.data, c.len > 0 else {
            return []
        }
        return Array(UnsafeBufferPointer(start: data, count: c.len))
    }

    static func bytesArray(_ c: UnsafeMutablePointer<ProtobufCBinaryData>?, count: Int) -> [[UInt8]] {
        guard let c, count > 0 else {
            return []
        }
        return UnsafeBufferPointer(start: c, count: count).map(bytes)
    }

    static func array<T: BitwiseCopyable>(_ c: UnsafeMutablePointer<T>?, count: Int) -> [T] {
        guard let c, count > 0 else {
            return []
        }
        return Array(UnsafeBufferPointer(start: c, count: count))
    }

    static func bools(_ c: UnsafeMutablePointer<protobuf_c_boolean>?, count: Int) -> [Bool] {
        array(c, count: count).map { $0 != 0 }
    }

    static func enumValue<E: ProtoEnum, C: RawRepresentable>(_ c: C) -> E where C.RawValue: FixedWidthInteger {
        E(rawValue: Int32(truncatingIfNeeded: c.rawValue))
    }

    static func enumValues<E: ProtoEnum, C: RawRepresentable>(
        _ c: UnsafeMutablePointer<C>?,
        count: Int
    ) -> [E] where C.RawValue: FixedWidthInteger {
        guard let c, count > 0 else {
            return []
        }
        return UnsafeBufferPointer(start: c, count: count).map { enumValue($0) }
    }

    // MARK: Encoding

    /// The C enum value with the same number; C enums import with a `UInt32` (or `Int32`) raw
    /// value and accept any bit pattern, so unknown values survive.
    static func cEnum<E: ProtoEnum, C: RawRepresentable>(_ value: E) -> C where C.RawValue: FixedWidthInteger {
        C(rawValue: C.RawValue(truncatingIfNeeded: value.rawValue))!
    }

    static func encode<M: CMessageConvertible>(_ message: M) throws(ProtoEncodingError) -> [UInt8] {
        let arena = ProtoArena()
        defer { arena.release() }
        let c = try pack(message, arena: arena)
        let size = protobuf_c_message_get_packed_size(c)
        if size == 0 {
            return []
        }
        var packed = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            packed = protobuf_c_message_pack(c, buffer.baseAddress!)
            initialized = min(packed, size)
        }
        guard packed == size else {
            throw .sizeMismatch(M.protoMessageName, expected: size, packed: packed)
        }
        return bytes
    }

    static func withEncoded<M: CMessageConvertible, R>(
        _ message: M,
        _ body: (UnsafeRawBufferPointer) throws -> R
    ) throws -> R {
        let arena = ProtoArena()
        defer { arena.release() }
        let c = try pack(message, arena: arena)
        let size = protobuf_c_message_get_packed_size(c)
        if size == 0 {
            return try body(UnsafeRawBufferPointer(start: nil, count: 0))
        }
        return try withUnsafeTemporaryAllocation(byteCount: size, alignment: 1) { buffer in
            let out = buffer.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let packed = protobuf_c_message_pack(c, out)
            guard packed == size else {
                throw ProtoEncodingError.sizeMismatch(M.protoMessageName, expected: size, packed: packed)
            }
            return try body(UnsafeRawBufferPointer(buffer))
        }
    }

    /// Builds the protobuf-c message for `message` in `arena`, as the `ProtobufCMessage*` the
    /// generic protobuf-c functions take.
    private static func pack<M: CMessageConvertible>(
        _ message: M,
        arena: ProtoArena
    ) throws(ProtoEncodingError) -> UnsafePointer<ProtobufCMessage> {
        do {
            let c = try arena.message(message)
            return UnsafeRawPointer(c).assumingMemoryBound(to: ProtobufCMessage.self)
        } catch {
            throw error.inMessage(M.protoMessageName)
        }
    }
}
