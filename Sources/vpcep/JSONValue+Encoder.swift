/// Builds a `JSONValue` through `Encodable`, keeping keys in the order `encode(to:)` writes them
/// (schema order for generated messages), so the printed JSON reads like `proto/`.
///
/// Foundation's `JSONEncoder` is not used because the CLI's JSON text (key order, spacing,
/// escapes) is a contract with scripts that it would change.
extension JSONValue {
    init(encoding value: some Encodable) {
        let root = JSONSlot()
        do {
            try JSONSlot.encode(value, into: root, codingPath: [])
        } catch {
            // The containers below never throw, and generated `encode(to:)` only throws what they do.
            preconditionFailure("encoding to JSONValue cannot fail: \(error)")
        }
        self = root.value
    }
}

/// One value under construction; containers share it by reference, as `Encoder` requires.
private final class JSONSlot {
    enum Content {
        case unset
        case value(JSONValue)
        case object([(String, JSONSlot)])
        case array([JSONSlot])
    }

    var content = Content.unset

    var value: JSONValue {
        switch content {
        case .unset: .object([])
        case .value(let value): value
        case .object(let fields): .object(fields.map { ($0.0, $0.1.value) })
        case .array(let items): .array(items.map(\.value))
        }
    }

    /// Scalars directly; anything else through its own `encode(to:)`.
    static func encode(_ value: any Encodable, into slot: JSONSlot, codingPath: [any CodingKey]) throws {
        switch value {
        case let string as String: slot.content = .value(.string(string))
        case let bool as Bool: slot.content = .value(.bool(bool))
        case let number as any BinaryInteger: slot.content = .value(.number("\(number)"))
        case let number as Double: slot.content = .value(.number("\(number)"))
        case let number as Float: slot.content = .value(.number("\(number)"))
        default: try value.encode(to: SlotEncoder(slot: slot, codingPath: codingPath))
        }
    }
}

private struct SlotEncoder: Encoder {
    let slot: JSONSlot
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .object = slot.content {} else { slot.content = .object([]) }
        return KeyedEncodingContainer(KeyedSlotContainer<Key>(slot: slot, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        if case .array = slot.content {} else { slot.content = .array([]) }
        return UnkeyedSlotContainer(slot: slot, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleSlotContainer(slot: slot, codingPath: codingPath)
    }
}

private struct KeyedSlotContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let slot: JSONSlot
    let codingPath: [any CodingKey]

    private func child(_ key: Key) -> JSONSlot {
        let child = JSONSlot()
        guard case .object(var fields) = slot.content else { preconditionFailure("not an object") }
        // A key written twice keeps its first place and its last value.
        if let index = fields.firstIndex(where: { $0.0 == key.stringValue }) {
            fields[index].1 = child
        } else {
            fields.append((key.stringValue, child))
        }
        slot.content = .object(fields)
        return child
    }

    mutating func encodeNil(forKey key: Key) throws {
        child(key).content = .value(.null)
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try JSONSlot.encode(value, into: child(key), codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        SlotEncoder(slot: child(key), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        SlotEncoder(slot: child(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        SlotEncoder(slot: child(Key(stringValue: "super")!), codingPath: codingPath)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        SlotEncoder(slot: child(key), codingPath: codingPath + [key])
    }
}

private struct UnkeyedSlotContainer: UnkeyedEncodingContainer {
    let slot: JSONSlot
    let codingPath: [any CodingKey]

    var count: Int {
        guard case .array(let items) = slot.content else { return 0 }
        return items.count
    }

    private func next() -> JSONSlot {
        let child = JSONSlot()
        guard case .array(var items) = slot.content else { preconditionFailure("not an array") }
        items.append(child)
        slot.content = .array(items)
        return child
    }

    mutating func encodeNil() throws {
        next().content = .value(.null)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try JSONSlot.encode(value, into: next(), codingPath: codingPath)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        SlotEncoder(slot: next(), codingPath: codingPath).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        SlotEncoder(slot: next(), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        SlotEncoder(slot: next(), codingPath: codingPath)
    }
}

private struct SingleSlotContainer: SingleValueEncodingContainer {
    let slot: JSONSlot
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws {
        slot.content = .value(.null)
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try JSONSlot.encode(value, into: slot, codingPath: codingPath)
    }
}
