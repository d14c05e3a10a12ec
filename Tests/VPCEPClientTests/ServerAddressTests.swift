import Testing
@testable import VPCEPClient

@Suite("Server address lists")
struct ServerAddressTests {
    @Test("host:port lists, IPv6 in brackets, spaces around entries", arguments: [
        ("a:7443", [ServerAddress(host: "a", port: 7443)]),
        ("a:7443,b:7444,[::1]:7445", [
            ServerAddress(host: "a", port: 7443), ServerAddress(host: "b", port: 7444), ServerAddress(host: "::1", port: 7445),
        ]),
        (" 10.0.0.1:1 , localhost:65535", [ServerAddress(host: "10.0.0.1", port: 1), ServerAddress(host: "localhost", port: 65535)]),
    ])
    func good(text: String, expected: [ServerAddress]) throws {
        #expect(try ServerAddress.list(parsing: text) == expected)
    }

    @Test("malformed lists are refused as client configuration, naming the entry", arguments: [
        ("", "empty"), ("a:7443,", "empty"), (",a:7443", "empty"), ("a:7443,,b:7443", "empty"),
        ("a", "\"a\" has no port"), ("a:", "between 1 and 65535"), ("a:0", "between 1 and 65535"),
        ("a:65536", "between 1 and 65535"), ("a:+7", "between 1 and 65535"), ("a:7443x", "between 1 and 65535"),
        (":7443", "no host"), ("::1:7443", "brackets"), ("[::1:7443", "unclosed"), ("[]:7443", "empty [ ]"),
        ("a b:7443", "not a host"), ("a:7443,a:7443", "listed twice"),
    ])
    func bad(text: String, says: String) {
        do {
            let parsed = try ServerAddress.list(parsing: text)
            Issue.record("\"\(text)\" parsed as \(parsed)")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.reason == .clientConfiguration)
            #expect(error.message.contains(says), "\(error.message)")
        }
    }

    @Test("an IPv6 address prints in brackets, so that it reads back")
    func description() throws {
        let addresses = [ServerAddress(host: "::1", port: 7443), ServerAddress(host: "b", port: 1)]
        #expect(addresses.map(\.description) == ["[::1]:7443", "b:1"])
        #expect(try ServerAddress.list(parsing: addresses.map(\.description).joined(separator: ",")) == addresses)
    }

    @Test("the old single-server configuration is a one-element list")
    func singleServer() {
        var configuration = VPCEPClient.Configuration(
            host: "a", port: 7443, region: "r", caFile: "", certificateFile: "", keyFile: "")
        #expect(configuration.servers == [ServerAddress(host: "a", port: 7443)])
        configuration.port = 7000
        #expect(configuration.servers == [ServerAddress(host: "a", port: 7000)])
        #expect(configuration.host == "a")
    }
}

@Suite("Failover order")
struct FailoverOrderTests {
    private let now = ContinuousClock.now

    @Test("round robin from the preferred server")
    func roundRobin() {
        #expect(VPCEPClient.order(servers: 3, from: 0, failedAt: [:], backoff: .seconds(5), now: now) == [0, 1, 2])
        #expect(VPCEPClient.order(servers: 3, from: 2, failedAt: [:], backoff: .seconds(5), now: now) == [2, 0, 1])
    }

    @Test("servers that failed within the back-off are passed over, unless all did")
    func backoff() {
        let recent = now - .seconds(1)
        let old = now - .seconds(10)
        #expect(VPCEPClient.order(servers: 3, from: 1, failedAt: [1: recent], backoff: .seconds(5), now: now) == [2, 0])
        #expect(VPCEPClient.order(servers: 3, from: 1, failedAt: [1: old, 2: recent], backoff: .seconds(5), now: now) == [1, 0])
        #expect(VPCEPClient.order(servers: 3, from: 1, failedAt: [0: recent, 1: recent, 2: recent], backoff: .seconds(5), now: now)
            == [1, 2, 0])
    }
}
