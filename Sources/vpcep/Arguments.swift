import ArgumentParser
import VPCEPClient

/// A schema enum as a command-line value. Input is case-insensitive and ignores `_` and `-`, so
/// `pending_acceptance`, the older `pendingAcceptance` and `PENDING-ACCEPTANCE` are the same
/// value; the unspecified value is never accepted. --help shows the snake_case names the CLI prints.
struct EnumArgument<Value: ProtoEnum>: ExpressibleByArgument {
    var value: Value

    init?(argument: String) {
        let wanted = Self.normalized(argument)
        guard let match = Value.allKnown.first(where: { candidate in
            candidate.rawValue != 0
                && (Self.normalized(candidate.jsonName) == wanted
                    || candidate.protoName.map(Self.normalized) == wanted)
        }) else { return nil }
        value = match
    }

    static var allValueStrings: [String] {
        Value.allKnown.filter { $0.rawValue != 0 }.map(\.jsonName)
    }

    static var defaultCompletionKind: CompletionKind { .list(allValueStrings) }

    private static func normalized(_ text: String) -> String {
        text.lowercased().filter { $0 != "_" && $0 != "-" }
    }
}

/// `KEY=VALUE`, or `KEY` alone for an empty value (on list filters: any value of the key).
/// Only the first `=` splits; the server checks the characters and lengths, and names the tag at fault.
struct TagArgument: ExpressibleByArgument {
    var tag: Tag

    init?(argument: String) {
        let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard let key = parts.first, !key.isEmpty else { return nil }
        tag = Tag(key: String(key), value: parts.count > 1 ? String(parts[1]) : "")
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// A service named on the command line by its id or by its service name; names always contain a
/// dot (`{region}.{name}.{id}`), ids never do.
struct ServiceReference: ExpressibleByArgument {
    var id = ""
    var name = ""

    init?(argument: String) {
        guard !argument.isEmpty else { return nil }
        if argument.contains(".") { name = argument } else { id = argument }
    }

    static var defaultCompletionKind: CompletionKind { .default }

    /// The id, looked up by service name first when a name was given (for calls that take only an id).
    func resolveID(_ client: VPCEPClient) async throws(VPCEPError) -> String {
        guard id.isEmpty else { return id }
        return try await client.getEndpointService(GetEndpointServiceRequest(serviceName: name)).id
    }
}

/// An allow-list entry: `iam:domain::<tenant>`, `*`, or a bare tenant id meaning `iam:domain::<tenant>`.
/// Anything else with a colon is passed on unchanged for the server to judge.
struct PermissionArgument: ExpressibleByArgument {
    var permission: String

    init?(argument: String) {
        guard !argument.isEmpty else { return nil }
        permission = argument == "*" || argument.contains(":") ? argument : "iam:domain::" + argument
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
