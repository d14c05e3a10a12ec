import Metrics

/// What the RPC server reports through swift-metrics (exposed by vpcep-server's admin listener).
/// Names follow Prometheus conventions; labels are bounded sets (method paths, status names,
/// failure reasons), never tenant ids.
enum RPCMetrics {
    /// The handles of one method's series. Making a handle asks the metrics backend to find the
    /// series under its lock, so a connection makes them once and keeps them.
    final class Method {
        private let name: String
        private let duration: Timer
        private var calls: [StatusCode: Counter] = [:]

        init(_ name: String) {
            self.name = name
            duration = Timer(label: "vpcep_rpc_call_duration_seconds", dimensions: [("method", name)],
                             preferredDisplayUnit: .seconds)
        }

        /// A finished call, by canonical status name, and its latency.
        func record(status: StatusCode, nanoseconds: Int64) {
            let counter = calls[status] ?? {
                let made = Counter(label: "vpcep_rpc_calls_total", dimensions: [("method", name), ("status", status.name)])
                calls[status] = made
                return made
            }()
            counter.increment()
            duration.recordNanoseconds(nanoseconds)
        }
    }

    /// A call refused before it reached a handler (unknown method, too many calls, …).
    static func recordRefusal(status: StatusCode, reason: String) {
        Counter(label: "vpcep_rpc_refused_total", dimensions: [("status", status.name), ("reason", reason)]).increment()
    }

    /// Connections open now.
    static let openConnections = Meter(label: "vpcep_connections_open")

    /// The most bytes the server has held for sending at once, over all connections (§8.2's
    /// bounds, seen from outside). Set only when the peak rises, so the hot path pays nothing more.
    static let peakBufferedOutboundBytes = Meter(label: "vpcep_buffered_outbound_bytes_peak")

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
