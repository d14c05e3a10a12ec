public import Configuration
import Synchronization

/// Remembers, for each key a `ConfigReader` looked up, which of its providers answered, so that a
/// setting can be shown with its source (`vpcep-server --print-config`, `vpcep config show`) while the
/// precedence stays swift-configuration's: the first provider with a value wins.
public final class ConfigSourceRecorder: AccessReporter, Sendable {
    /// Where a value came from.
    public struct Answer: Sendable, Hashable {
        /// The position of the provider in the list the reader was made with.
        public var providerIndex: Int
        /// The key as that provider spells it (an environment variable's name, a dotted TOML key).
        public var encodedKey: String
    }

    /// A provider refused the value it holds for a key (a TOML array where text belongs, say).
    public struct LookupError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    private enum Outcome {
        case answered(Answer?)
        case failed(String)
    }

    private let lookups = Mutex<[String: Outcome]>([:])

    public init() {}

    public func report(_ event: AccessEvent) {
        // The reader tries its providers in order and stops at the first value or error.
        var outcome = Outcome.answered(nil)
        for (index, providerResult) in event.providerResults.enumerated() {
            if case .failure(let error) = providerResult.result {
                outcome = .failed("\(error)")
                break
            }
            if case .success(let lookup) = providerResult.result, lookup.value != nil {
                outcome = .answered(Answer(providerIndex: index, encodedKey: lookup.encodedKey))
                break
            }
        }
        if let conversionError = event.conversionError { outcome = .failed("\(conversionError)") }
        let key = event.metadata.key.components.joined(separator: ".")
        lookups.withLock { $0[key] = outcome }
    }

    /// The provider that answered the last lookup of `key` (dotted), nil if none had a value or the
    /// key was never looked up; throws when the answering provider refused its value.
    public func answer(for key: String) throws(LookupError) -> Answer? {
        switch lookups.withLock({ $0[key] }) {
        case .answered(let answer)?: return answer
        case .failed(let message)?: throw LookupError(description: message)
        case nil: return nil
        }
    }
}
