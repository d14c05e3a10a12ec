import Logging
import Synchronization
import Testing
@testable import VPCEPRPC

/// Collects what reaches the wrapped handler; a stand-in for the stream handler, for this unit test only.
private final class Sink: Sendable {
    let events = Mutex<[LogEvent]>([])
    var first: LogEvent? { events.withLock { $0.first } }
}

private struct Capture: LogHandler {
    let sink: Sink
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) { sink.events.withLock { $0.append(event) } }
}

@Suite("Log escaping")
struct EscapingLogHandlerTests {
    @Test("control characters and backslashes are escaped; plain text is unchanged", arguments: [
        ("eu-west-1", "eu-west-1"), ("a\nb", "a\\nb"), ("a\r\nb", "a\\r\\nb"), ("\t", "\\t"), ("a\\nb", "a\\\\nb"),
        ("\u{1b}[31mred", "\\u{1b}[31mred"), ("\u{0}", "\\u{0}"), ("\u{7f}", "\\u{7f}"), ("\u{9b}", "\\u{9b}"),
        ("x\u{2028}y\u{2029}", "x\\u{2028}y\\u{2029}"), ("ünï 🚀", "ünï 🚀"),
    ])
    func escape(raw: String, escaped: String) {
        #expect(LogEscaping.escape(raw) == escaped)
    }

    @Test("message, handler metadata, call metadata (nested too) and the error reach the wrapped handler escaped")
    func everythingEscaped() throws {
        let sink = Sink()
        var handler = EscapingLogHandler(wrapping: Capture(sink: sink))
        handler[metadataKey: "peer"] = "tenant/a\nlice"
        let logger = Logger(label: "test") { _ in handler }
        struct Failure: Error, CustomStringConvertible { var description = "bad\u{1b}]0;x\u{7}" }
        logger.info("call \("r1\nforged")", error: Failure(), metadata: [
            "region": "eu\n1", "list": ["a\nb"], "nested": ["k\n": "v\r"], "convertible": .stringConvertible(42),
        ])
        let event = try #require(sink.first)
        #expect(event.message.description == "call r1\\nforged")
        #expect(event.error == nil)
        let metadata = try #require(event.metadata)
        #expect(metadata["peer"] == .string("tenant/a\\nlice"))
        #expect(metadata["region"] == .string("eu\\n1"))
        #expect(metadata["list"] == .array([.string("a\\nb")]))
        #expect(metadata["nested"] == .dictionary(["k\\n": .string("v\\r")]))
        #expect(metadata["convertible"] == .string("42"))
        #expect(metadata["error.message"] == .string("bad\\u{1b}]0;x\\u{7}"))
        // Nothing rendered anywhere holds a raw control character.
        let rendered = event.message.description + metadata.map { "\($0.key)=\($0.value)" }.joined()
        #expect(!rendered.unicodeScalars.contains(where: LogEscaping.isControl))
    }

    @Test("the wrapped handler's own metadata is taken over, so it cannot print it unescaped")
    func takesOverMetadata() throws {
        let sink = Sink()
        var inner = Capture(sink: sink)
        inner.metadata = ["seed": "a\nb"]
        let handler = EscapingLogHandler(wrapping: inner)
        #expect(handler.metadata["seed"] == .string("a\nb"))
        let logger = Logger(label: "test") { _ in handler }
        logger.notice("x")
        let event = try #require(sink.first)
        #expect(event.metadata?["seed"] == .string("a\\nb"))
    }
}
