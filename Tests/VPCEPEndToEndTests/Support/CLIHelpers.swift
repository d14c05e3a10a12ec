import Foundation
import Testing
import VPCEPTestSupport

/// The ids of a tenant's network made through the CLI: a VPC, a subnet and (optionally) a load balancer.
struct CLINetwork {
    var vpc: String
    var subnet: String
    var loadBalancer: String
}

extension ServerProcess {
    /// Runs the `vpcep` CLI as `identity` with an argument array.
    func cli(_ identity: String, arguments: [String], region: String = ServerProcess.regions[0]) async throws -> CommandResult {
        try await runCommand(RepositoryPaths.executable("vpcep"), arguments, environment: cliEnvironment(identity, region: region))
    }

    /// Runs a command that must succeed with `--output json` and returns its stdout as an object.
    func cliJSON(
        _ identity: String, _ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [String: Any] {
        let result = try await cli(identity, arguments: arguments + ["--output", "json"])
        try #require(result.status == 0, "vpcep \(arguments.joined(separator: " ")): \(result.stderr)",
                     sourceLocation: sourceLocation)
        return try result.json()
    }

    /// Runs a command that must succeed with `--quiet` and returns the one id it prints.
    func cliID(_ identity: String, _ arguments: String..., sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        let result = try await cli(identity, arguments: arguments + ["--quiet"])
        try #require(result.status == 0, "vpcep \(arguments.joined(separator: " ")): \(result.stderr)",
                     sourceLocation: sourceLocation)
        let id = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!id.isEmpty && !id.contains("\n"), "expected one id, got \(result.stdout)", sourceLocation: sourceLocation)
        return id
    }

    /// Runs a command that must fail with `--output json`: checks the exit code, the status, the reason
    /// and (when given) the field, and that nothing went to stdout. Returns the error object.
    @discardableResult
    func cliFailure(
        _ identity: String, _ arguments: String..., exit: Int32, code: String, reason: String, field: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [String: Any] {
        let result = try await cli(identity, arguments: arguments + ["--output", "json"])
        let command = "vpcep \(arguments.joined(separator: " "))"
        #expect(result.status == exit, "\(command): exit \(result.status), \(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, "\(command) printed \(result.stdout)", sourceLocation: sourceLocation)
        let error = try result.errorJSON()
        #expect(error["code"] as? String == code, "\(command): \(error)", sourceLocation: sourceLocation)
        #expect(error["reason"] as? String == reason, "\(command): \(error)", sourceLocation: sourceLocation)
        if let field {
            #expect(error["field"] as? String == field, "\(command): \(error)", sourceLocation: sourceLocation)
        }
        return error
    }

    /// A VPC, a subnet and a load balancer admitting the endpoint range, made with the CLI's `--quiet`.
    func cliNetwork(
        _ identity: String, cidr: String = "10.0.0.0/16", subnetCIDR: String = "10.0.1.0/24", loadBalancer: Bool = true,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> CLINetwork {
        let vpc = try await cliID(identity, "vpc", "create", "--name", "net", "--cidr", cidr, sourceLocation: sourceLocation)
        let subnet = try await cliID(identity, "subnet", "create", "--vpc", vpc, "--name", "a", "--cidr", subnetCIDR,
                                     sourceLocation: sourceLocation)
        guard loadBalancer else { return CLINetwork(vpc: vpc, subnet: subnet, loadBalancer: "") }
        let lb = try await cliID(identity, "lb", "create", "--vpc", vpc, "--subnet", subnet, "--name", "web",
                                 "--ingress", "198.19.128.0/17", sourceLocation: sourceLocation)
        return CLINetwork(vpc: vpc, subnet: subnet, loadBalancer: lb)
    }
}

extension Dictionary where Key == String, Value == Any {
    /// `items` of a list response.
    var items: [[String: Any]] { self["items"] as? [[String: Any]] ?? [] }
}
