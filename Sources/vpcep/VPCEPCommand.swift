import ArgumentParser

@main
struct VPCEPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vpcep",
        abstract: "Manage VPC endpoint services, their backends, allow-lists, connections, endpoints and quotas, and read their history.",
        discussion: """
            Connection settings come from flags, the environment (VPCEP_SERVER, VPCEP_CA, VPCEP_CERT, \
            VPCEP_KEY, VPCEP_REGION, VPCEP_OUTPUT, VPCEP_TIMEOUT), or a profile in ~/.config/vpcep/config.toml \
            (see 'vpcep config show --help'). Global options may come before or after the command words. \
            Shell completion: vpcep --generate-completion-script bash|zsh|fish.
            """,
        subcommands: [
            VPCCommand.self, SubnetCommand.self, LoadBalancerCommand.self, VMCommand.self,
            ServiceCommand.self, PermissionCommand.self, AccessCommand.self, ConnectionCommand.self, EndpointCommand.self,
            QuotaCommand.self, TagCommand.self, HistoryCommand.self, WatchCommand.self, WhoAmICommand.self, ConfigCommand.self,
        ]
    )

    /// Parses with global options allowed before the command words too (`vpcep --output json
    /// service list`), as scripts write them, by moving them after the words.
    static func main() async {
        let given = Array(CommandLine.arguments.dropFirst())
        // swift-argument-parser's work grows with the square of the number of arguments (it
        // removes each used argument from its list by a linear search, in hash order, and copies
        // an array option's values on every append): 2,000 `--tag` took seconds. No command needs
        // more than a few hundred arguments (the server takes at most 20 tags, 50 ports, 100
        // entries), so longer command lines are refused before that work starts.
        guard given.count <= maxArguments else {
            exit(withError: ValidationError(
                "Too many arguments (\(given.count)); a command line takes at most \(maxArguments)."))
        }
        let arguments = GlobalOptionPlacement.moveLeadingGlobalOptions(given)
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

extension VPCEPCommand {
    /// Most arguments one command line may have (README, "Exit codes": more is a usage error).
    static let maxArguments = 1_000
}

enum GlobalOptionPlacement {
    /// Global options that take a value, and those that do not.
    static let valued: Set<String> = [
        "--server", "--ca", "--cert", "--key", "--region", "--output", "-o", "--timeout", "--profile", "--config",
    ]
    static let flags: Set<String> = ["--quiet", "-q"]

    static func moveLeadingGlobalOptions(_ arguments: [String]) -> [String] {
        var moved: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            let name = String(argument.split(separator: "=", maxSplits: 1).first ?? "")
            if flags.contains(argument) || (valued.contains(name) && argument.contains("=")) {
                moved.append(argument)
                index += 1
            } else if valued.contains(argument), index + 1 < arguments.count {
                moved += [argument, arguments[index + 1]]
                index += 2
            } else {
                break
            }
        }
        return Array(arguments[index...]) + moved
    }
}
