import Logging
import NIOCore

/// How one connection records its finished calls: the method's metrics, and a log line at info.
/// Metric handles are made once per method and connection instead of once per call.
struct CallLog {
    private var methodMetrics: [String: RPCMetrics.Method] = [:]

    /// `logger` is asked for only when the line is logged: rendering its metadata costs more than
    /// most calls.
    mutating func record(method: String, region: String, requestID: String, started: NIODeadline,
                         status: StatusCode, reason: Reason, logLevel: Logger.Level, logger: () -> Logger) {
        let elapsed = (NIODeadline.now() - started).nanoseconds
        let metrics = methodMetrics[method] ?? {
            let made = RPCMetrics.Method(method)
            methodMetrics[method] = made
            return made
        }()
        metrics.record(status: status, nanoseconds: elapsed)
        guard logLevel <= .info else { return }
        var metadata: Logger.Metadata = [
            "method": "\(method)", "region": "\(region)", "status": "\(status.name)",
            "latency_us": "\(elapsed / 1000)", "request_id": "\(requestID)",
        ]
        if reason != .ok { metadata["reason"] = "\(reason)" }
        logger().info("call", metadata: metadata)
    }
}
