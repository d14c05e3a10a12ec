import ArgumentParser
import Foundation

/// The server's settings: each flag also comes from a `VPCEP_…` environment variable; flags win.
struct ServerOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Address to listen on, HOST:PORT. [env: VPCEP_LISTEN] (default: 127.0.0.1:7443)", valueName: "host:port"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("Directory of the SQLite database; created if missing. [env: VPCEP_DATA_DIR] (default: ./data)", valueName: "dir"))
    var dataDir: String?

    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("PEM bundle of the CA that signs client certificates. [env: VPCEP_TLS_CA]", valueName: "file"))
    var tlsCA: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("PEM certificate chain of the server. [env: VPCEP_TLS_CERT]", valueName: "file"))
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("PEM private key of the server. [env: VPCEP_TLS_KEY]", valueName: "file"))
    var tlsKey: String?

    @Option(name: .customLong("tls-crl"), help: ArgumentHelp("PEM CRL; revoked client certificates are refused. [env: VPCEP_TLS_CRL]", valueName: "file"))
    var tlsCRL: String?

    @Option(name: .customLong("region"), help: ArgumentHelp("A region this server serves; repeat for several. [env: VPCEP_REGIONS, comma-separated] (default: eu-west-1)", valueName: "name"))
    var regions: [String] = []

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning, error or critical. [env: VPCEP_LOG_LEVEL] (default: info)", valueName: "level"))
    var logLevel: String?
}

/// Settings after flags, environment and defaults are merged and checked.
struct ServerSettings {
    var host: String
    var port: Int
    var dataDirectory: String
    var caFile: String
    var certificateFile: String
    var keyFile: String
    var crlFile: String?
    var regions: [String]
    var logLevel: String

    init(_ options: ServerOptions, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func value(_ flag: String?, _ name: String) -> String? {
            if let flag, !flag.isEmpty { return flag }
            if let env = environment[name], !env.isEmpty { return env }
            return nil
        }
        let listen = value(options.listen, "VPCEP_LISTEN") ?? "127.0.0.1:7443"
        (host, port) = try Self.parseHostPort(listen)
        dataDirectory = value(options.dataDir, "VPCEP_DATA_DIR") ?? "./data"
        guard let ca = value(options.tlsCA, "VPCEP_TLS_CA") else {
            throw ValidationError("missing --tls-ca (or VPCEP_TLS_CA): the CA bundle that signs client certificates")
        }
        guard let cert = value(options.tlsCert, "VPCEP_TLS_CERT") else {
            throw ValidationError("missing --tls-cert (or VPCEP_TLS_CERT): the server certificate")
        }
        guard let key = value(options.tlsKey, "VPCEP_TLS_KEY") else {
            throw ValidationError("missing --tls-key (or VPCEP_TLS_KEY): the server private key")
        }
        caFile = ca
        certificateFile = cert
        keyFile = key
        crlFile = value(options.tlsCRL, "VPCEP_TLS_CRL")
        var regions = options.regions
        if regions.isEmpty, let env = environment["VPCEP_REGIONS"] {
            regions = env.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if regions.isEmpty { regions = ["eu-west-1"] }
        for region in regions where !Self.isValidRegion(region) {
            throw ValidationError("invalid region \"\(region)\": use 1-32 of a-z, 0-9 and -")
        }
        self.regions = Array(Set(regions)).sorted()
        logLevel = value(options.logLevel, "VPCEP_LOG_LEVEL") ?? "info"
    }

    static func parseHostPort(_ text: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":") else {
            throw ValidationError("--listen must be HOST:PORT, got \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT with a port 0-65535, got \"\(text)\"")
        }
        return (host, port)
    }

    static func isValidRegion(_ region: String) -> Bool {
        (1...32).contains(region.count)
            && region.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
    }
}
