import Foundation
import VPCEPConfigFile

/// The CLI's connection settings after flags, environment and the profile file are merged: flags
/// win, then `VPCEP_…` variables, then the chosen profile, then defaults. Each value remembers
/// where it came from, for `vpcep config show`.
struct CLISettings {
    struct Setting {
        var value: String?
        var source: String
    }

    /// Keys a profile may set, in the order `config show` prints them.
    static let keys = ["server", "region", "ca", "cert", "key", "output", "timeout"]
    static let environmentNames = [
        "server": "VPCEP_SERVER", "region": "VPCEP_REGION", "ca": "VPCEP_CA", "cert": "VPCEP_CERT", "key": "VPCEP_KEY",
        "output": "VPCEP_OUTPUT", "timeout": "VPCEP_TIMEOUT",
    ]
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
        let file: ConfigFile?
        if let data = FileManager.default.contents(atPath: configPath) {
            configExists = true
            do {
                file = try ConfigFile(parsing: String(decoding: data, as: UTF8.self), path: configPath)
            } catch {
                throw .configuration("profile file \(error)")
            }
        } else {
            configExists = false
            file = nil
        }

        let requestedProfile = profileFlag ?? environment["VPCEP_PROFILE"].flatMap { $0.isEmpty ? nil : $0 }
        if let requestedProfile {
            guard file?.sectionOrder.contains("profile.\(requestedProfile)") == true else {
                let known = Self.profileNames(file)
                throw .configuration("no profile \"\(requestedProfile)\" in \(configPath)"
                    + (known.isEmpty ? "" : " (profiles: \(known.joined(separator: ", ")))"))
            }
            profile = requestedProfile
        } else if case .string(let name)? = file?.value("default_profile") {
            guard file?.sectionOrder.contains("profile.\(name)") == true else {
                throw .configuration("\(configPath): default_profile names \"\(name)\", which has no [profile.\(name)] section")
            }
            profile = name
        } else if file?.sectionOrder.contains("profile.default") == true {
            profile = "default"
        }

        if let profile, let section = file?.sections["profile.\(profile)"] {
            for key in section.keys where !Self.keys.contains(key) {
                throw .configuration("\(configPath): [profile.\(profile)] has an unknown key \"\(key)\"; known: \(Self.keys.joined(separator: ", "))")
            }
        }

        for key in Self.keys {
            if let flag = flags[key] ?? nil, !flag.isEmpty {
                values[key] = Setting(value: flag, source: "flag --\(key)")
            } else if let name = Self.environmentNames[key], let env = environment[name], !env.isEmpty {
                values[key] = Setting(value: env, source: "env \(name)")
            } else if let profile, let value = file?.value(key, in: "profile.\(profile)") {
                var text: String
                switch value {
                case .string(let string): text = string
                case .integer(let integer): text = String(integer)
                default: throw .configuration("\(configPath): [profile.\(profile)] \(key) must be a string")
                }
                if Self.pathKeys.contains(key), !text.hasPrefix("/") {
                    let folder = URL(fileURLWithPath: configPath).deletingLastPathComponent()
                    text = folder.appendingPathComponent(text).standardizedFileURL.path
                }
                values[key] = Setting(value: text, source: "profile \(profile) (\(configPath))")
            } else if let fallback = Self.defaults[key] {
                values[key] = Setting(value: fallback, source: "default")
            } else {
                values[key] = Setting(value: nil, source: "not set")
            }
        }
    }

    subscript(key: String) -> String? { values[key]?.value }

    /// `--config`, then VPCEP_CONFIG, then $XDG_CONFIG_HOME/vpcep/config.toml, then ~/.config/vpcep/config.toml.
    static func configPath(flag: String?, environment: [String: String]) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let env = environment["VPCEP_CONFIG"], !env.isEmpty { return env }
        if let xdg = environment["XDG_CONFIG_HOME"], !xdg.isEmpty { return xdg + "/vpcep/config.toml" }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return home + "/.config/vpcep/config.toml"
    }

    private static func profileNames(_ file: ConfigFile?) -> [String] {
        (file?.sectionOrder ?? []).filter { $0.hasPrefix("profile.") }.map { String($0.dropFirst("profile.".count)) }
    }
}
