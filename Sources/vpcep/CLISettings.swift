import Configuration
import Foundation
import VPCEPConfiguration

/// The CLI's connection settings after flags, environment and the profile file are merged: flags
/// win, then `VPCEP_…` variables, then the chosen profile, then defaults. The merge is one
/// swift-configuration `ConfigReader` over those four; each value remembers where it came from,
/// for `vpcep config show`.
struct CLISettings {
    struct Setting {
        var value: String?
        var source: String
    }

    /// Keys a profile may set, in the order `config show` prints them.
    static let keys = ["server", "region", "ca", "cert", "key", "output", "timeout"]
    static let defaults = ["server": "127.0.0.1:7443", "output": "table", "timeout": "30"]
    /// Keys whose relative paths in a profile are taken relative to the profile file.
    static let pathKeys: Set<String> = ["ca", "cert", "key"]

    var values: [String: Setting] = [:]
    /// The profile file consulted, and whether it exists.
    var configPath: String
    var configExists: Bool
    /// The profile used, if any.
    var profile: String?

    init(flags: [String: String?], profileFlag: String?, configFlag: String?,
         environment: [String: String] = ProcessInfo.processInfo.environment) throws(CLIError) {
        configPath = Self.configPath(flag: configFlag, environment: environment)
        let file: TOMLFileProvider?
        if let data = FileManager.default.contents(atPath: configPath) {
            configExists = true
            do {
                file = try TOMLFileProvider(parsing: String(decoding: data, as: UTF8.self), path: configPath)
            } catch {
                throw .configuration("profile file \(error)")
            }
        } else {
            configExists = false
            file = nil
        }
        let profiles = Self.profileNames(file)

        let requestedProfile = profileFlag ?? environment["VPCEP_PROFILE"].flatMap { $0.isEmpty ? nil : $0 }
        if let requestedProfile {
            guard profiles.contains(requestedProfile) else {
                throw .configuration("no profile \"\(requestedProfile)\" in \(configPath)"
                    + (profiles.isEmpty ? "" : " (profiles: \(profiles.joined(separator: ", ")))"))
            }
            profile = requestedProfile
        } else if case .string(let name)? = try? file?.value(forKey: ["default_profile"], type: .string).value?.content {
            guard profiles.contains(name) else {
                throw .configuration("\(configPath): default_profile names \"\(name)\", which has no [profile.\(name)] section")
            }
            profile = name
        } else if profiles.contains("default") {
            profile = "default"
        }

        if let profile, let file {
            let prefix = "profile.\(profile)."
            for key in file.keys where key.hasPrefix(prefix) && !Self.keys.contains(String(key.dropFirst(prefix.count))) {
                throw .configuration("\(configPath): [profile.\(profile)] has an unknown key \"\(key.dropFirst(prefix.count))\"; known: \(Self.keys.joined(separator: ", "))")
            }
        }

        let reader = Self.reader(flags: flags, environment: environment, file: file, profile: profile)
        for key in Self.keys {
            let found: SourcedConfigReader.Sourced<String>?
            do {
                found = try reader.string(key)
            } catch {
                throw .configuration(error.description)
            }
            guard var found else {
                values[key] = Setting(value: nil, source: "not set")
                continue
            }
            if let profile, found.source == Self.profileSource(profile, path: configPath), Self.pathKeys.contains(key),
               !found.value.hasPrefix("/") {
                let folder = URL(fileURLWithPath: configPath).deletingLastPathComponent()
                found.value = folder.appendingPathComponent(found.value).standardizedFileURL.path
            }
            values[key] = Setting(value: found.value, source: found.source)
        }
    }

    subscript(key: String) -> String? { values[key]?.value }

    /// Flags, then `VPCEP_*` variables, then the profile's table of the file, then defaults; an
    /// empty flag or variable counts as unset, as it always has.
    private static func reader(flags: [String: String?], environment: [String: String], file: TOMLFileProvider?,
                               profile: String?) -> SourcedConfigReader {
        var flagValues: [AbsoluteConfigKey: ConfigValue] = [:]
        for case let (key, value??) in flags where !value.isEmpty {
            flagValues[AbsoluteConfigKey([key])] = ConfigValue(.string(value), isSecret: false)
        }
        var defaultValues: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, value) in defaults {
            defaultValues[AbsoluteConfigKey([key])] = ConfigValue(.string(value), isSecret: false)
        }
        let variables = environment.filter { $0.key.hasPrefix("VPCEP_") && !$0.value.isEmpty }
        var layers: [SourcedConfigReader.Layer] = [
            .init(InMemoryProvider(name: "flags", values: flagValues)) { key, _ in "flag --\(key)" },
            // `server` is looked up as VPCEP_SERVER, `ca` as VPCEP_CA.
            .init(EnvironmentVariablesProvider(environmentVariables: variables).prefixKeys(with: ["vpcep"])) { _, name in "env \(name)" },
        ]
        if let file, let profile {
            let source = profileSource(profile, path: file.path)
            layers.append(.init(file.prefixKeys(with: ConfigKey(["profile", profile]))) { _, _ in source })
        }
        layers.append(.init(InMemoryProvider(name: "defaults", values: defaultValues)) { _, _ in "default" })
        return SourcedConfigReader(layers)
    }

    private static func profileSource(_ profile: String, path: String) -> String { "profile \(profile) (\(path))" }

    /// `--config`, then VPCEP_CONFIG, then $XDG_CONFIG_HOME/vpcep/config.toml, then ~/.config/vpcep/config.toml.
    static func configPath(flag: String?, environment: [String: String]) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let env = environment["VPCEP_CONFIG"], !env.isEmpty { return env }
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty { return xdg + "/vpcep/config.toml" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.config/vpcep/config.toml"
    }

    /// The `[profile.NAME]` tables of the file, sorted.
    private static func profileNames(_ file: TOMLFileProvider?) -> [String] {
        (file?.tables ?? []).filter { $0.hasPrefix("profile.") }.map { String($0.dropFirst("profile.".count)) }
            .filter { !$0.contains(".") }
    }
}
