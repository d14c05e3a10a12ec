import Logging

/// A log handler that escapes control characters in everything it passes on: the message, every
/// metadata key and value (its own, the metadata provider's, the log call's) and the error.
///
/// Log lines carry client-supplied text (request ids, regions, method names, certificate
/// subjects); a raw newline would let a client forge a whole line, and raw ESC bytes would reach
/// the terminal of whoever reads the log. Escaping here, at the one place all log output passes,
/// means no log call can forget it. Metadata is kept here rather than in the wrapped handler,
/// which would print it unescaped.
public struct EscapingLogHandler<Wrapped: LogHandler>: LogHandler {
    private var wrapped: Wrapped
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    /// Takes over `wrapped`'s metadata and metadata provider.
    public init(wrapping wrapped: Wrapped) {
        var wrapped = wrapped
        self.metadata = wrapped.metadata
        self.metadataProvider = wrapped.metadataProvider
        wrapped.metadata = [:]
        // Handlers without provider support complain when it is set at all, even to nil.
        if wrapped.metadataProvider != nil { wrapped.metadataProvider = nil }
        self.wrapped = wrapped
    }

    public var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, provided in provided }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, explicit in explicit }
        }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var escaped = event
        escaped.message = Logger.Message(stringLiteral: LogEscaping.escape(event.message.description))
        escaped.metadata = merged.isEmpty ? nil : LogEscaping.escape(merged)
        escaped.error = nil
        wrapped.log(event: escaped)
    }
}

/// How log text is escaped: Swift string-literal style, so a line reads back unambiguously.
public enum LogEscaping {
    /// C0 controls, DEL, C1 controls, and the Unicode line and paragraph separators: everything
    /// that can end a line or drive a terminal.
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: true
        default: false
        }
    }

    /// `text` with `\n`, `\r`, `\t` and `\\` escaped, and other control characters as `\u{1b}`.
    public static func escape(_ text: String) -> String {
        // Nearly every log string is plain printable ASCII: leave it alone without copying.
        if text.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }) { return text }
        var result = ""
        result.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\\": result += "\\\\"
            case _ where isControl(scalar): result += "\\u{\(String(scalar.value, radix: 16))}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    static func escape(_ metadata: Logger.Metadata) -> Logger.Metadata {
        var result: Logger.Metadata = [:]
        result.reserveCapacity(metadata.count)
        for (key, value) in metadata {
            result[escape(key)] = escape(value)
        }
        return result
    }

    static func escape(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): .string(escape(text))
        case .stringConvertible(let convertible): .string(escape(convertible.description))
        case .array(let values): .array(values.map(escape))
        case .dictionary(let metadata): .dictionary(escape(metadata))
        }
    }
}
