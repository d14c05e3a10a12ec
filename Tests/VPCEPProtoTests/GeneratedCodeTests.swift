import Foundation
import Testing

@Suite("Generated code")
struct GeneratedCodeTests {
    @Test(
        "the committed generated files match proto/",
        .enabled(if: Protoc.isAvailable, "needs protoc, protoc-c and python3")
    )
    func upToDate() throws {
        let output = try Protoc.run(
            ["bash", Protoc.repositoryRoot.appendingPathComponent("scripts/generate.sh").path, "--check"],
            input: Data()
        )
        #expect(output.status == 0, "\(output.stderr)")
    }
}
