import Foundation
import VPCEPProto

// Input: one byte choosing the message type (modulo the number of types), then the bytes to decode.
//
// Decoding may refuse the bytes (that is fine, it must not crash). What it accepts must be a value
// the encoder can write back, and that encoding must decode to the same value and be stable:
// encode(decode(encode(v))) == encode(v). A NUL in a string would break this (protobuf-c cuts the
// string short), so would an unknown enum number that is not kept, or a sub-message presence lost.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtoMessages(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let type = messageTypes[Int(data[0]) % messageTypes.count]
    let body = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    roundTrip(type, body)
    return 0
}

private func roundTrip<Message: ProtoMessage>(_ type: Message.Type, _ body: UnsafeRawBufferPointer) {
    let decoded: Message
    do {
        decoded = try Message(serializedBytes: body)
    } catch {
        // Refusals are fine; each names the message it was decoding.
        precondition(error.messageName == Message.protoMessageName, "refusal names \(error.messageName)")
        return
    }
    let encoded: [UInt8]
    do {
        encoded = try decoded.serializedBytes()
    } catch {
        fatalError("\(Message.protoMessageName): decoded but cannot be encoded again: \(error)")
    }
    let lent = try? decoded.withSerializedBytes { Array($0) }
    precondition(lent == encoded, "\(Message.protoMessageName): withSerializedBytes differs from serializedBytes")
    let again: Message
    do {
        again = try Message(serializedBytes: encoded)
    } catch {
        fatalError("\(Message.protoMessageName): its own encoding does not decode: \(error)")
    }
    precondition(again == decoded, "\(Message.protoMessageName): \(decoded) became \(again) through an encode")
    precondition((try? again.serializedBytes()) == encoded, "\(Message.protoMessageName): encoding not stable")
}

// MARK: Seed corpus

/// With VPCEP_FUZZ_WRITE_SEEDS=<directory>, writes the seed corpus (each type's default value and
/// one value with fields set, encoded by the real encoder) and exits instead of fuzzing.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzProtoMessagesInitialize(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>
) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["VPCEP_FUZZ_WRITE_SEEDS"] else { return 0 }
    var seeds: [(String, [UInt8])] = []
    for (index, type) in messageTypes.enumerated() {
        seeds.append(("\(type.protoMessageName)-default", [UInt8(index)]))
    }
    for (index, type) in messageTypes.enumerated() {
        guard let sample = sampleEncoding(type) else { continue }
        seeds.append(("\(type.protoMessageName)-sample", [UInt8(index)] + sample))
    }
    writeSeeds(seeds, to: directory)
    exit(0)
}

/// A few messages with strings, enums, repeated and nested fields, for the types that have them.
private func sampleEncoding(_ type: any ProtoMessage.Type) -> [UInt8]? {
    let samples: [any ProtoMessage] = [
        Tag(key: "env", value: "prod"),
        EndpointService(
            id: "eps-0123456789abcdef", serviceName: "eu-west-1.web.eps-0123456789abcdef", name: "web",
            tenantId: "tenant-a", region: "eu-west-1", vpcId: "vpc-1", serviceType: .interface,
            backendType: .loadBalancer, backendId: "lb-1",
            ports: [PortMapping(terminalPort: 443, servicePort: 8443, protocol: .tcp)],
            approvalEnabled: true, clientIpMode: .toaOpen, description: "Café ☕",
            tags: [Tag(key: "env", value: "prod")], status: .available, connectionCount: 3,
            createdAt: "2024-01-02T03:04:05.678Z", updatedAt: "2024-01-02T03:04:06.000Z", revision: .max,
            warnings: ["w"], clientIpNote: "TOA"),
        Status(code: 3, reason: "INVALID_FIELD", message: "bad",
               fieldViolations: [FieldViolation(field: "name", reason: "EMPTY", description: "empty")],
               retryAfterMs: 100, requestId: "r-1"),
        CallHeader(method: "/vpcep.v1.Health/WhoAmI", region: "eu-west-1", timeoutMs: 5000, requestId: "r-1",
                   idempotencyKey: "k-1"),
        WhoAmIResponse(kind: .tenant, id: "alice", region: "eu-west-1", regions: ["eu-west-1", "eu-west-2"]),
    ]
    guard let sample = samples.first(where: { Swift.type(of: $0) == type }) else { return nil }
    return try? sample.serializedBytes()
}

func writeSeeds(_ seeds: [(String, [UInt8])], to directory: String) {
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for (name, bytes) in seeds {
        let path = (directory as NSString).appendingPathComponent("seed-\(name)")
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }
}
