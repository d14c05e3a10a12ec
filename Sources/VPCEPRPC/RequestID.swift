/// The rule for `CallHeader.request_id` (docs/PROTOCOL.md §4.3).
enum RequestID {
    static let maxLength = 128

    /// The request id a call runs under: the caller's, or `srv-<call id>` when it sent none.
    /// Anything but 1-128 printable ASCII characters is refused, not cut or cleaned: the id is
    /// echoed in logs and statuses, and an id the caller would not recognise is of no use to it.
    static func resolve(_ requestID: String, callID: UInt32) throws(VPCEPError) -> String {
        let made = "srv-\(callID)"
        if requestID.isEmpty { return made }
        guard requestID.utf8.count <= maxLength, requestID.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw VPCEPError(
                code: .invalidArgument, reason: .requestIDInvalid,
                message: "request_id must be empty or 1-\(maxLength) printable ASCII characters",
                field: "request_id", requestID: made)
        }
        return requestID
    }
}
