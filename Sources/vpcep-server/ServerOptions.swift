import ArgumentParser
import Foundation
import Configuration
import VPCEPConfiguration
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

    @Option(name: .long, help: ArgumentHelp("Keep the registry in PostgreSQL instead: postgres://user@host:port/db[?sslmode=disable|prefer|require&schema=name], no password in it. [env: VPCEP_STORE] (default: SQLite in --data-dir)", valueName: "url"))
    var store: String?

    @Option(name: .long, help: ArgumentHelp("File holding the PostgreSQL password (else VPCEP_STORE_PASSWORD). [env: VPCEP_STORE_PASSWORD_FILE]", valueName: "file"))
    var storePasswordFile: String?

    @Option(name: .long, help: ArgumentHelp("PEM bundle of the CAs that sign PostgreSQL's certificate, for sslmode=require. [env: VPCEP_STORE_CA] (default: the system's)", valueName: "file"))
    var storeCA: String?

    @Option(name: .long, help: ArgumentHelp("Most connections to PostgreSQL at once. [env: VPCEP_STORE_POOL_SIZE] (default: 10)", valueName: "n"))
    var storePoolSize: Int?

    @Option(name: .long, help: ArgumentHelp("on: answer cached reads from memory while this server holds a read lease in PostgreSQL (every write then waits until the other servers holding one have seen it; a server that stops without closing holds writes up to 1.5 s); off: every cached read asks PostgreSQL. [env: VPCEP_STORE_READ_LEASES] (default: on)", valueName: "on|off"))
    var storeReadLeases: String?

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

    @Option(name: .long, help: ArgumentHelp("Days the change log keeps events for ListHistory and Watch resumes. [env: VPCEP_HISTORY_RETENTION_DAYS] (default: 7)", valueName: "days"))
    var historyRetentionDays: Int?

    @Option(name: .long, help: ArgumentHelp("Seconds of silence after which a Watch sends a bookmark. [env: VPCEP_WATCH_BOOKMARK_INTERVAL] (default: 10)", valueName: "seconds"))
    var watchBookmarkInterval: Int?

    @Option(name: .long, help: ArgumentHelp("Seconds a Watch may stay blocked on a reader that does not read before it ends. [env: VPCEP_WATCH_SLOW_TIMEOUT] (default: 30)", valueName: "seconds"))
    var watchSlowTimeout: Int?

    @Option(name: .long, help: ArgumentHelp("Milliseconds between sweeps that reject the connections of expired allow-list entries with on_expiry reject. [env: VPCEP_PERMISSION_SWEEP_INTERVAL_MS] (default: 1000)", valueName: "ms"))
    var permissionSweepIntervalMs: Int?

    @Option(name: .long, help: ArgumentHelp("Memory for GetEndpointService's read cache, in MiB (approximate); 0 turns it off. [env: VPCEP_SERVICE_CACHE_MIB] (default: 192)", valueName: "mib"))
    var serviceCacheMib: Int?
}

/// One resolved setting and where it came from, for --print-config.
struct Sourced<Value> {
    var value: Value
    var source: String
}

/// Settings after flags, environment, the configuration file and defaults are merged and checked.
/// The merge is swift-configuration's: one `ConfigReader` over the flags, the `VPCEP_*` variables,
/// the file and the defaults, in that order of precedence.
struct ServerSettings {
    var listen: Sourced<(host: String, port: Int)>
    var adminListen: Sourced<(host: String, port: Int)?>
    var dataDirectory: Sourced<String>
    /// The PostgreSQL store's URL; `nil` for SQLite in `dataDirectory`.
    var store: Sourced<String?>
    var storePasswordFile: Sourced<String?>
    var storeCA: Sourced<String?>
    var storePoolSize: Sourced<Int>
    var storeReadLeases: Sourced<Bool>
    var caFile: Sourced<String>
    var certificateFile: Sourced<String>
    var keyFile: Sourced<String>
    var crlFile: Sourced<String?>
    var tlsGroups: Sourced<[String]>
    var regions: Sourced<[String]>
    var logLevel: Sourced<String>
    var shutdownGrace: Sourced<Int>
    var historyRetentionDays: Sourced<Int>
    var watchBookmarkInterval: Sourced<Int>
    var watchSlowTimeout: Sourced<Int>
    var permissionSweepInterval: Sourced<Int>
    var serviceCacheMiB: Sourced<Int>

    static let fileKeys: Set<String> = [
        "listen", "admin_listen", "data_dir", "tls_ca", "tls_cert", "tls_key", "tls_crl", "tls_groups", "regions", "log_level",
        "shutdown_grace", "history_retention_days", "watch_bookmark_interval", "watch_slow_timeout",
        "permission_sweep_interval_ms", "store", "store_password_file", "store_ca", "store_pool_size",
        "store_read_leases", "service_cache_mib",
    ]

    /// The flag that sets each file key, for sources.
    private static let flagNames = [
        "listen": "--listen", "admin_listen": "--admin-listen", "data_dir": "--data-dir", "tls_ca": "--tls-ca",
        "tls_cert": "--tls-cert", "tls_key": "--tls-key", "tls_crl": "--tls-crl", "tls_groups": "--tls-groups",
        "regions": "--region", "log_level": "--log-level", "shutdown_grace": "--shutdown-grace",
        "history_retention_days": "--history-retention-days", "watch_bookmark_interval": "--watch-bookmark-interval",
        "watch_slow_timeout": "--watch-slow-timeout",
        "permission_sweep_interval_ms": "--permission-sweep-interval-ms", "store": "--store", "store_password_file": "--store-password-file",
        "store_ca": "--store-ca", "store_pool_size": "--store-pool-size", "store_read_leases": "--store-read-leases",
        "service_cache_mib": "--service-cache-mib",
    ]

    private static let defaults: [AbsoluteConfigKey: ConfigValue] = [
        ["listen"]: "127.0.0.1:7443",
        ["admin_listen"]: "127.0.0.1:7444",
        ["data_dir"]: "./data",
        ["tls_groups"]: ConfigValue(.string(TLSConfiguration.defaultKeyExchangeGroups.joined(separator: ",")), isSecret: false),
        ["regions"]: ConfigValue(.stringArray(["eu-west-1"]), isSecret: false),
        ["log_level"]: "info",
        ["shutdown_grace"]: "10",
        ["history_retention_days"]: "7",
        ["watch_bookmark_interval"]: "10",
        ["watch_slow_timeout"]: "30",
        ["permission_sweep_interval_ms"]: "1000",
        ["store_pool_size"]: "10",
        ["store_read_leases"]: "on",
        ["service_cache_mib"]: "192",
    ]

    init(_ options: ServerOptions, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let configPath = options.config ?? environment["VPCEP_CONFIG"].flatMap { $0.isEmpty ? nil : $0 }
        let file = try configPath.map(Self.loadFile)
        let reader = Self.reader(options, environment: environment, file: file)
        func string(_ key: String) throws -> Sourced<String>? {
            do {
                return try reader.string(key).map { Sourced(value: $0.value, source: $0.source) }
            } catch {
                throw ValidationError(error.description)
            }
        }
        /// A relative path from the file is taken relative to the file's folder.
        func path(_ key: String) throws -> Sourced<String>? {
            guard var setting = try string(key) else { return nil }
            if let file, setting.source == Self.fileSource(file), !setting.value.hasPrefix("/") {
                let folder = URL(fileURLWithPath: file.path).deletingLastPathComponent()
                setting.value = folder.appendingPathComponent(setting.value).standardizedFileURL.path
            }
            return setting
        }
        /// Keys the defaults layer holds always have a value.
        func defaulted(_ setting: Sourced<String>?, _ key: String) -> Sourced<String> {
            guard let setting else { preconditionFailure("\(key) has no default") }
            return setting
        }

        let listenText = defaulted(try string("listen"), "listen")
        listen = .init(value: try Self.parseHostPort(listenText.value, what: "listen"), source: listenText.source)

        let adminText = defaulted(try string("admin_listen"), "admin_listen")
        adminListen = .init(value: adminText.value == "off" ? nil : try Self.parseHostPort(adminText.value, what: "admin-listen"),
                            source: adminText.source)

        dataDirectory = defaulted(try path("data_dir"), "data_dir")
        let storeText = try string("store")
        store = .init(value: storeText?.value, source: storeText?.source ?? "default (SQLite in data_dir)")
        let passwordFile = try path("store_password_file")
        storePasswordFile = .init(value: passwordFile?.value, source: passwordFile?.source ?? "default (none)")
        let storeCAText = try path("store_ca")
        storeCA = .init(value: storeCAText?.value, source: storeCAText?.source ?? "default (the system's)")
        guard let ca = try path("tls_ca") else {
            throw ValidationError("missing --tls-ca (or VPCEP_TLS_CA, or tls_ca in the config file): the CA bundle that signs client certificates")
        }
        guard let cert = try path("tls_cert") else {
            throw ValidationError("missing --tls-cert (or VPCEP_TLS_CERT, or tls_cert in the config file): the server certificate")
        }
        guard let key = try path("tls_key") else {
            throw ValidationError("missing --tls-key (or VPCEP_TLS_KEY, or tls_key in the config file): the server private key")
        }
        caFile = ca
        certificateFile = cert
        keyFile = key
        let crl = try path("tls_crl")
        crlFile = .init(value: crl?.value, source: crl?.source ?? "default (none)")

        let groupsText = defaulted(try string("tls_groups"), "tls_groups")
        let groups = groupsText.value.split(whereSeparator: { $0 == "," || $0 == ":" })
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !groups.isEmpty else {
            throw ValidationError("no TLS key exchange group given (\(groupsText.source))")
        }
        tlsGroups = .init(value: groups, source: groupsText.source)

        var regions: Sourced<[String]>
        do {
            guard let list = try reader.stringArray("regions") else { preconditionFailure("regions has no default") }
            regions = Sourced(value: list.value, source: list.source)
        } catch {
            throw ValidationError(error.description)
        }
        if regions.source.hasPrefix("env ") {
            // VPCEP_REGIONS is comma-separated; "a,,b" and a trailing comma name no empty region.
            regions.value = regions.value.filter { !$0.isEmpty }
        }
        for region in regions.value where !Self.isValidRegion(region) {
            throw ValidationError("invalid region \"\(region)\" (\(regions.source)): use 1-32 of a-z, 0-9 and -")
        }
        guard !regions.value.isEmpty else { throw ValidationError("no region to serve (\(regions.source))") }
        regions.value = Array(Set(regions.value)).sorted()
        self.regions = regions

        logLevel = defaulted(try string("log_level"), "log_level")
        let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
        guard levels.contains(logLevel.value) else {
            throw ValidationError("invalid log level \"\(logLevel.value)\" (\(logLevel.source)): use one of \(levels.joined(separator: ", "))")
        }

        let graceText = defaulted(try string("shutdown_grace"), "shutdown_grace")
        guard let grace = Int(graceText.value), (0...3600).contains(grace) else {
            throw ValidationError("shutdown grace must be 0-3600 seconds (\(graceText.source))")
        }
        shutdownGrace = .init(value: grace, source: graceText.source)

        func integer(_ key: String, _ range: ClosedRange<Int>, _ what: String) throws -> Sourced<Int> {
            let text = defaulted(try string(key), key)
            guard let value = Int(text.value), range.contains(value) else {
                throw ValidationError("\(what) must be \(range.lowerBound)-\(range.upperBound) (\(text.source))")
            }
            return .init(value: value, source: text.source)
        }
        historyRetentionDays = try integer("history_retention_days", 1...3650, "history retention days")
        watchBookmarkInterval = try integer("watch_bookmark_interval", 1...3600, "watch bookmark interval seconds")
        watchSlowTimeout = try integer("watch_slow_timeout", 1...3600, "watch slow timeout seconds")
        permissionSweepInterval = try integer(
            "permission_sweep_interval_ms", 10...3_600_000, "permission sweep interval milliseconds")
        storePoolSize = try integer("store_pool_size", 1...1000, "store pool size")
        let leasesText = defaulted(try string("store_read_leases"), "store_read_leases")
        switch leasesText.value {
        case "on", "true": storeReadLeases = .init(value: true, source: leasesText.source)
        case "off", "false": storeReadLeases = .init(value: false, source: leasesText.source)
        default: throw ValidationError("store read leases must be on or off (\(leasesText.source))")
        }
        serviceCacheMiB = try integer("service_cache_mib", 0...65_536, "service cache MiB")
    }

    /// Flags, then `VPCEP_*` variables, then the file, then defaults; an empty flag or variable
    /// counts as unset, as it always has.
    private static func reader(_ options: ServerOptions, environment: [String: String], file: TOMLFileProvider?) -> SourcedConfigReader {
        var flags: [AbsoluteConfigKey: ConfigValue] = [:]
        let flagValues: [(String, String?)] = [
            ("listen", options.listen), ("admin_listen", options.adminListen), ("data_dir", options.dataDir),
            ("tls_ca", options.tlsCA), ("tls_cert", options.tlsCert), ("tls_key", options.tlsKey), ("tls_crl", options.tlsCRL),
            ("tls_groups", options.tlsGroups), ("log_level", options.logLevel), ("shutdown_grace", options.shutdownGrace.map(String.init)),
            ("history_retention_days", options.historyRetentionDays.map(String.init)),
            ("watch_bookmark_interval", options.watchBookmarkInterval.map(String.init)),
            ("watch_slow_timeout", options.watchSlowTimeout.map(String.init)),
            ("permission_sweep_interval_ms", options.permissionSweepIntervalMs.map(String.init)),
            ("store", options.store), ("store_password_file", options.storePasswordFile), ("store_ca", options.storeCA),
            ("store_pool_size", options.storePoolSize.map(String.init)), ("store_read_leases", options.storeReadLeases),
            ("service_cache_mib", options.serviceCacheMib.map(String.init)),
        ]
        for case let (key, value?) in flagValues where !value.isEmpty {
            flags[AbsoluteConfigKey([key])] = ConfigValue(.string(value), isSecret: false)
        }
        if !options.regions.isEmpty {
            flags[["regions"]] = ConfigValue(.stringArray(options.regions), isSecret: false)
        }
        // The store's password is read once, by the store's opening, and never goes through the reader.
        let variables = environment.filter { $0.key.hasPrefix("VPCEP_") && !$0.value.isEmpty && $0.key != storePasswordVariable }
        var layers: [SourcedConfigReader.Layer] = [
            .init(InMemoryProvider(name: "flags", values: flags)) { key, _ in "flag \(flagNames[key] ?? key)" },
            // `listen` is looked up as VPCEP_LISTEN, `tls_ca` as VPCEP_TLS_CA.
            .init(EnvironmentVariablesProvider(environmentVariables: variables).prefixKeys(with: ["vpcep"])) { _, name in "env \(name)" },
        ]
        if let file {
            layers.append(.init(file) { _, _ in fileSource(file) })
        }
        layers.append(.init(InMemoryProvider(name: "defaults", values: defaults)) { _, _ in "default" })
        return SourcedConfigReader(layers)
    }

    private static func fileSource(_ file: TOMLFileProvider) -> String { "file \(file.path)" }

    static let storePasswordVariable = "VPCEP_STORE_PASSWORD"

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
            ("history_retention_days = \(historyRetentionDays.value)", historyRetentionDays.source),
            ("watch_bookmark_interval = \(watchBookmarkInterval.value)", watchBookmarkInterval.source),
            ("watch_slow_timeout = \(watchSlowTimeout.value)", watchSlowTimeout.source),
            ("permission_sweep_interval_ms = \(permissionSweepInterval.value)", permissionSweepInterval.source),
            ("service_cache_mib = \(serviceCacheMiB.value)", serviceCacheMiB.source),
        ]
        if let url = store.value {
            lines.append(("store = \(quoted(url))", store.source))
            if let file = storePasswordFile.value { lines.append(("store_password_file = \(quoted(file))", storePasswordFile.source)) }
            if let ca = storeCA.value { lines.append(("store_ca = \(quoted(ca))", storeCA.source)) }
            lines.append(("store_pool_size = \(storePoolSize.value)", storePoolSize.source))
            lines.append(("store_read_leases = \(quoted(storeReadLeases.value ? "on" : "off"))", storeReadLeases.source))
        }
        let width = lines.map(\.0.count).max() ?? 0
        return lines.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  # " + $0.1 }.joined(separator: "\n")
    }

    /// Unknown keys and tables are errors: a misspelt key would otherwise be silently ignored.
    private static func loadFile(_ path: String) throws -> TOMLFileProvider {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ValidationError("cannot read the config file \(path)")
        }
        let file: TOMLFileProvider
        do {
            file = try TOMLFileProvider(path: path)
        } catch {
            throw ValidationError("config file \(error)")
        }
        if let table = file.tables.first {
            throw ValidationError("\(path): unexpected section [\(table)]; the server's keys are top-level")
        }
        for key in file.keys where !fileKeys.contains(key) {
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
