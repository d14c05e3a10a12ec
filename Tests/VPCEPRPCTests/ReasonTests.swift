import Foundation
import Testing
import VPCEPRPC

/// `Reason` is the one home of every error reason; the docs list each one, and the reasons the docs'
/// tables name all exist in the code.
@Suite("Reasons")
struct ReasonTests {
    private static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private static func document(_ name: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent("docs/\(name)"), encoding: .utf8)
    }

    @Test("every reason has one constant and a distinct wire string")
    func constantsAreDistinct() {
        let raw = Reason.all.map(\.rawValue)
        #expect(Set(raw).count == raw.count)
        #expect(!raw.contains(""))
        #expect(raw.allSatisfy { $0.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) } })
    }

    @Test("docs/DOMAIN.md or docs/PROTOCOL.md lists every reason, in backticks")
    func docsListEveryReason() throws {
        let docs = try Self.document("DOMAIN.md") + Self.document("PROTOCOL.md")
        let missing = Reason.all.filter { !docs.contains("`\($0.rawValue)`") }.map(\.rawValue)
        #expect(missing.isEmpty, "not in the docs: \(missing.joined(separator: ", "))")
    }

    /// The `reason` column of every table in the two documents names only reasons the code has.
    @Test("the docs' reason columns name no reason the code lacks")
    func docsNameNoUnknownReason() throws {
        let known = Set(Reason.all.map(\.rawValue))
        var unknown: [String] = []
        var checked = 0
        for name in ["DOMAIN.md", "PROTOCOL.md"] {
            var column: Int?
            for line in try Self.document(name).split(separator: "\n", omittingEmptySubsequences: false) {
                guard line.hasPrefix("|") else {
                    column = nil
                    continue
                }
                let cells = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().map {
                    $0.trimmingCharacters(in: .whitespaces)
                }
                if column == nil {
                    column = cells.firstIndex(of: "reason")
                    continue
                }
                guard let column, column < cells.count else { continue }
                for token in Self.backticked(cells[column]) where !token.hasPrefix("…") {
                    checked += 1
                    if !known.contains(token) { unknown.append("\(name): \(token)") }
                }
            }
        }
        #expect(checked > 50, "the tables were not found")
        #expect(unknown.isEmpty, "reasons the code lacks: \(unknown.joined(separator: ", "))")
    }

    @Test("only the reasons that prove the server never saw the call say so, also when read off the wire")
    func neverProcessed() {
        let flagged = Set(Reason.all.filter(\.wasNeverProcessed))
        #expect(flagged == [.connectionFailed, .serverGoingAway, .serverOverloaded])
        for reason in Reason.all {
            #expect(Reason(rawValue: reason.rawValue).wasNeverProcessed == reason.wasNeverProcessed)
        }
        let error = VPCEPError(code: .unavailable, reason: Reason(rawValue: "SERVER_OVERLOADED"), message: "")
        #expect(error.wasNeverProcessed)
    }

    @Test("a reason this build does not know keeps its wire string")
    func unknownReasonRoundTrips() {
        let reason = Reason(rawValue: "SOME_FUTURE_REASON")
        #expect(reason.rawValue == "SOME_FUTURE_REASON")
        #expect(!reason.wasNeverProcessed)
        #expect(!Reason.all.contains(reason))
    }

    private static func backticked(_ cell: String) -> [String] {
        cell.split(separator: "`", omittingEmptySubsequences: false).enumerated()
            .filter { $0.offset % 2 == 1 }
            .map { String($0.element) }
            .filter { token in !token.isEmpty && token.allSatisfy { $0 == "_" || $0 == "…" || ("A"..."Z").contains($0) } }
    }
}
