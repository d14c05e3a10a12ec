internal import CProtobufC

/// Owns every C allocation made to pack one message: the nested structs, the pointer arrays,
/// the NUL-terminated strings and the bytes.
///
/// A bump allocator over a few chunks; everything is freed at once when the arena is released
/// at the end of the packing scope (or deinitialized), so nothing is freed twice and nothing
/// leaks if a field throws halfway through.
final class ProtoArena {
    private static let chunkSize = 4096
    private static let alignment = 16

    private var chunks: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private var emptyString: UnsafeMutablePointer<CChar>?

    init() {}

    deinit {
        release()
    }

    /// Frees every allocation; the pointers handed out must no longer be used.
    func release() {
        for chunk in chunks {
            chunk.deallocate()
        }
        chunks.removeAll()
        cursor = nil
        remaining = 0
        emptyString = nil
    }

    private func allocateRaw(byteCount: Int, alignment: Int) -> UnsafeMutableRawPointer {
        precondition(alignment <= Self.alignment, "alignment \(alignment) not supported")
        if let cursor {
            let padding = (alignment - Int(bitPattern: cursor) % alignment) % alignment
            if padding + byteCount <= remaining {
                let start = cursor + padding
                self.cursor = start + byteCount
                remaining -= padding + byteCount
                return start
            }
        }
        if byteCount > Self.chunkSize / 4 {
            // Large: its own allocation, so the current chunk stays in use.
            let block = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: Self.alignment)
            chunks.append(block)
            return block
        }
        let chunk = UnsafeMutableRawPointer.allocate(byteCount: Self.chunkSize, alignment: Self.alignment)
        chunks.append(chunk)
        cursor = chunk + byteCount
        remaining = Self.chunkSize - byteCount
        return chunk
    }

    /// Uninitialized memory for `count` values of `T` (at least one, so never null).
    func allocate<T>(_: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let raw = allocateRaw(
            byteCount: MemoryLayout<T>.stride * max(count, 1),
            alignment: MemoryLayout<T>.alignment
        )
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }

    // MARK: Messages

    /// A protobuf-c message filled from `message`, or nil (an absent field) for nil.
    func message<M: CMessageConvertible>(
        _ message: M?,
        field: String
    ) throws(ProtoEncodingError) -> UnsafeMutablePointer<M.CMessage>? {
        guard let message else {
            return nil
        }
        do {
            return try self.message(message)
        } catch {
            throw error.nested(in: field)
        }
    }

    /// A protobuf-c message filled from `message`; errors name fields relative to it.
    func message<M: CMessageConvertible>(_ message: M) throws(ProtoEncodingError) -> UnsafeMutablePointer<M.CMessage> {
        let c = allocate(M.CMessage.self)
        M.cInit(c)
        try message.fill(c, arena: self)
        return c
    }

    func messages<M: CMessageConvertible>(
        _ messages: [M],
        field: String
    ) throws(ProtoEncodingError) -> UnsafeMutablePointer<UnsafeMutablePointer<M.CMessage>?>? {
        if messages.isEmpty {
            return nil
        }
        let array = allocate(UnsafeMutablePointer<M.CMessage>?.self, count: messages.count)
        for (index, message) in messages.enumerated() {
            do {
                (array + index).initialize(to: try self.message(message))
            } catch {
                throw error.nested(in: field, index: index)
            }
        }
        return array
    }

    // MARK: Strings and bytes

    /// A NUL-terminated copy of `string`; throws if it contains NUL, which protobuf-c would
    /// silently truncate.
    func string(_ string: String, field: String, index: Int? = nil) throws(ProtoEncodingError) -> UnsafeMutablePointer<CChar> {
        if string.isEmpty {
            if let emptyString {
                return emptyString
            }
            let empty = allocate(CChar.self)
            empty.initialize(to: 0)
            emptyString = empty
            return empty
        }
        var string = string
        let copy = string.withUTF8 { utf8 -> UnsafeMutablePointer<CChar>? in
            if utf8.contains(0) {
                return nil
            }
            let c = allocate(CChar.self, count: utf8.count + 1)
            utf8.withMemoryRebound(to: CChar.self) { source in
                _ = UnsafeMutableBufferPointer(start: c, count: utf8.count).initialize(from: source)
            }
            (c + utf8.count).initialize(to: 0)
            return c
        }
        guard let copy else {
            throw .nulInString(field: field, index: index)
        }
        return copy
    }

    func strings(_ strings: [String], field: String) throws(ProtoEncodingError) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? {
        if strings.isEmpty {
            return nil
        }
        let array = allocate(UnsafeMutablePointer<CChar>?.self, count: strings.count)
        for (index, string) in strings.enumerated() {
            (array + index).initialize(to: try self.string(string, field: field, index: index))
        }
        return array
    }

    func bytes(_ bytes: [UInt8]) -> ProtobufCBinaryData {
        if bytes.isEmpty {
            return ProtobufCBinaryData(len: 0, data: nil)
        }
        let data = allocate(UInt8.self, count: bytes.count)
        _ = UnsafeMutableBufferPointer(start: data, count: bytes.count).initialize(from: bytes)
        return ProtobufCBinaryData(len: bytes.count, data: data)
    }

    func bytesArray(_ values: [[UInt8]]) -> UnsafeMutablePointer<ProtobufCBinaryData>? {
        if values.isEmpty {
            return nil
        }
        let array = allocate(ProtobufCBinaryData.self, count: values.count)
        for (index, value) in values.enumerated() {
            (array + index).initialize(to: bytes(value))
        }
        return array
    }

    // MARK: Scalars

    /// A copy of repeated numbers, whose Swift and C types are the same.
    func array<T: BitwiseCopyable>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        if values.isEmpty {
            return nil
        }
        let array = allocate(T.self, count: values.count)
        _ = UnsafeMutableBufferPointer(start: array, count: values.count).initialize(from: values)
        return array
    }

    func bools(_ values: [Bool]) -> UnsafeMutablePointer<protobuf_c_boolean>? {
        array(values.map { $0 ? 1 : 0 })
    }

    func enumValues<E: ProtoEnum, C: RawRepresentable>(_ values: [E]) -> UnsafeMutablePointer<C>?
    where C.RawValue: FixedWidthInteger {
        if values.isEmpty {
            return nil
        }
        let array = allocate(C.self, count: values.count)
        for (index, value) in values.enumerated() {
            (array + index).initialize(to: ProtoC.cEnum(value))
        }
        return array
    }
}
