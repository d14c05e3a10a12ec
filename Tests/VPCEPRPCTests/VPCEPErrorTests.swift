import Testing
import VPCEPProto
@testable import VPCEPRPC

/// A status may be OK; an error never is (PROTOCOL §5).
@Suite("VPCEPError is never OK")
struct VPCEPErrorTests {
    @Test("making a VPCEPError with code OK stops the process")
    func okIsRefused() async {
        await #expect(processExitsWith: .failure) {
            _ = VPCEPError(code: .ok, reason: .ok, message: "")
        }
    }

    @Test("an OK status off the wire is no error")
    func okStatusDecodesToNoError() {
        #expect(VPCEPError(Status(code: StatusCode.ok.rawValue, requestId: "r")) == nil)
    }

    @Test("a failing status off the wire keeps every part", arguments: [StatusCode.cancelled, .notFound, .unavailable, StatusCode(rawValue: 99)])
    func failingStatusDecodes(_ code: StatusCode) throws {
        let status = Status(code: code.rawValue, reason: Reason.quotaExceeded.rawValue, message: "m",
                            fieldViolations: [FieldViolation(field: "f", reason: Reason.quotaExceeded.rawValue, description: "d")],
                            retryAfterMs: 250, requestId: "r")
        let error = try #require(VPCEPError(status))
        #expect(error.code == code && error.reason == .quotaExceeded && error.field == "f")
        #expect(error.retryAfter == .milliseconds(250) && error.requestID == "r")
        #expect(error.status == status)
    }
}
