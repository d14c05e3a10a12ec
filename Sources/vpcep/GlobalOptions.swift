import ArgumentParser
import Foundation
import VPCEPClient

/// Connection and output options every command takes. Flags win over the environment, which wins
/// over the profile file (see `vpcep config show`).
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Server address HOST:PORT, or several replicas' a:7443,b:7443 (tried in turn when one fails). [env: VPCEP_SERVER] (default: 127.0.0.1:7443)",
        valueName: "host:port[,…]"))
    var server: String?

    @Option(name: .long, help: ArgumentHelp("PEM bundle of the CA that signs the server certificate. [env: VPCEP_CA]", valueName: "file"))
    var ca: String?

    @Option(name: .long, help: ArgumentHelp("PEM client certificate. [env: VPCEP_CERT]", valueName: "file"))
    var cert: String?

    @Option(name: .long, help: ArgumentHelp("PEM private key of the client certificate. [env: VPCEP_KEY]", valueName: "file"))
    var key: String?

    @Option(name: .long, help: ArgumentHelp("Region of the call. [env: VPCEP_REGION]", valueName: "name"))
    var region: String?

    @Option(name: [.customShort("o"), .long], help: ArgumentHelp("table or json. [env: VPCEP_OUTPUT] (default: table)", valueName: "format"))
    var output: OutputFormat?

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the server. [env: VPCEP_TIMEOUT] (default: 30)", valueName: "seconds"))
    var timeout: Double?

    @Option(name: .long, help: ArgumentHelp("Profile of the profile file to use. [env: VPCEP_PROFILE]", valueName: "name"))
    var profile: String?

    @Option(name: .long, help: ArgumentHelp("Profile file. [env: VPCEP_CONFIG] (default: ~/.config/vpcep/config.toml)", valueName: "file"))
    var config: String?

    @Flag(name: [.short, .long], help: "Print only the ids of what the command returns, one per line.")
    var quiet = false

    @Flag(name: .long, help: "Tables show every column whole, however narrow the terminal.")
    var wide = false

    /// The width a table must fit: the terminal's, or none (everything whole) with --wide or when
    /// stdout is not a terminal.
    var tableWidth: Int? { wide ? nil : Terminal.width }

    /// Flags, environment and profile merged.
    func settings() throws(CLIError) -> CLISettings {
        try CLISettings(
            flags: [
                "server": server, "region": region, "ca": ca, "cert": cert, "key": key, "output": output?.rawValue,
                "timeout": timeout.map { String($0) },
            ],
            profileFlag: profile, configFlag: config
        )
    }

    var format: OutputFormat {
        if quiet { return .ids }
        if let output { return output }
        // A broken profile file is reported when the client is made; here it only means "table".
        return (try? settings())?["output"].flatMap(OutputFormat.init(rawValue:)) ?? .table
    }

    /// Builds a client from the settings, or says which one is missing.
    func makeClient() throws(CLIError) -> VPCEPClient {
        let settings = try settings()
        let server = settings["server"] ?? "127.0.0.1:7443"
        let servers: [ServerAddress]
        do {
            servers = try ServerAddress.list(parsing: server)
        } catch {
            throw .configuration("--server must be HOST:PORT[,HOST:PORT…], got \"\(server)\" (\(settings.values["server"]?.source ?? "")): \(error.message)")
        }
        let hint = "; or put it in a profile (vpcep config show says where)"
        guard let ca = settings["ca"] else { throw .configuration("no CA: pass --ca FILE or set VPCEP_CA" + hint) }
        guard let cert = settings["cert"] else {
            throw .configuration("no client certificate: pass --cert FILE or set VPCEP_CERT" + hint)
        }
        guard let key = settings["key"] else { throw .configuration("no client key: pass --key FILE or set VPCEP_KEY" + hint) }
        guard let region = settings["region"] else {
            throw .configuration("no region: pass --region NAME or set VPCEP_REGION" + hint)
        }
        guard let timeout = Double(settings["timeout"] ?? "30"), timeout > 0, timeout <= 3600 else {
            throw .configuration("the timeout must be between 0 and 3600 seconds (\(settings.values["timeout"]?.source ?? ""))")
        }
        do {
            return try VPCEPClient(configuration: .init(
                servers: servers, region: region, caFile: ca, certificateFile: cert, keyFile: key,
                defaultTimeout: .milliseconds(Int64(timeout * 1000))
            ))
        } catch {
            throw .configuration(error.message)
        }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
    /// Selected by --quiet rather than named.
    case ids

    static var allValueStrings: [String] { ["table", "json"] }
}
