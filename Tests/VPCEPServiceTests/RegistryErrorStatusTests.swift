import Testing
import VPCEPRPC
import VPCEPRegistry
@testable import VPCEPService

/// Domain codes become wire codes by their canonical number (PROTOCOL §5); the names must agree too,
/// or a log line and the wire would disagree about the same failure.
@Suite struct RegistryErrorStatusTests {
    @Test(arguments: RegistryError.Code.allCases)
    func everyCodeMapsToTheStatusCodeOfTheSameNumberAndName(_ code: RegistryError.Code) {
        let error = RegistryError(code: code, reason: .internalError, message: "m")
        let status = error.vpcepError.code
        #expect(Int(status.rawValue) == code.canonicalValue)
        #expect(status.name == code.name)
        #expect(status != .ok)
    }

    @Test func theRegistryProducesEveryCodeItNames() {
        #expect(RegistryError.Code.allCases.count == 12)
        #expect(Set(RegistryError.Code.allCases.map(\.canonicalValue)).count == RegistryError.Code.allCases.count)
    }
}
