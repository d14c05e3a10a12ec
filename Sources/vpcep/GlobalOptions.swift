import ArgumentParser
import Foundation
import VPCEPClient

/// Connection and output options every command takes; flags win over the environment.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Server address HOST:PORT. [env: VPCEP_SERVER] (default: 127.0.0.1:7443)", valueName: "host:port"))
    var server: String?

    @Option(name: .long, help: ArgumentHelp("PEM bundle of the CA that signs the server certificate. [env: VPCEP_CA]", valueName: "file"))
    var ca: String?

    @Option(name: .long, help: ArgumentHelp("PEM client certificate. [env: VPCEP_CERT]", valueName: "file"))
    var cert: String?

    @Option(name: .long, help: ArgumentHelp("PEM private key of the client certificate. [env: VPCEP_KEY]", valueName: "file"))
    var key: String?

    @Option(name: .long, help: ArgumentHelp("Region of the call. [env: VPCEP_REGION]", valueName: "name"))
    var region: String?

    @Option(name: .long, help: ArgumentHelp("table or json. [env: VPCEP_OUTPUT] (default: table)", valueName: "format"))
    var output: OutputFormat?

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for the server. (default: 30)", valueName: "seconds"))
    var timeout: Double?

    @Flag(name: [.short, .long], help: "Print only the ids of what the command returns, one per line.")
    var quiet = false

    var format: OutputFormat {
        if quiet { return .ids }
        return output ?? ProcessInfo.processInfo.environment["VPCEP_OUTPUT"].flatMap(OutputFormat.init(rawValue:)) ?? .table
    }

    /// Builds a client from the settings, or says which one is missing.
    func makeClient() throws(CLIError) -> VPCEPClient {
        let environment = ProcessInfo.processInfo.environment
        func value(_ flag: String?, _ name: String) -> String? {
            if let flag, !flag.isEmpty { return flag }
            if let env = environment[name], !env.isEmpty { return env }
            return nil
        }
        let server = value(self.server, "VPCEP_SERVER") ?? "127.0.0.1:7443"
        guard let colon = server.lastIndex(of: ":"), let port = Int(server[server.index(after: colon)...]),
              (1...65535).contains(port), colon != server.startIndex else {
            throw .configuration("--server must be HOST:PORT, got \"\(server)\"")
        }
        var host = String(server[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let ca = value(self.ca, "VPCEP_CA") else { throw .configuration("no CA: pass --ca FILE or set VPCEP_CA") }
        guard let cert = value(self.cert, "VPCEP_CERT") else {
            throw .configuration("no client certificate: pass --cert FILE or set VPCEP_CERT")
        }
        guard let key = value(self.key, "VPCEP_KEY") else { throw .configuration("no client key: pass --key FILE or set VPCEP_KEY") }
        guard let region = value(self.region, "VPCEP_REGION") else {
            throw .configuration("no region: pass --region NAME or set VPCEP_REGION")
        }
        if let timeout, !(timeout > 0 && timeout <= 3600) {
            throw .configuration("--timeout must be between 0 and 3600 seconds")
        }
        do {
            return try VPCEPClient(configuration: .init(
                host: host, port: port, region: region, caFile: ca, certificateFile: cert, keyFile: key,
                defaultTimeout: .milliseconds(Int64((timeout ?? 30) * 1000))
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
