// The few etcd v3 messages the watch scenario of Benchmarks/watch.sh uses (`etcdserverpb.KV/Put`,
// `etcdserverpb.Watch/Watch`), written by hand against the field numbers of etcd's
// api/etcdserverpb/rpc.proto and api/mvccpb/kv.proto (etcd 3.4, as Debian's etcd-server serves
// them; see BENCHMARKS.md, "Watch beside etcd"). Like GRPCPeerService, this keeps swift-protobuf and
// its protoc plugin out of the benchmark build: the bytes on the wire are the same protobuf.
// Fields the scenario does not read are skipped on decoding, as any protobuf decoder does.
import GRPCCore

/// An etcd request: encodes itself to protobuf bytes.
public protocol EtcdRequest: Sendable {
    func encoded() -> [UInt8]
}

/// An etcd response: decodes itself from protobuf bytes.
public protocol EtcdResponse: Sendable {
    init(decoding bytes: UnsafeRawBufferPointer) throws
}

/// `etcdserverpb.PutRequest`: key = 1, value = 2.
public struct PutRequest: EtcdRequest {
    public var key: [UInt8]
    public var value: [UInt8]

    public init(key: [UInt8], value: [UInt8]) {
        self.key = key
        self.value = value
    }

    public func encoded() -> [UInt8] {
        var out = ProtoWriter()
        out.bytes(1, key)
        out.bytes(2, value)
        return out.buffer
    }
}

/// `etcdserverpb.PutResponse`: only its arrival matters (header = 1 is skipped).
public struct PutResponse: EtcdResponse {
    public init(decoding bytes: UnsafeRawBufferPointer) throws {
        var reader = ProtoReader(bytes)
        while let field = try reader.next() { _ = field }
    }
}

/// `etcdserverpb.WatchRequest` with its `create_request` (= 1), a `WatchCreateRequest` of
/// key = 1 and range_end = 2: every key in [key, rangeEnd), or `key` alone when range_end is empty.
public struct WatchCreateRequest: EtcdRequest {
    public var key: [UInt8]
    public var rangeEnd: [UInt8]

    /// The one key `key`.
    public init(key: [UInt8]) {
        self.key = key
        rangeEnd = []
    }

    /// Every key that starts with `prefix` (range_end is the prefix with its last byte plus one).
    public init(prefix: [UInt8]) {
        key = prefix
        var end = prefix
        end[end.count - 1] += 1
        rangeEnd = end
    }

    public func encoded() -> [UInt8] {
        var create = ProtoWriter()
        create.bytes(1, key)
        if !rangeEnd.isEmpty { create.bytes(2, rangeEnd) }
        var out = ProtoWriter()
        out.bytes(1, create.buffer)
        return out.buffer
    }
}

/// `etcdserverpb.WatchResponse`: watch_id = 2, created = 3, canceled = 4, compact_revision = 5,
/// cancel_reason = 6, events = 11 (`mvccpb.Event`: kv = 2, a `mvccpb.KeyValue` of key = 1,
/// mod_revision = 3, value = 5).
public struct WatchResponse: EtcdResponse {
    public struct Event: Sendable {
        public var key: [UInt8] = []
        public var value: [UInt8] = []
        public var modRevision: Int64 = 0
    }

    public var watchID: Int64 = 0
    public var created = false
    public var canceled = false
    public var cancelReason = ""
    public var events: [Event] = []

    public init(decoding bytes: UnsafeRawBufferPointer) throws {
        var reader = ProtoReader(bytes)
        while let field = try reader.next() {
            switch field {
            case .varint(2, let v): watchID = Int64(bitPattern: v)
            case .varint(3, let v): created = v != 0
            case .varint(4, let v): canceled = v != 0
            case .bytes(6, let b): cancelReason = String(decoding: b, as: UTF8.self)
            case .bytes(11, let b): events.append(try Self.event(b))
            default: break
            }
        }
    }

    private static func event(_ bytes: UnsafeRawBufferPointer) throws -> Event {
        var event = Event()
        var reader = ProtoReader(bytes)
        while let field = try reader.next() {
            guard case .bytes(2, let kv) = field else { continue }
            var kvReader = ProtoReader(kv)
            while let kvField = try kvReader.next() {
                switch kvField {
                case .bytes(1, let b): event.key = Array(b)
                case .varint(3, let v): event.modRevision = Int64(bitPattern: v)
                case .bytes(5, let b): event.value = Array(b)
                default: break
                }
            }
        }
        return event
    }
}

public enum EtcdAPI {
    public static let put = GRPCCore.MethodDescriptor(fullyQualifiedService: "etcdserverpb.KV", method: "Put")
    public static let watch = GRPCCore.MethodDescriptor(fullyQualifiedService: "etcdserverpb.Watch", method: "Watch")
}

public struct EtcdSerializer<Message: EtcdRequest>: MessageSerializer {
    public init() {}

    public func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
        Bytes(message.encoded())
    }
}

public struct EtcdDeserializer<Message: EtcdResponse>: MessageDeserializer {
    public init() {}

    public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
        try serializedMessageBytes.withUnsafeBytes { try Message(decoding: $0) }
    }
}

public struct ProtoWireError: Error {}

/// Writes length-delimited fields (wire type 2), the only kind the requests above carry.
struct ProtoWriter {
    var buffer: [UInt8] = []

    mutating func bytes(_ field: UInt64, _ value: [UInt8]) {
        varint(field << 3 | 2)
        varint(UInt64(value.count))
        buffer.append(contentsOf: value)
    }

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            buffer.append(UInt8(v & 0x7f) | 0x80)
            v >>= 7
        }
        buffer.append(UInt8(v))
    }
}

/// Reads the fields of one message in order; fixed-width fields are skipped.
struct ProtoReader {
    enum Field {
        case varint(UInt64, UInt64)
        case bytes(UInt64, UnsafeRawBufferPointer)
        case skipped
    }

    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    mutating func next() throws -> Field? {
        guard offset < bytes.count else { return nil }
        let key = try varint()
        switch key & 7 {
        case 0: return .varint(key >> 3, try varint())
        case 1: try skip(8); return .skipped
        case 2:
            let length = Int(try varint())
            guard length <= bytes.count - offset else { throw ProtoWireError() }
            let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + length])
            offset += length
            return .bytes(key >> 3, slice)
        case 5: try skip(4); return .skipped
        default: throw ProtoWireError()
        }
    }

    private mutating func skip(_ count: Int) throws {
        guard count <= bytes.count - offset else { throw ProtoWireError() }
        offset += count
    }

    private mutating func varint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count, shift < 64 {
            let byte = bytes[offset]
            offset += 1
            result |= UInt64(byte & 0x7f) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        throw ProtoWireError()
    }
}
