import ArgumentParser
import Foundation

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "The CLI's own settings.", subcommands: [Show.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show each connection setting, its value, and where it came from.",
            discussion: """
                Settings come from flags, then VPCEP_* environment variables, then a profile of the profile \
                file, then defaults. The profile file (TOML) holds named profiles:

                  default_profile = "alice"

                  [profile.alice]
                  server = "localhost:7443"
                  region = "eu-west-1"
                  ca = "certs/dev/ca.crt"        # relative paths are relative to this file
                  cert = "certs/dev/alice.crt"
                  key = "certs/dev/alice.key"

                Choose one with --profile NAME or VPCEP_PROFILE.
                """
        )
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let format = global.format
            let settings: CLISettings
            do {
                settings = try global.settings()
            } catch {
                error.report(format: format)
                throw ExitCode(error.exitCode)
            }
            let fileNote = settings.configExists ? settings.configPath : "\(settings.configPath) (not present)"
            switch format {
            case .json:
                var fields: [(String, JSONValue)] = [
                    ("config_file", .string(settings.configPath)), ("config_file_exists", .bool(settings.configExists)),
                    ("profile", settings.profile.map(JSONValue.string) ?? .null),
                ]
                fields.append(("settings", .object(CLISettings.keys.map { key in
                    let setting = settings.values[key]
                    return (key, .object([
                        ("value", setting?.value.map(JSONValue.string) ?? .null),
                        ("source", .string(setting?.source ?? "not set")),
                    ]))
                })))
                print(JSONValue.object(fields).serialized())
            case .table, .ids:
                print("profile file: \(fileNote)")
                print("profile:      \(settings.profile ?? "(none)")")
                // Values are paths and addresses people copy: only the source note gives way.
                Output.printTable(
                    columns: [("SETTING", "setting"), ("VALUE", "value"), ("SOURCE", "source")],
                    rows: CLISettings.keys.map { key in
                        [key, settings.values[key]?.value ?? "-", settings.values[key]?.source ?? "not set"]
                    },
                    narrowing: [.shorten("source")], terminalWidth: global.tableWidth
                )
            }
        }
    }
}
