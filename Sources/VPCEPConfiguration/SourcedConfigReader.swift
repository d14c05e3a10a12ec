public import Configuration

/// A `ConfigReader` over layers of providers, highest precedence first, that also says which layer
/// each value came from. The lookup and its precedence are swift-configuration's; this only names
/// the provider that answered, through the reader's access reporting.
public struct SourcedConfigReader: Sendable {
    /// One provider, and how to name a value it supplies for `--print-config` or `config show`.
    public struct Layer: Sendable {
        public var provider: any ConfigProvider
        /// The source of a value, from the key as the provider spells it (e.g. `VPCEP_LISTEN`).
        public var source: @Sendable (_ key: String, _ encodedKey: String) -> String

        public init(_ provider: any ConfigProvider, source: @escaping @Sendable (_ key: String, _ encodedKey: String) -> String) {
            self.provider = provider
            self.source = source
        }
    }

    /// A value and where it came from.
    public struct Sourced<Value: Sendable>: Sendable {
        public var value: Value
        public var source: String
    }

    private let layers: [Layer]
    private let reader: ConfigReader
    private let recorder = ConfigSourceRecorder()

    public init(_ layers: [Layer]) {
        self.layers = layers
        reader = ConfigReader(providers: layers.map(\.provider), accessReporter: recorder)
    }

    /// The value of `key` from the first layer that has one, or nil; throws when that layer holds
    /// a value of another type.
    public func string(_ key: String) throws(ConfigSourceRecorder.LookupError) -> Sourced<String>? {
        let value = reader.string(forKey: ConfigKey([key]))
        return try sourced(value, key: key)
    }

    public func stringArray(_ key: String) throws(ConfigSourceRecorder.LookupError) -> Sourced<[String]>? {
        let value = reader.stringArray(forKey: ConfigKey([key]))
        return try sourced(value, key: key)
    }

    private func sourced<Value>(_ value: Value?, key: String) throws(ConfigSourceRecorder.LookupError) -> Sourced<Value>? {
        guard let answer = try recorder.answer(for: key), let value else { return nil }
        return Sourced(value: value, source: layers[answer.providerIndex].source(key, answer.encodedKey))
    }
}
