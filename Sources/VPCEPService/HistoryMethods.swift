import Foundation
import VPCEPProto
import VPCEPRPC
import VPCEPRegistry

/// The History service: the change log, read back (docs/DOMAIN.md, "History").
struct HistoryMethods: Sendable {
    let registry: Registry

    func register(into router: inout RPCRouter) {
        let registry = registry
        router.register(HistoryAPI.listHistory) { request, context in
            let result = try await registry.listHistory(
                context.registryContext, resourceID: request.resourceId,
                since: try Self.time(request.since, field: "since"), until: try Self.time(request.until, field: "until"),
                page: WireMapping.page(request.page))
            return ListHistoryResponse(
                items: result.items.map(WireMapping.historyEntry), totalCount: UInt32(clamping: result.totalCount))
        }
        // Detached: a Watch that waits holds no task on the server (docs/DOMAIN.md, "Watch").
        router.registerDetachedStreaming(HistoryAPI.watch) { request, context, stream in
            let (filter, start) = try Self.watchRequest(request)
            // An event's response is mapped and encoded once for all the watchers of one view.
            let watch = try registry.makeWatch(
                context.registryContext, filter: filter, start: start, executor: stream.taskExecutor,
                encode: { message in try WireMapping.watchResponse(message).serializedBytes() as [UInt8] },
                send: { bytes in try await stream.send(serialized: bytes) })
            stream.onCancel { watch.cancel() }
            watch.start { error in stream.finish(throwing: error) }
        }
    }

    /// A Watch's filter and start, validated (docs/DOMAIN.md, "Watch").
    static func watchRequest(_ request: WatchRequest) throws(RegistryError) -> (WatchFilter, VPCEPRegistry.WatchStart) {
        var filter = WatchFilter(resourceID: request.resourceId, serviceID: request.serviceId)
        for (index, kind) in request.kinds.enumerated() {
            guard let known = WireMapping.resourceKind(kind) else {
                throw WireMapping.unknownValue(kind, field: "kinds[\(index)]")
            }
            filter.kinds.insert(known)
        }
        for (index, type) in request.types.enumerated() {
            guard let known = WireMapping.changeType(type) else {
                throw WireMapping.unknownValue(type, field: "types[\(index)]")
            }
            filter.types.insert(known)
        }
        let start: VPCEPRegistry.WatchStart
        switch request.start {
        case .unspecified: start = .now
        case .afterSeq: start = .afterSeq(request.afterSeq)
        case .snapshot: start = .snapshot
        default: throw WireMapping.unknownValue(request.start, field: "start")
        }
        if request.afterSeq != 0, request.start != .afterSeq {
            throw RegistryError(
                code: .invalidArgument, reason: .watchStartInvalid,
                message: "after_seq is only read with start WATCH_START_AFTER_SEQ", field: "after_seq")
        }
        return (filter, start)
    }

    /// An optional time bound: empty means none.
    static func time(_ text: String, field: String) throws(RegistryError) -> Date? {
        guard !text.isEmpty else { return nil }
        guard let date = RFC3339.parse(text) else {
            throw RegistryError(
                code: .invalidArgument, reason: .timeInvalid,
                message: "\(field) must be an RFC 3339 timestamp, e.g. 2026-11-30T15:00:00Z", field: field)
        }
        return date
    }
}

extension WireMapping {
    static func historyEntry(_ entry: VPCEPRegistry.HistoryEntry) -> VPCEPProto.HistoryEntry {
        var wire = VPCEPProto.HistoryEntry(
            seq: entry.seq, kind: resourceKind(entry.kind), resourceId: entry.resourceID, region: entry.region,
            type: changeType(entry.type), actor: entry.actor, time: timestamp(entry.committedAt),
            requestId: entry.requestID, revisionBefore: entry.revisionBefore ?? 0, revisionAfter: entry.revisionAfter ?? 0)
        let after = StateMessage(entry.state)
        after.set(on: &wire)
        if let previous = entry.previous {
            wire.changedFields = after.fieldsDiffering(from: StateMessage(previous))
        }
        return wire
    }

    /// The names of the top-level fields whose values differ between two JSON objects of one message type.
    /// Both come from one encoder with sorted keys (`StateMessage.json`), so equal values are written
    /// with equal bytes: the fields' bytes are compared as written. Parsing both and writing every field
    /// again cost hundreds of µs per event, on every watched update's way out; it remains for input
    /// the split does not take.
    static func changedFields(_ before: Data, _ after: Data) -> [String] {
        guard let old = topLevelMembers(before), let new = topLevelMembers(after) else {
            return changedFieldsReparsed(before, after)
        }
        return Set(old.keys).union(new.keys).filter { old[$0] != new[$0] }.sorted()
    }

    /// A JSON object's members as written, key to the value's bytes; nil when `json` is not one object,
    /// has an escaped or repeated key, or does not end where the object does.
    static func topLevelMembers(_ json: Data) -> [String: ArraySlice<UInt8>]? {
        let bytes = [UInt8](json)
        var i = 0
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }
        func skipSpace() { while i < bytes.count, isSpace(bytes[i]) { i += 1 } }
        // From the opening quote at i to just past the closing one; false when the string does not end.
        func skipString() -> Bool {
            i += 1
            while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\\"): i += 2
                case UInt8(ascii: "\""):
                    i += 1
                    return true
                default: i += 1
                }
            }
            return false
        }
        skipSpace()
        guard i < bytes.count, bytes[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        var members: [String: ArraySlice<UInt8>] = [:]
        skipSpace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
            i += 1
            skipSpace()
            return i == bytes.count ? members : nil
        }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            let keyStart = i + 1
            guard skipString() else { return nil }
            let keyBytes = bytes[keyStart..<(i - 1)]
            guard !keyBytes.contains(UInt8(ascii: "\\")) else { return nil }
            let key = String(decoding: keyBytes, as: UTF8.self)
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
            i += 1
            skipSpace()
            let valueStart = i
            var depth = 0
            scan: while i < bytes.count {
                switch bytes[i] {
                case UInt8(ascii: "\""):
                    guard skipString() else { return nil }
                    continue scan
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    if depth == 0 { break scan }
                    depth -= 1
                case UInt8(ascii: ","):
                    if depth == 0 { break scan }
                default:
                    break
                }
                i += 1
            }
            guard i < bytes.count else { return nil }
            var valueEnd = i
            while valueEnd > valueStart, isSpace(bytes[valueEnd - 1]) { valueEnd -= 1 }
            guard valueEnd > valueStart, members.updateValue(bytes[valueStart..<valueEnd], forKey: key) == nil else {
                return nil
            }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            guard bytes[i] == UInt8(ascii: "}") else { return nil }
            i += 1
            skipSpace()
            return i == bytes.count ? members : nil
        }
    }

    /// `changedFields` by parsing both objects and writing each field again in one canonical form.
    static func changedFieldsReparsed(_ before: Data, _ after: Data) -> [String] {
        guard let old = try? JSONSerialization.jsonObject(with: before) as? [String: Any],
            let new = try? JSONSerialization.jsonObject(with: after) as? [String: Any]
        else { return [] }
        func canonical(_ value: Any?) -> Data? {
            guard let value else { return nil }
            return try? JSONSerialization.data(withJSONObject: [value], options: [.sortedKeys, .fragmentsAllowed])
        }
        return Set(old.keys).union(new.keys).filter { canonical(old[$0]) != canonical(new[$0]) }.sorted()
    }

    static func watchResponse(_ message: WatchMessage) -> WatchResponse {
        switch message {
        case .event(let entry):
            return WatchResponse(kind: .event, entry: historyEntry(entry))
        case .snapshot(let entry):
            // A state, not a change: no type, time, actor or revision before (history.proto).
            var wire = historyEntry(entry)
            (wire.type, wire.time, wire.actor, wire.requestId, wire.revisionBefore) = (.unspecified, "", "", "", 0)
            return WatchResponse(kind: .snapshot, entry: wire)
        case .bookmark(let seq):
            return WatchResponse(kind: .bookmark, seq: seq)
        }
    }

    /// The domain's kind for a wire value; nil for UNSPECIFIED and values this build does not know.
    static func resourceKind(_ kind: VPCEPProto.ResourceKind) -> VPCEPRegistry.ResourceKind? {
        VPCEPRegistry.ResourceKind.allCases.first { resourceKind($0) == kind }
    }

    static func changeType(_ type: VPCEPProto.ChangeType) -> VPCEPRegistry.ChangeType? {
        VPCEPRegistry.ChangeType.allCases.first { changeType($0) == type }
    }

    static func resourceKind(_ kind: VPCEPRegistry.ResourceKind) -> VPCEPProto.ResourceKind {
        switch kind {
        case .vpc: .vpc
        case .subnet: .subnet
        case .loadBalancer: .loadBalancer
        case .vm: .vm
        case .endpointService: .endpointService
        case .permission: .permission
        case .endpoint: .endpoint
        case .quota: .quota
        }
    }

    static func changeType(_ type: VPCEPRegistry.ChangeType) -> VPCEPProto.ChangeType {
        switch type {
        case .created: .created
        case .updated: .updated
        case .deleted: .deleted
        case .connectionRequested: .connectionRequested
        case .connectionAccepted: .connectionAccepted
        case .connectionRejected: .connectionRejected
        case .connectionSuspended: .connectionSuspended
        case .connectionResumed: .connectionResumed
        case .permissionAdded: .permissionAdded
        case .permissionRemoved: .permissionRemoved
        case .quotaChanged: .quotaChanged
        }
    }
}

/// A resource state as the wire message a read of it answers, so history shows what the reads show.
private enum StateMessage {
    case vpc(Vpc)
    case subnet(VPCEPProto.Subnet)
    case loadBalancer(LoadBalancer)
    case vm(Vm)
    case endpointService(VPCEPProto.EndpointService)
    case permission(VPCEPProto.Permission)
    case endpoint(VPCEPProto.Endpoint)
    case connection(VPCEPProto.Connection)
    case quota(VPCEPProto.Quota)

    init(_ state: ResourceState) {
        switch state {
        case .vpc(let vpc): self = .vpc(WireMapping.vpc(vpc))
        case .subnet(let subnet): self = .subnet(WireMapping.subnet(subnet))
        case .backend(let backend):
            self = backend.kind == .vm ? .vm(WireMapping.vm(backend)) : .loadBalancer(WireMapping.loadBalancer(backend))
        case .endpointService(let service): self = .endpointService(WireMapping.endpointService(service))
        case .permission(let permission): self = .permission(WireMapping.permission(permission))
        case .endpoint(let endpoint): self = .endpoint(WireMapping.endpoint(endpoint))
        case .connection(let connection): self = .connection(WireMapping.connection(connection))
        case .quota(let quota):
            self = .quota(VPCEPProto.Quota(
                type: WireMapping.quotaType(quota.type), used: UInt32(clamping: quota.used), quota: UInt32(clamping: quota.limit)))
        }
    }

    func set(on entry: inout VPCEPProto.HistoryEntry) {
        switch self {
        case .vpc(let message): entry.vpc = message
        case .subnet(let message): entry.subnet = message
        case .loadBalancer(let message): entry.loadBalancer = message
        case .vm(let message): entry.vm = message
        case .endpointService(let message): entry.endpointService = message
        case .permission(let message): entry.permission = message
        case .endpoint(let message): entry.endpoint = message
        case .connection(let message): entry.connection = message
        case .quota(let message): entry.quota = message
        }
    }

    /// The fields (their JSON names, sorted) whose values differ from `previous`'s. Compared as values:
    /// encoding both states to JSON to compare them cost most of a watched update's way out.
    func fieldsDiffering(from previous: StateMessage) -> [String] {
        let names: [String]
        switch (self, previous) {
        case (.vpc(let new), .vpc(let old)): names = new.fieldsDiffering(from: old)
        case (.subnet(let new), .subnet(let old)): names = new.fieldsDiffering(from: old)
        case (.loadBalancer(let new), .loadBalancer(let old)): names = new.fieldsDiffering(from: old)
        case (.vm(let new), .vm(let old)): names = new.fieldsDiffering(from: old)
        case (.endpointService(let new), .endpointService(let old)): names = new.fieldsDiffering(from: old)
        case (.permission(let new), .permission(let old)): names = new.fieldsDiffering(from: old)
        case (.endpoint(let new), .endpoint(let old)): names = new.fieldsDiffering(from: old)
        case (.connection(let new), .connection(let old)): names = new.fieldsDiffering(from: old)
        case (.quota(let new), .quota(let old)): names = new.fieldsDiffering(from: old)
        default:
            // Two kinds of message (a stored state of another shape): their JSON decides.
            return WireMapping.changedFields(previous.json, json)
        }
        return names.sorted()
    }

    /// The message's JSON (proto field names), for comparing two states of different kinds.
    var json: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let data: Data?
        switch self {
        case .vpc(let message): data = try? encoder.encode(message)
        case .subnet(let message): data = try? encoder.encode(message)
        case .loadBalancer(let message): data = try? encoder.encode(message)
        case .vm(let message): data = try? encoder.encode(message)
        case .endpointService(let message): data = try? encoder.encode(message)
        case .permission(let message): data = try? encoder.encode(message)
        case .endpoint(let message): data = try? encoder.encode(message)
        case .connection(let message): data = try? encoder.encode(message)
        case .quota(let message): data = try? encoder.encode(message)
        }
        return data ?? Data()
    }
}
