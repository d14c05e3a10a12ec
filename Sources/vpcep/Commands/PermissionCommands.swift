import ArgumentParser
import VPCEPClient

struct PermissionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "permission", abstract: "The allow-list of a service you publish: who may connect to it.",
        discussion: """
            An entry is iam:domain::<tenant-id> (one tenant) or * (every tenant). A bare tenant id is \
            taken as iam:domain::<tenant-id>. You are always allowed to connect to your own services.
            """,
        subcommands: [Add.self, Remove.self, List.self]
    )

    /// What the entry does with the endpoints of the tenants it admits.
    enum DecisionFlag: String, EnumerableFlag {
        case autoAccept, manual, deny

        static func help(for value: Self) -> ArgumentHelp? {
            switch value {
            case .autoAccept: "Accept their endpoints at once, even when the service requires approval."
            case .manual: "Let the service's approval setting decide (the default)."
            case .deny: "Refuse them, even when * admits everyone."
            }
        }

        var wire: PermissionDecision {
            switch self {
            case .autoAccept: .autoAccept
            case .manual: .manual
            case .deny: .deny
            }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Allow tenants to create endpoints of a service, on terms.",
            discussion: """
                An entry already on the list takes the terms and description given (what is not given goes \
                back to its default), so running the same command again changes nothing.
                """)
        @Argument(help: "Service id or service name.") var service: ServiceReference
        @Argument(help: "iam:domain::<tenant-id>, a bare tenant id (same thing), or *.") var entries: [PermissionArgument]
        @Option(help: "Up to 128 characters, no < > or control characters; for every entry added.") var description: String = ""
        @Flag var decision: DecisionFlag = .manual
        @Option(help: "The most endpoints each of these tenants may hold on the service (0-10000).") var limit: UInt32?
        @Option(help: "From this time on the entry admits no one (RFC 3339, e.g. 2027-01-01T00:00:00Z).") var expires: String = ""
        @Option(help: "keep (default): live connections stay after --expires; reject: they are rejected then.")
        var onExpiry: OnExpiryArgument = .keep
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = AddPermissionsRequest(
                serviceId: service.id, serviceName: service.name,
                entries: entries.map {
                    PermissionEntry(
                        permission: $0.permission, description: description, decision: decision.wire,
                        connectionLimit: limit, expiresAt: expires, onExpiry: onExpiry.wire)
                }
            )
            try await global.call({ client throws(VPCEPError) in
                try await client.addPermissions(request)
            }, print: { Output.printList($0, layout: .permission, format: $1, terminalWidth: global.tableWidth) })
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove entries from a service's allow-list.",
            discussion: """
                Existing endpoints stay connected unless --reject-existing: then the live endpoints of \
                tenants no longer admitted are rejected in the same step. Prints how many entries were \
                removed and the endpoints of tenants no longer admitted (affected); --dry-run prints the \
                same and changes nothing.
                """
        )
        @Argument(help: "Service id or service name.") var service: ServiceReference
        @Argument(help: "iam:domain::<tenant-id>, a bare tenant id (same thing), or *.") var entries: [PermissionArgument] = []
        @Option(name: .customLong("id"), help: "An entry's id (from permission list); repeatable.") var ids: [String] = []
        @Flag(help: "Reject the live endpoints of tenants the remaining entries no longer admit.") var rejectExisting = false
        @Flag(help: "Only show what would be removed and affected; change nothing.") var dryRun = false
        @OptionGroup var global: GlobalOptions

        func validate() throws {
            if entries.isEmpty && ids.isEmpty { throw ValidationError("Name at least one entry or --id.") }
        }

        func run() async throws {
            let request = RemovePermissionsRequest(
                serviceId: service.id, serviceName: service.name, permissions: entries.map(\.permission), ids: ids,
                onExisting: rejectExisting ? .reject : .keep, dryRun: dryRun
            )
            try await global.call({ client throws(VPCEPError) in
                try await client.removePermissions(request)
            }, print: { response, format in
                let headline = (dryRun ? "dry run: nothing was changed\n" : "") + "removed_count  \(response.removedCount)"
                Output.printAffected(response, headline: headline, format: format, terminalWidth: global.tableWidth)
            })
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a service's allow-list.")
        @Argument(help: "Service id or service name.") var service: ServiceReference
        @Option(help: "Only entries containing this.") var permission: String = ""
        @OptionGroup var paging: PageOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = ListPermissionsRequest(
                serviceId: service.id, serviceName: service.name, page: paging.page, permission: permission
            )
            try await global.call({ client throws(VPCEPError) in
                try await paging.fetch(request) { r throws(VPCEPError) in try await client.listPermissions(r) }
            }, print: { Output.printList($0, layout: .permission, format: $1, terminalWidth: global.tableWidth) })
        }
    }
}

/// `--on-expiry keep|reject`.
enum OnExpiryArgument: String, ExpressibleByArgument, CaseIterable {
    case keep, reject

    var wire: ExpiryAction {
        switch self {
        case .keep: .keep
        case .reject: .reject
        }
    }
}

struct AccessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "access", abstract: "Who may connect to a service, and on which terms.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Would a tenant be admitted to a service now, by which entry, on which terms?",
            discussion: """
                The service's owner may ask about any tenant; anyone else about itself (leave --tenant out). \
                The exit code is 0 whether or not the tenant is admitted: read "admitted".
                """)
        @Argument(help: "Service id or service name.") var service: ServiceReference
        @Option(help: "The tenant id to ask about (default: you).") var tenant: String = ""
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = CheckAccessRequest(serviceId: service.id, serviceName: service.name, tenantId: tenant)
            try await global.call({ client throws(VPCEPError) in
                try await client.checkAccess(request)
            }, print: Output.printResource)
        }
    }
}
