public import Configuration
import Foundation
import TOMLKit

/// A swift-configuration provider over one TOML file, read once. Nested tables become dotted keys
/// (`[profile.alice]` + `server = …` is the key `profile.alice.server`), as swift-configuration's own
/// file providers flatten JSON and YAML.
///
/// Not `FileProvider<Snapshot>`: that one is created asynchronously and names neither the file nor
/// the line in its errors, and the CLI resolves its settings synchronously, before any client exists.
public struct TOMLFileProvider: Sendable {
    /// The file the values come from, as given.
    public let path: String
    private let currentSnapshot: TOMLSnapshot

    /// Reads and parses the file at `path`.
    public init(path: String) throws(TOMLFileError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TOMLFileError(path: path, message: "cannot read the file")
        }
        try self.init(parsing: String(decoding: data, as: UTF8.self), path: path)
    }

    /// Parses `text`; `path` names it in errors and in the provider's name.
    public init(parsing text: String, path: String) throws(TOMLFileError) {
        self.path = path
        // TOMLKit 0.6.0's TOMLTable never frees its toml++ table (it has no deinit): parse once, at
        // start-up, and keep only Swift values.
        let table: TOMLTable
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw TOMLFileError(path: path, line: error.source.begin.line, message: error.description)
        } catch {
            throw TOMLFileError(path: path, message: "\(error)")
        }
        var values: [String: ConfigValue] = [:]
        var tables: [String] = []
        try Self.flatten(table, prefix: "", path: path, into: &values, tables: &tables)
        currentSnapshot = TOMLSnapshot(providerName: "TOMLFileProvider[\(path)]", path: path, values: values, tables: tables)
    }

    /// Every key that holds a value (not a table), dotted, sorted.
    public var keys: [String] { currentSnapshot.values.keys.sorted() }

    /// Every table, dotted (`profile`, `profile.alice`), sorted.
    public var tables: [String] { currentSnapshot.tables.sorted() }

    private static func flatten(_ table: TOMLTable, prefix: String, path: String, into values: inout [String: ConfigValue],
                                tables: inout [String]) throws(TOMLFileError) {
        for (name, node) in table {
            let key = prefix + name
            if let nested = node.table {
                tables.append(key)
                try flatten(nested, prefix: key + ".", path: path, into: &values, tables: &tables)
            } else if let content = content(of: node) {
                values[key] = ConfigValue(content, isSecret: false)
            } else {
                throw TOMLFileError(path: path, message: "\(key): arrays must hold strings, integers, floats or booleans, all of one type")
            }
        }
    }

    /// The value as swift-configuration content; dates and times stay the text TOML wrote.
    private static func content(of node: any TOMLValueConvertible) -> ConfigContent? {
        if let string = node.string { return .string(string) }
        if let int = node.int { return .int(int) }
        if let double = node.double { return .double(double) }
        if let bool = node.bool { return .bool(bool) }
        if node.type == .date || node.type == .time || node.type == .dateTime { return .string(node.debugDescription) }
        guard let array = node.array else { return nil }
        let items = array.map { content(of: $0) }
        // An array of one type. An empty one is kept as strings; the snapshot gives it as any array type.
        func all<Item>(_ pick: (ConfigContent?) -> Item?) -> [Item]? {
            var picked: [Item] = []
            for item in items {
                guard let value = pick(item) else { return nil }
                picked.append(value)
            }
            return picked
        }
        if let strings = all({ if case .string(let value)? = $0 { value } else { nil } }) { return .stringArray(strings) }
        if let ints = all({ if case .int(let value)? = $0 { value } else { nil } }) { return .intArray(ints) }
        if let doubles = all({ if case .double(let value)? = $0 { value } else { nil } }) { return .doubleArray(doubles) }
        if let bools = all({ if case .bool(let value)? = $0 { value } else { nil } }) { return .boolArray(bools) }
        return nil
    }
}

extension TOMLFileProvider: ConfigProvider {
    public var providerName: String { currentSnapshot.providerName }

    public func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        try currentSnapshot.value(forKey: key, type: type)
    }

    // swift-configuration is built with NonisolatedNonsendingByDefault: its protocol's async
    // requirements and their handlers run on the caller's executor, and the witnesses must say so.

    // The file is read once: fetching has nothing fresher to go to.
    nonisolated(nonsending) public func fetchValue(forKey key: AbsoluteConfigKey, type: ConfigType) async throws -> LookupResult {
        try value(forKey: key, type: type)
    }

    nonisolated(nonsending) public func watchValue<Return: ~Copyable>(
        forKey key: AbsoluteConfigKey,
        type: ConfigType,
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<Result<LookupResult, any Error>, Never>) async throws -> Return
    ) async throws -> Return {
        try await watchValueFromValue(forKey: key, type: type, updatesHandler: updatesHandler)
    }

    public func snapshot() -> any ConfigSnapshot { currentSnapshot }

    nonisolated(nonsending) public func watchSnapshot<Return: ~Copyable>(
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<any ConfigSnapshot, Never>) async throws -> Return
    ) async throws -> Return {
        try await watchSnapshotFromSnapshot(updatesHandler: updatesHandler)
    }
}

/// The values of one TOML file, flattened to dotted keys.
struct TOMLSnapshot: ConfigSnapshot {
    let providerName: String
    let path: String
    let values: [String: ConfigValue]
    let tables: [String]

    func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        let encodedKey = key.components.joined(separator: ".")
        guard let value = values[encodedKey] else { return LookupResult(encodedKey: encodedKey, value: nil) }
        // A number or a boolean where text is asked for is taken as its text (`timeout = 5`,
        // `shutdown_grace = 10`, `store_read_leases = false`): the settings are validated as text by
        // their readers, as files of earlier releases expect.
        switch (value.content, type) {
        case (.bool(let flag), .string):
            return LookupResult(encodedKey: encodedKey, value: ConfigValue(.string(flag ? "true" : "false"), isSecret: value.isSecret))
        case (.int(let number), .string):
            return LookupResult(encodedKey: encodedKey, value: ConfigValue(.string(String(number)), isSecret: value.isSecret))
        case (.double(let number), .string):
            return LookupResult(encodedKey: encodedKey, value: ConfigValue(.string(String(number)), isSecret: value.isSecret))
        // TOML has no bytes: they are base64 text, as in swift-configuration's JSON and YAML files.
        case (.string(let text), .bytes):
            guard let bytes = Data(base64Encoded: text) else { throw mismatch(encodedKey, type) }
            return LookupResult(encodedKey: encodedKey, value: ConfigValue(.bytes(Array(bytes)), isSecret: value.isSecret))
        case (.stringArray(let texts), .byteChunkArray):
            var chunks: [[UInt8]] = []
            for text in texts {
                guard let bytes = Data(base64Encoded: text) else { throw mismatch(encodedKey, type) }
                chunks.append(Array(bytes))
            }
            return LookupResult(encodedKey: encodedKey, value: ConfigValue(.byteChunkArray(chunks), isSecret: value.isSecret))
        // An empty array has no element type; it is an empty array of whatever is asked for.
        case (.stringArray([]), .intArray):
            return LookupResult(encodedKey: encodedKey, value: ConfigValue(.intArray([]), isSecret: value.isSecret))
        case (.stringArray([]), .doubleArray):
            return LookupResult(encodedKey: encodedKey, value: ConfigValue(.doubleArray([]), isSecret: value.isSecret))
        case (.stringArray([]), .boolArray):
            return LookupResult(encodedKey: encodedKey, value: ConfigValue(.boolArray([]), isSecret: value.isSecret))
        case (.string, .string), (.int, .int), (.double, .double), (.bool, .bool), (.bytes, .bytes),
             (.stringArray, .stringArray), (.intArray, .intArray), (.doubleArray, .doubleArray), (.boolArray, .boolArray),
             (.byteChunkArray, .byteChunkArray):
            return LookupResult(encodedKey: encodedKey, value: value)
        default:
            throw mismatch(encodedKey, type)
        }
    }

    private func mismatch(_ encodedKey: String, _ type: ConfigType) -> TOMLFileError {
        TOMLFileError(path: path, message: "\(encodedKey) must be \(Self.describe(type))")
    }

    private static func describe(_ type: ConfigType) -> String {
        switch type {
        case .string: "a string"
        case .int: "an integer"
        case .double: "a number"
        case .bool: "true or false"
        case .stringArray: "an array of strings"
        case .intArray: "an array of integers"
        case .doubleArray: "an array of numbers"
        case .boolArray: "an array of booleans"
        case .bytes: "base64 text"
        case .byteChunkArray: "an array of base64 texts"
        }
    }
}

/// A configuration file that cannot be used, with the place and the reason.
public struct TOMLFileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var path: String
    public var line: Int?
    public var message: String

    public init(path: String, line: Int? = nil, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}
