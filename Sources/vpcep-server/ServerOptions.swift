import ArgumentParser
import Foundation
import VPCEPConfigFile
import VPCEPTLS

/// The server's flags. Each setting also comes from a `VPCEP_…` environment variable and from the
/// configuration file; flags win over the environment, which wins over the file.
struct ServerOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("A configuration file (TOML keys as in --print-config). [env: VPCEP_CONFIG]", valueName: "file"))
    var config: String?

    @Flag(name: .long, help: "Print the settings in effect, and where each came from, then exit.")
    var printConfig = false

    @Option(name: .long, help: ArgumentHelp("Address to listen on, HOST:PORT. [env: VPCEP_LISTEN] (default: 127.0.0.1:7443)", valueName: "host:port"))
    var listen: String?

    @Option(name: .long, help: ArgumentHelp("Plain-HTTP admin listener for /metrics, /healthz, /readyz, or \"off\". [env: VPCEP_ADMIN_LISTEN] (default: 127.0.0.1:7444)", valueName: "host:port"))
    var adminListen: String?

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

    @Option(name: .customLong("tls-groups"), help: ArgumentHelp("TLS key exchange groups accepted, in order of preference, comma-separated OpenSSL names. [env: VPCEP_TLS_GROUPS] (default: X25519,P-256,P-384)", valueName: "list"))
    var tlsGroups: String?

    @Option(name: .customLong("region"), help: ArgumentHelp("A region this server serves; repeat for several. [env: VPCEP_REGIONS, comma-separated] (default: eu-west-1)", valueName: "name"))
    var regions: [String] = []

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning, error or critical. [env: VPCEP_LOG_LEVEL] (default: info)", valueName: "level"))
    var logLevel: String?

    @Option(name: .long, help: ArgumentHelp("Seconds that in-flight calls get to finish on SIGTERM. [env: VPCEP_SHUTDOWN_GRACE] (default: 10)", valueName: "seconds"))
    var shutdownGrace: Int?
}

/// One resolved setting and where it came from, for --print-config.
struct Sourced<Value> {
    var value: Value
    var source: String
}

/// Settings after flags, environment, the configuration file and defaults are merged and checked.
struct ServerSettings {
    var listen: Sourced<(host: String, port: Int)>
    var adminListen: Sourced<(host: String, port: Int)?>
    var dataDirectory: Sourced<String>
    var caFile: Sourced<String>
    var certificateFile: Sourced<String>
    var keyFile: Sourced<String>
    var crlFile: Sourced<String?>
    var tlsGroups: Sourced<[String]>
    var regions: Sourced<[String]>
    var logLevel: Sourced<String>
    var shutdownGrace: Sourced<Int>

    static let fileKeys: Set<String> = [
        "listen", "admin_listen", "data_dir", "tls_ca", "tls_cert", "tls_key", "tls_crl", "tls_groups", "regions", "log_level",
        "shutdown_grace",
    ]

    init(_ options: ServerOptions, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let configPath = options.config ?? environment["VPCEP_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let file = try configPath.map(Self.loadFile)
        let resolver = Resolver(environment: environment, file: file, filePath: configPath)

        let listenText = try resolver.string(options.listen, flag: "--listen", env: "VPCEP_LISTEN", key: "listen") ?? .init(value: "127.0.0.1:7443", source: "default")
        listen = .init(value: try Self.parseHostPort(listenText.value, what: "listen"), source: listenText.source)

        let adminText = try resolver.string(options.adminListen, flag: "--admin-listen", env: "VPCEP_ADMIN_LISTEN", key: "admin_listen") ?? .init(value: "127.0.0.1:7444", source: "default")
        adminListen = .init(value: adminText.value == "off" ? nil : try Self.parseHostPort(adminText.value, what: "admin-listen"),
                            source: adminText.source)

        dataDirectory = try resolver.path(options.dataDir, flag: "--data-dir", env: "VPCEP_DATA_DIR", key: "data_dir") ?? .init(value: "./data", source: "default")
        guard let ca = try resolver.path(options.tlsCA, flag: "--tls-ca", env: "VPCEP_TLS_CA", key: "tls_ca") else {
            throw ValidationError("missing --tls-ca (or VPCEP_TLS_CA, or tls_ca in the config file): the CA bundle that signs client certificates")
        }
        guard let cert = try resolver.path(options.tlsCert, flag: "--tls-cert", env: "VPCEP_TLS_CERT", key: "tls_cert") else {
            throw ValidationError("missing --tls-cert (or VPCEP_TLS_CERT, or tls_cert in the config file): the server certificate")
        }
        guard let key = try resolver.path(options.tlsKey, flag: "--tls-key", env: "VPCEP_TLS_KEY", key: "tls_key") else {
            throw ValidationError("missing --tls-key (or VPCEP_TLS_KEY, or tls_key in the config file): the server private key")
        }
        caFile = ca
        certificateFile = cert
        keyFile = key
        let crl = try resolver.path(options.tlsCRL, flag: "--tls-crl", env: "VPCEP_TLS_CRL", key: "tls_crl")
        crlFile = .init(value: crl?.value, source: crl?.source ?? "default (none)")

        let groupsText = try resolver.string(options.tlsGroups, flag: "--tls-groups", env: "VPCEP_TLS_GROUPS", key: "tls_groups")
        let groups = (groupsText?.value).map {
            $0.split(whereSeparator: { $0 == "," || $0 == ":" }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        } ?? TLSConfiguration.defaultKeyExchangeGroups
        guard !groups.isEmpty else {
            throw ValidationError("no TLS key exchange group given (\(groupsText?.source ?? "default"))")
        }
        tlsGroups = .init(value: groups, source: groupsText?.source ?? "default")

        var regions: Sourced<[String]>
        if !options.regions.isEmpty {
            regions = .init(value: options.regions, source: "flag --region")
        } else if let env = environment["VPCEP_REGIONS"], !env.isEmpty {
            regions = .init(value: env.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty },
                            source: "env VPCEP_REGIONS")
        } else if let value = file?.value("regions") {
            guard case .strings(let list) = value else {
                throw ValidationError("\(configPath ?? ""): regions must be an array of strings")
            }
            regions = .init(value: list, source: "file \(configPath ?? "")")
        } else {
            regions = .init(value: ["eu-west-1"], source: "default")
        }
        for region in regions.value where !Self.isValidRegion(region) {
            throw ValidationError("invalid region \"\(region)\" (\(regions.source)): use 1-32 of a-z, 0-9 and -")
        }
        guard !regions.value.isEmpty else { throw ValidationError("no region to serve (\(regions.source))") }
        regions.value = Array(Set(regions.value)).sorted()
        self.regions = regions

        logLevel = try resolver.string(options.logLevel, flag: "--log-level", env: "VPCEP_LOG_LEVEL", key: "log_level") ?? .init(value: "info", source: "default")
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(logLevel.value) else {
            throw ValidationError("invalid log level \"\(logLevel.value)\" (\(logLevel.source)): use one of \(levels.joined(separator: ", "))")
        }

        let graceText = try resolver.string(options.shutdownGrace.map(String.init), flag: "--shutdown-grace", env: "VPCEP_SHUTDOWN_GRACE", key: "shutdown_grace")
        guard let grace = Int(graceText?.value ?? "10"), (0...3600).contains(grace) else {
            throw ValidationError("shutdown grace must be 0-3600 seconds (\(graceText?.source ?? "default"))")
        }
        shutdownGrace = .init(value: grace, source: graceText?.source ?? "default")
    }

    /// The settings as a configuration file would hold them, each with its source.
    var printable: String {
        func quoted(_ text: String) -> String { "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\"" }
        var lines: [(String, String)] = [
            ("listen = \(quoted("\(listen.value.host):\(listen.value.port)"))", listen.source),
            ("admin_listen = \(quoted(adminListen.value.map { "\($0.host):\($0.port)" } ?? "off"))", adminListen.source),
            ("data_dir = \(quoted(dataDirectory.value))", dataDirectory.source),
            ("tls_ca = \(quoted(caFile.value))", caFile.source),
            ("tls_cert = \(quoted(certificateFile.value))", certificateFile.source),
            ("tls_key = \(quoted(keyFile.value))", keyFile.source),
        ]
        if let crl = crlFile.value { lines.append(("tls_crl = \(quoted(crl))", crlFile.source)) }
        lines += [
            ("tls_groups = \(quoted(tlsGroups.value.joined(separator: ",")))", tlsGroups.source),
            ("regions = [\(regions.value.map(quoted).joined(separator: ", "))]", regions.source),
            ("log_level = \(quoted(logLevel.value))", logLevel.source),
            ("shutdown_grace = \(shutdownGrace.value)", shutdownGrace.source),
        ]
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  # " + $0.1 }.joined(separator: "\n")
    }

    private static func loadFile(_ path: String) throws -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("cannot read the config file \(path)")
        }
        let file: ConfigFile
        do {
            file = try ConfigFile(parsing: String(decoding: data, as: UTF8.self), path: path)
        } catch {
            throw ValidationError("config file \(error)")
        }
        for section in file.sectionOrder where section != "" {
            throw ValidationError("\(path): unexpected section [\(section)]; the server's keys are top-level")
        }
        for key in file.sections[""]?.keys.sorted() ?? [] where !fileKeys.contains(key) {
            throw ValidationError("\(path): unknown key \"\(key)\"; known keys: \(fileKeys.sorted().joined(separator: ", "))")
        }
        return file
    }

    static func parseHostPort(_ text: String, what: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":") else {
            throw ValidationError("--\(what) must be HOST:PORT, got \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--\(what) must be HOST:PORT with a port 0-65535, got \"\(text)\"")
        }
        return (host, port)
    }

    static func isValidRegion(_ region: String) -> Bool {
        (1...32).contains(region.count)
            && region.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
    }
}

/// Looks a setting up in the flag, then the environment, then the file.
private struct Resolver {
    var environment: [String: String]
    var file: ConfigFile?
    var filePath: String?

    func string(_ flag: String?, flag flagName: String, env: String, key: String) throws -> Sourced<String>? {
        if let flag, !flag.isEmpty { return .init(value: flag, source: "flag \(flagName)") }
        if let value = environment[env], !value.isEmpty { return .init(value: value, source: "env \(env)") }
        switch file?.value(key) {
        case nil: return nil
        case .string(let value)?: return .init(value: value, source: "file \(filePath ?? "")")
        case .integer(let value)?: return .init(value: String(value), source: "file \(filePath ?? "")")
        default: throw ValidationError("\(filePath ?? ""): \(key) must be a string")
        }
    }

    /// Like `string`, but a relative path from the file is taken relative to the file's folder.
    func path(_ flag: String?, flag flagName: String, env: String, key: String) throws -> Sourced<String>? {
        guard var setting = try string(flag, flag: flagName, env: env, key: key) else { return nil }
        if setting.source.hasPrefix("file "), !setting.value.hasPrefix("/"), let filePath {
            let folder = URL(fileURLWithPath: filePath).deletingLastPathComponent()
            setting.value = folder.appendingPathComponent(setting.value).standardizedFileURL.path
        }
        return setting
    }
}
