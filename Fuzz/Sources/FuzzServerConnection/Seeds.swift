import Foundation
import NIOCore
import VPCEPProto
import VPCEPWire

/// With VPCEP_FUZZ_WRITE_SEEDS=<directory>, writes the seed corpus (connections a client could
/// really open, made with the real encoders) and exits instead of fuzzing.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzServerConnectionInitialize(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>
) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["VPCEP_FUZZ_WRITE_SEEDS"] else { return 0 }
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for (name, bytes) in seeds() {
        let path = (directory as NSString).appendingPathComponent("seed-\(name)")
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }
    exit(0)
}

/// A request whose encoding is `size` bytes long, which picks the handler's `Behaviour`.
private func vpc(size: Int) -> CreateVpcRequest {
    CreateVpcRequest(name: String(repeating: "v", count: size - 2), cidr: "")
}

private func call(_ callID: UInt32, _ path: String, _ request: some ProtoMessage, timeoutMs: UInt64 = 0,
                  header: [UInt8]? = nil) -> ByteBuffer {
    let headerBytes = header ?? (try! CallHeader(method: path, region: "eu-west-1", timeoutMs: timeoutMs,
                                                 requestId: "req-\(callID)", idempotencyKey: "").serializedBytes())
    var payload = ByteBuffer()
    payload.writeInteger(UInt32(headerBytes.count))
    payload.writeBytes(headerBytes)
    payload.writeBytes(try! request.serializedBytes())
    return frame(.call, callID: callID, payload)
}

private func frame(_ type: FrameType, flags: FrameFlags = [], callID: UInt32, _ payload: ByteBuffer = ByteBuffer()) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeFrame(type: type, flags: flags, callID: callID, payload: payload)
    return buffer
}

private func ping(ack: Bool = false) -> ByteBuffer {
    frame(.ping, flags: ack ? .ack : [], callID: 0, ByteBuffer(bytes: [1, 2, 3, 4, 5, 6, 7, 8]))
}

private func seed(_ options: UInt8, chunk: UInt8 = 0, _ frames: [ByteBuffer]) -> [UInt8] {
    var bytes: [UInt8] = [options, chunk]
    for frame in frames { bytes += Array(frame.readableBytesView) }
    return bytes
}

private func seeds() -> [(String, [UInt8])] {
    let createVpc = InventoryAPI.createVpc.path
    let whoAmI = HealthAPI.whoAmI.path
    return [
        ("unary", seed(0x00, [call(1, whoAmI, WhoAmIRequest())])),
        ("each-behaviour", seed(0x00, [
            call(1, createVpc, vpc(size: 8)), call(3, createVpc, vpc(size: 9)),
            call(5, createVpc, vpc(size: 10)), call(7, createVpc, vpc(size: 11), timeoutMs: 100),
        ])),
        ("cancel-and-ping", seed(0x00, [call(1, createVpc, vpc(size: 11)), ping(), frame(.cancel, callID: 1), ping(ack: true)])),
        ("stream", seed(0x00, [call(1, streamMethod.path, vpc(size: 12)), call(2, streamMethod.path, vpc(size: 15))])),
        ("stream-small-buffer", seed(0x20, [call(1, streamMethod.path, vpc(size: 14))])),
        ("drain", seed(0x08 | 0x80, chunk: 40, [
            call(1, createVpc, vpc(size: 11)), call(2, whoAmI, WhoAmIRequest()), call(3, whoAmI, WhoAmIRequest()),
        ])),
        ("concurrency-limit", seed(0x02, [
            call(1, createVpc, vpc(size: 11)), call(2, createVpc, vpc(size: 11)), call(3, whoAmI, WhoAmIRequest()),
        ])),
        ("refusals", seed(0x01, [
            call(1, whoAmI, WhoAmIRequest()), call(2, "/vpcep.v1.Nope/Nothing", WhoAmIRequest()),
            call(3, whoAmI, WhoAmIRequest(), header: [0xFF, 0xFF]),
        ])),
        ("malformed-request", seed(0x00, [call(1, createVpc, Tag(key: "", value: "\u{FF}"))])),
        ("drip-fed", seed(0x40, chunk: 1, [call(1, createVpc, vpc(size: 10)), ping()])),
        ("keepalive-idle", seed(0x10 | 0xC0, chunk: 20, [call(1, whoAmI, WhoAmIRequest()), ping(ack: true)])),
        ("frame-too-large", seed(0x20, [call(1, createVpc, CreateVpcRequest(name: String(repeating: "n", count: 600)))])),
        ("protocol-violation", seed(0x00, [call(2, whoAmI, WhoAmIRequest()), call(1, whoAmI, WhoAmIRequest())])),
    ]
}
