import Metrics

/// What the RPC server reports through swift-metrics (exposed by vpcep-server's admin listener).
/// Names follow Prometheus conventions; labels are bounded sets (method paths, status names,
/// failure reasons), never tenant ids.
enum RPCMetrics {
    /// A finished call, by method and canonical status name, and its latency.
    static func recordCall(method: String, status: StatusCode, nanoseconds: Int64) {
        Counter(label: "vpcep_rpc_calls_total", dimensions: [("method", method), ("status", status.name)]).increment()
        Timer(label: "vpcep_rpc_call_duration_seconds", dimensions: [("method", method)], preferredDisplayUnit: .seconds)
            .recordNanoseconds(nanoseconds)
    }

    /// A call refused before it reached a handler (unknown method, too many calls, …).
    static func recordRefusal(status: StatusCode, reason: String) {
        Counter(label: "vpcep_rpc_refused_total", dimensions: [("status", status.name), ("reason", reason)]).increment()
    }

    /// Connections open now.
    static let openConnections = Meter(label: "vpcep_connections_open")

    static func connectionOpened() {
        Counter(label: "vpcep_connections_total").increment()
        openConnections.increment()
    }

    static func connectionClosed() {
        openConnections.decrement()
    }

    /// A TLS handshake outcome: "ok", or the failure's reason.
    static func recordHandshake(result: String) {
        Counter(label: "vpcep_tls_handshakes_total", dimensions: [("result", result)]).increment()
    }

    /// A connection the server ended, by reason ("protocol_violation", "frame_too_large", …).
    static func recordConnectionFailure(reason: String) {
        Counter(label: "vpcep_connection_failures_total", dimensions: [("reason", reason)]).increment()
    }
}
