import Foundation
import Synchronization
import NIOCore
import NIOPosix
import Prometheus
import Testing
import VPCEPAdmin

@Suite("Admin listener")
struct AdminServerTests {
    /// One HTTP/1.1 GET over a plain socket; returns the status line and the body.
    private func get(_ path: String, port: Int) throws -> (status: String, body: String) {
        let handle = try FileHandleSocket(port: port)
        defer { handle.close() }
        handle.write("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        let response = handle.readAll()
        let parts = response.components(separatedBy: "\r\n\r\n")
        return (parts.first?.components(separatedBy: "\r\n").first ?? "", parts.dropFirst().joined(separator: "\r\n\r\n"))
    }

    @Test("metrics, liveness and readiness answer on their paths")
    func paths() async throws {
        let registry = PrometheusCollectorRegistry()
        PrometheusMetricsFactory(registry: registry).makeCounter(label: "vpcep_test_total", dimensions: [("method", "x")])
            .increment(by: 3)
        let readiness = Readiness()
        let server = AdminServer(registry: registry, readiness: readiness, group: MultiThreadedEventLoopGroup.singleton)
        let address = try await server.start(host: "127.0.0.1", port: 0)
        let port = try #require(address.port)

        let metrics = try get("/metrics", port: port)
        #expect(metrics.status == "HTTP/1.1 200 OK")
        #expect(metrics.body.contains("vpcep_test_total{method=\"x\"} 3"))

        #expect(try get("/healthz", port: port).status == "HTTP/1.1 200 OK")
        let starting = try get("/readyz", port: port)
        #expect(starting.status == "HTTP/1.1 503 Service Unavailable")
        #expect(starting.body.contains("starting"))
        readiness.markReady()
        #expect(try get("/readyz", port: port).status == "HTTP/1.1 200 OK")
        // A dependency's own check (the store being repaired) makes a ready server not ready.
        let storeProblem = Problem()
        storeProblem.set("registry store: the writer connection failed")
        readiness.addCheck { storeProblem.current }
        let repairing = try get("/readyz", port: port)
        #expect(repairing.status == "HTTP/1.1 503 Service Unavailable")
        #expect(repairing.body.contains("registry store: the writer connection failed"))
        storeProblem.set(nil)
        #expect(try get("/readyz", port: port).status == "HTTP/1.1 200 OK")
        readiness.markNotReady("draining")
        #expect(try get("/readyz", port: port).body.contains("draining"))
        #expect(try get("/nope", port: port).status == "HTTP/1.1 404 Not Found")
        await server.stop()
    }
}

/// What a readiness check reports, changed by the test.
final class Problem: Sendable {
    private let state = Mutex<String?>(nil)
    var current: String? { state.withLock { $0 } }
    func set(_ problem: String?) { state.withLock { $0 = problem } }
}

/// A blocking TCP client on 127.0.0.1, enough for one request.
struct FileHandleSocket {
    private let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    func write(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Foundation.send(descriptor, $0.baseAddress, $0.count, 0) }
    }

    func readAll() -> String {
        var data = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            data += chunk[0..<count]
        }
        return String(decoding: data, as: UTF8.self)
    }

    func close() { _ = Foundation.close(descriptor) }
}
