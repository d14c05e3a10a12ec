import NIOCore
import VPCEPProto
import VPCEPWire

/// A CALL the server accepted, read once at arrival: its header, its request and its one
/// deadline, `timeout_ms` after arrival whether the call runs at once or waits (docs/PROTOCOL.md
/// §4.5, §8.2).
struct AdmittedCall {
    let callID: UInt32
    let header: CallHeader
    var message: ByteBuffer
    /// The CALL frame's payload size, what a waiting call counts for.
    let bytes: Int
    let deadline: NIODeadline?

    /// Throws `MALFORMED_CALL_HEADER` when the payload or its header cannot be read.
    init(callID: UInt32, framePayload: ByteBuffer, now: NIODeadline) throws(VPCEPError) {
        do {
            let payload = try CallFramePayload(parsing: framePayload, callID: callID)
            header = try payload.header.withUnsafeReadableBytes { bytes throws(ProtoDecodingError) in
                try CallHeader(serializedBytes: bytes)
            }
            message = payload.message
        } catch {
            throw VPCEPError(code: .invalidArgument, reason: .malformedCallHeader,
                             message: "the call header could not be read: \(error)")
        }
        self.callID = callID
        bytes = framePayload.readableBytes
        deadline = header.timeoutMs == 0 ? nil : now + .milliseconds(Int64(clamping: header.timeoutMs))
    }

    /// What the call runs as: its request id, its caller and its method; throws the refusal when
    /// one of them is not acceptable.
    func resolve(peer: PeerIdentity?, router: RPCRouter) throws(VPCEPError) -> (requestID: String, peer: PeerIdentity, route: Route) {
        let requestID = try RequestID.resolve(header.requestId, callID: callID)
        guard let peer else {
            throw VPCEPError(code: .unauthenticated, reason: .certificateIdentityMissing,
                             message: "the client certificate has no vpcep://tenant/<id> or vpcep://operator/<name> URI SAN",
                             requestID: requestID)
        }
        guard let route = router.route(for: header.method) else {
            throw VPCEPError(code: .unimplemented, reason: .methodNotFound,
                             message: "no method \(header.method.prefix(200))", requestID: requestID)
        }
        return (requestID, peer, route)
    }
}
