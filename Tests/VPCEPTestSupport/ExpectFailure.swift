import Testing
import VPCEPClient

/// Runs `body`, which must fail with the given status, reason and (when given) field.
public func expectFailure<T>(
    _ code: StatusCode, _ reason: String, field: String? = nil,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws(VPCEPError) -> T
) async {
    do {
        let value = try await body()
        Issue.record("expected \(code.name) \(reason), got success: \(value)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(error.reason.rawValue == reason, "\(error)", sourceLocation: sourceLocation)
        if let field {
            #expect(error.field == field, "\(error)", sourceLocation: sourceLocation)
        }
    }
}
