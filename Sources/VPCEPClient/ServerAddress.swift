import Foundation

/// One server a client may call: a host name or IP address and a TCP port.
public struct ServerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with an IPv6 address in brackets, as `list(parsing:)` reads it.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Reads `host:port[,host:port…]`, e.g. `a:7443,b:7443,[::1]:7443`: the one place that reads a
    /// list of servers, for the CLI's `--server` and for programs. Spaces around an entry are
    /// ignored; an empty entry, a missing or out-of-range port, an IPv6 address without brackets
    /// and an address listed twice are refused with `INVALID_ARGUMENT` / `CLIENT_CONFIGURATION`
    /// naming the entry.
    public static func list(parsing text: String) throws(VPCEPError) -> [ServerAddress] {
        var addresses: [ServerAddress] = []
        for entry in text.split(separator: ",", omittingEmptySubsequences: false) {
            let address = try parse(Substring(entry.trimmingCharacters(in: .whitespaces)))
            if addresses.contains(address) { throw invalid("\(address) is listed twice") }
            addresses.append(address)
        }
        return addresses
    }

    private static func parse(_ entry: Substring) throws(VPCEPError) -> ServerAddress {
        guard !entry.isEmpty else { throw invalid("an entry is empty (HOST:PORT expected between commas)") }
        guard let colon = entry.lastIndex(of: ":") else { throw invalid("\"\(entry)\" has no port (HOST:PORT expected)") }
        let portText = entry[entry.index(after: colon)...]
        guard !portText.isEmpty, portText.allSatisfy(\.isASCIIDigit), let port = Int(portText), (1...65535).contains(port) else {
            throw invalid("\"\(entry)\" has no port between 1 and 65535")
        }
        var host = entry[..<colon]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { throw invalid("\"\(entry)\" has an unclosed or empty [ ]") }
            host = host.dropFirst().dropLast()
        } else if host.contains(":") {
            throw invalid("\"\(entry)\": an IPv6 address goes in brackets, as [::1]:7443")
        }
        guard !host.isEmpty else { throw invalid("\"\(entry)\" has no host") }
        guard !host.contains(where: { $0.isWhitespace || $0 == "[" || $0 == "]" }) else {
            throw invalid("\"\(entry)\" is not a host name or address")
        }
        return ServerAddress(host: String(host), port: port)
    }

    private static func invalid(_ message: String) -> VPCEPError {
        VPCEPError(code: .invalidArgument, reason: .clientConfiguration, message: message)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
