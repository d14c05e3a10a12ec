import ArgumentParser
import VPCEPClient

/// `vpcep tag add|remove ID …`: tags of a service you publish or of an endpoint of yours. Ids carry no
/// kind, so the command asks the server first whether ID is a service it may read (GetEndpointService)
/// and otherwise treats it as an endpoint; an id that is neither fails as ENDPOINT_NOT_FOUND (exit 4).
struct TagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag", abstract: "Add or remove tags of a service or an endpoint.",
        discussion: "ID is a service id or an endpoint id: the command asks the server which one it is.",
        subcommands: [Add.self, Remove.self]
    )

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add tags; a key already there takes the new value.",
            discussion: "At most 20 tags per resource in all, with the rules of tags at create. Prints the resource."
        )
        @Argument(help: "Service id or endpoint id.") var id: String
        @Argument(help: "KEY=VALUE (KEY alone: an empty value).") var tags: [TagArgument]
        @OptionGroup var change: TagChangeOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let request = AddTagsRequest(id: id, tags: tags.map(\.tag), expectedRevision: change.revision ?? 0)
            let options = change.callOptions
            try await global.call({ client throws(VPCEPError) -> TaggedResource in
                if try await TaggedResource.isService(id, client) {
                    return .service(try await client.addEndpointServiceTags(request, options: options))
                }
                return .endpoint(try await client.addEndpointTags(request, options: options))
            }, print: { $0.print(format: $1) })
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove tags: KEY whatever its value, KEY=VALUE only while it has that value.",
            discussion: "A key the resource does not carry is no error and changes nothing. Prints the resource."
        )
        @Argument(help: "Service id or endpoint id.") var id: String
        @Argument(help: "KEY, or KEY=VALUE.") var tags: [String]
        @OptionGroup var change: TagChangeOptions
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            var request = RemoveTagsRequest(id: id, expectedRevision: change.revision ?? 0)
            for text in tags {
                if let equals = text.firstIndex(of: "=") {
                    request.tags.append(Tag(key: String(text[..<equals]), value: String(text[text.index(after: equals)...])))
                } else {
                    request.keys.append(text)
                }
            }
            let options = change.callOptions
            try await global.call({ [request] client throws(VPCEPError) -> TaggedResource in
                if try await TaggedResource.isService(id, client) {
                    return .service(try await client.removeEndpointServiceTags(request, options: options))
                }
                return .endpoint(try await client.removeEndpointTags(request, options: options))
            }, print: { $0.print(format: $1) })
        }
    }
}

/// Options of a tag change.
struct TagChangeOptions: ParsableArguments {
    @Option(help: "Apply only if the resource is still at this revision (from get); fails with exit 5 otherwise.")
    var revision: UInt64?
    @Option(help: "Makes a retried change safe: the same key with the same request returns the first result.")
    var idempotencyKey: String?

    var callOptions: CallOptions {
        var options = CallOptions()
        options.idempotencyKey = idempotencyKey
        return options
    }
}

/// What a tag change returns: the service or the endpoint.
enum TaggedResource {
    case service(EndpointService)
    case endpoint(Endpoint)

    func print(format: OutputFormat) {
        switch self {
        case .service(let service): Output.printResource(service, format: format)
        case .endpoint(let endpoint): Output.printResource(endpoint, format: format)
        }
    }

    /// Whether `id` is a service the caller may read; not found means "try it as an endpoint".
    static func isService(_ id: String, _ client: VPCEPClient) async throws(VPCEPError) -> Bool {
        do throws(VPCEPError) {
            _ = try await client.getEndpointService(GetEndpointServiceRequest(id: id))
            return true
        } catch where error.reason == .serviceNotFound {
            return false
        }
    }
}
