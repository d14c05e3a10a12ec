import Foundation
import Testing
import VPCEPClient
import VPCEPTestSupport

/// History/Watch against the real server process (docs/DOMAIN.md, "Watch").
@Suite("Watch end to end", .timeLimit(.minutes(2)))
struct WatchEndToEndTests {
    @Test("SIGTERM ends a running Watch with SERVER_SHUTTING_DOWN and where to resume, not with the grace timer")
    func sigtermEndsWatches() async throws {
        // A grace far beyond the client's deadline: only the drain itself can end the watch in time.
        let server = try await ServerProcess.start(extraArguments: ["--shutdown-grace", "600"])
        let alice = try server.client("alice")
        _ = try await alice.createVpc(CreateVpcRequest(name: "v", cidr: "10.0.0.0/16"))
        var stream = alice.watch(WatchRequest(start: .afterSeq)).makeAsyncIterator()
        var events: [UInt64] = []
        while let message = try await stream.next() {
            if message.kind == .event { events.append(message.entry?.seq ?? 0) }
            if message.kind == .bookmark { break }
        }
        #expect(events == [1])
        server.send(SIGTERM)
        do {
            while try await stream.next() != nil {}
            Issue.record("the watch ended with OK")
        } catch {
            #expect(error.code == .unavailable && error.reason == .serverShuttingDown, "\(error)")
            #expect(error.message.hasSuffix("resume after sequence 1"))
        }
        #expect(await server.waitForExit() == 0)
        await alice.close()
    }

    @Test("--print-config shows the watch and retention settings with their defaults and sources")
    func printConfig() async throws {
        let certificates = TestCertificates.shared
        let environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
            .merging(["VPCEP_WATCH_SLOW_TIMEOUT": "45"]) { $1 }
        let result = try await runCommand(
            RepositoryPaths.executable("vpcep-server"),
            [
                "--tls-ca", certificates.ca, "--tls-cert", certificates.serverCertificate, "--tls-key",
                certificates.serverKey, "--history-retention-days", "30", "--print-config",
            ],
            environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("history_retention_days = 30") && $0.hasSuffix("# flag --history-retention-days") })
        #expect(lines.contains { $0.hasPrefix("watch_bookmark_interval = 10") && $0.hasSuffix("# default") })
        #expect(lines.contains { $0.hasPrefix("watch_slow_timeout = 45") && $0.hasSuffix("# env VPCEP_WATCH_SLOW_TIMEOUT") })
        let refused = try await runCommand(
            RepositoryPaths.executable("vpcep-server"),
            [
                "--tls-ca", certificates.ca, "--tls-cert", certificates.serverCertificate, "--tls-key",
                certificates.serverKey, "--history-retention-days", "0", "--print-config",
            ],
            environment: environment)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("history retention days must be 1-3650"))
    }

    @Test("--print-config shows the service cache's budget, from its default, a flag or the environment")
    func printServiceCacheBudget() async throws {
        let certificates = TestCertificates.shared
        let tls = ["--tls-ca", certificates.ca, "--tls-cert", certificates.serverCertificate, "--tls-key", certificates.serverKey]
        let clean = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("VPCEP_") }
        let server = RepositoryPaths.executable("vpcep-server")
        let byDefault = try await runCommand(server, tls + ["--print-config"], environment: clean)
        #expect(byDefault.stdout.contains("service_cache_mib = 192"), "\(byDefault.stdout)")
        let byFlag = try await runCommand(server, tls + ["--service-cache-mib", "0", "--print-config"], environment: clean)
        #expect(byFlag.stdout.split(separator: "\n").contains { $0.hasPrefix("service_cache_mib = 0") && $0.hasSuffix("# flag --service-cache-mib") })
        let byEnvironment = try await runCommand(
            server, tls + ["--print-config"], environment: clean.merging(["VPCEP_SERVICE_CACHE_MIB": "64"]) { $1 })
        #expect(byEnvironment.stdout.contains("service_cache_mib = 64"))
        let refused = try await runCommand(server, tls + ["--service-cache-mib=65537", "--print-config"], environment: clean)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("service cache MiB must be 0-65536"))
    }
}
