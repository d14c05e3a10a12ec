import Foundation
import Testing
import VPCEPTestSupport

/// The CLI's argument parser does work that grows with the square of the argument count; the CLI
/// refuses command lines longer than any command needs before that work starts.
@Suite("CLI argument limit", .timeLimit(.minutes(1)))
struct CLIArgumentLimitTests {
    private var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
        environment["HOME"] = FileManager.default.temporaryDirectory.path
        return environment
    }

    private func serviceCreate(tags: Int) -> [String] {
        ["service", "create", "--vpc", "v", "--backend-type", "lb", "--backend", "b"]
            + (0..<tags).flatMap { ["--tag", "k\($0)=v"] }
    }

    @Test("20,000 --tag options are a usage error (exit 64), refused before parsing")
    func tooManyArguments() async throws {
        let result = try await runCommand(RepositoryPaths.executable("vpcep"), serviceCreate(tags: 20_000), environment: environment)
        #expect(result.status == 64)
        #expect(result.stderr.contains("Too many arguments (40008); a command line takes at most 1000."), "\(result.stderr)")
    }

    @Test("a command line of exactly the limit (1,000 arguments) is parsed as usual")
    func withinLimit() async throws {
        let result = try await runCommand(RepositoryPaths.executable("vpcep"), serviceCreate(tags: 496), environment: environment)
        // Parsed, then stopped for want of connection settings (78), not refused as usage (64).
        #expect(result.status == 78, "\(result.stderr)")
        #expect(!result.stderr.contains("Too many arguments"))
    }
}
