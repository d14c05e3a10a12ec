import Testing
import VPCEPTestSupport

/// Every TLS test runs inside this suite so the certificates are minted once per run.
@Suite(.pki)
struct TLSTests {}

extension PKI {
    static func require() throws -> PKI {
        try #require(PKI.current, "the PKI trait did not run")
    }
}
