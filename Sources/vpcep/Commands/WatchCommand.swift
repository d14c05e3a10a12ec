import ArgumentParser
import Dispatch
import Foundation
import VPCEPClient

struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Follow committed changes as they happen, until Ctrl-C.",
        discussion: """
            One line per change: its sequence, time, kind, type, resource, who made it and the fields it \
            changed; --output json prints one WatchResponse object per line, bookmarks included (their seq \
            is where --since resumes). After a lost connection or a server restart the watch resumes where \
            it stopped, so no change is missed or shown twice. --snapshot first shows the current state of \
            every matching resource (type "snapshot"). Ctrl-C ends it with exit 0; a failure exits with its \
            status's code.
            """
    )
    @Option(help: "Only this service, its allow-list entries and the endpoints connected to it (a service id).")
    var service: String?
    @Option(help: "Only the resource with this id.") var resource: String?
    @Option(name: .customLong("kind"), help: "Only resources of this kind; repeatable.")
    var kinds: [EnumArgument<ResourceKind>] = []
    @Option(name: .customLong("type"), help: "Only changes of this type; repeatable.")
    var types: [EnumArgument<ChangeType>] = []
    @Option(help: "Start after this sequence (a change's seq or a bookmark's) instead of now.") var since: UInt64?
    @Flag(help: "Start with the current state of every matching resource.") var snapshot = false
    @Flag(help: "When the position is gone (older than the server keeps, or beyond its log), start over with a snapshot instead of failing.")
    var resync = false
    @OptionGroup var global: GlobalOptions

    func validate() throws {
        if since != nil && snapshot { throw ValidationError("--since and --snapshot cannot be used together.") }
        // On the wire an empty id means "no filter": an empty shell variable would watch everything.
        if service?.isEmpty == true { throw ValidationError("--service is empty; leave it out to watch every service.") }
        if resource?.isEmpty == true { throw ValidationError("--resource is empty; leave it out to watch every resource.") }
    }

    func run() async throws {
        var request = WatchRequest(
            kinds: kinds.map(\.value), resourceId: resource ?? "", serviceId: service ?? "", types: types.map(\.value))
        if let since {
            request.start = .afterSeq
            request.afterSeq = since
        } else if snapshot {
            request.start = .snapshot
        }
        let format = global.format
        let watched = request
        let options = WatchOptions(resyncOnCompaction: resync, maxConsecutiveFailures: Self.maxConsecutiveFailures)
        try await global.runUntilInterrupted { client throws(VPCEPError) in
            for try await change in client.watchChanges(watched, options: options) {
                Self.print(change, format: format)
            }
        }
    }

    /// Reconnections in a row, with the retry policy's backoff of at most 2 s, before the command
    /// gives up: about half a minute without a server.
    static let maxConsecutiveFailures = 20

    static func print(_ change: WatchChange, format: OutputFormat) {
        switch format {
        case .json:
            let response: WatchResponse
            switch change {
            case .event(let entry): response = WatchResponse(kind: .event, entry: entry)
            case .snapshot(let entry): response = WatchResponse(kind: .snapshot, entry: entry)
            case .bookmark(let seq): response = WatchResponse(kind: .bookmark, seq: seq)
            case .resync(let cause):
                Swift.print(JSONValue.object([
                    ("kind", .string("resync")), ("reason", .string(cause.reason.rawValue)), ("message", .string(cause.message)),
                ]).serialized(pretty: false))
                return
            }
            Swift.print(JSONValue(encoding: response).serialized(pretty: false))
        case .ids:
            switch change {
            case .event(let entry), .snapshot(let entry): Swift.print(TerminalText.escaped(entry.resourceId))
            case .bookmark, .resync: return
            }
        case .table:
            switch change {
            case .event(let entry): Swift.print(line(entry, type: entry.type.jsonName))
            case .snapshot(let entry): Swift.print(line(entry, type: "snapshot"))
            case .bookmark: return
            case .resync(let cause):
                FileHandle.standardError.write(Data(
                    "resync (\(cause.reason)): what was shown before is replaced by a new snapshot\n".utf8))
            }
        }
        // One line at a time reaches a pipe at once, not when a buffer fills.
        fflush(nil)
    }

    /// seq, time, kind, type, resource id, actor, changed fields; "-" for an empty one, so every
    /// line has seven fields.
    static func line(_ entry: HistoryEntry, type: String) -> String {
        let fields = [
            entry.seq == 0 ? "" : String(entry.seq), entry.time, entry.kind.jsonName, type, entry.resourceId, entry.actor,
            entry.changedFields.joined(separator: ","),
        ]
        return fields.map { $0.isEmpty ? "-" : TerminalText.escaped($0) }.joined(separator: "  ")
    }
}

extension GlobalOptions {
    /// Runs `body` with a fresh client until it returns, fails, or SIGINT / SIGTERM arrives;
    /// a signal ends it with exit 0 after what was printed is flushed, a failure with its exit code.
    func runUntilInterrupted(_ body: @escaping @Sendable (VPCEPClient) async throws(VPCEPError) -> Void) async throws {
        let format = self.format
        do {
            let client = try makeClient()
            let work = Task { () async -> VPCEPError? in
                do throws(VPCEPError) {
                    try await body(client)
                    return nil
                } catch {
                    return error
                }
            }
            let signals = [SIGINT, SIGTERM].map { number in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { work.cancel() }
                source.resume()
                return source
            }
            defer { signals.forEach { $0.cancel() } }
            let failure = await work.value
            await client.close()
            fflush(nil)
            guard let failure, !(work.isCancelled && failure.code == .cancelled) else { return }
            throw CLIError(error: failure)
        } catch let error as CLIError {
            error.report(format: format)
            throw ExitCode(error.exitCode)
        }
    }
}
