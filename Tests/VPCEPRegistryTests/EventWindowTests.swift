import Testing

@testable import VPCEPRegistry

/// The change feed's window answers as the plain list of the last events within its bounds would,
/// however the appends fall against its bulk release of dropped events.
@Suite("Event window")
struct EventWindowTests {
    @Test("random appends under count and byte bounds: the same answers as a list trimmed at every append")
    func matchesAListTrimmedAtEveryAppend() {
        var generator = SystemRandomNumberGenerator()
        for (maxCount, maxBytes) in [(4096, Int.max), (100, Int.max), (1000, 30_000), (3, 10)] {
            var window = EventWindow()
            var model: [(event: ChangeEvent, size: Int)] = []
            var next: UInt64 = 1
            for _ in 0..<400 {
                let added = vpcCreatedEvents(next...(next + UInt64.random(in: 0...40, using: &generator)))
                next = added.last!.seq + 1
                let sizes = added.map { _ in Int.random(in: 1...100, using: &generator) }
                window.append(added, sizes: sizes, maxCount: maxCount, maxBytes: maxBytes)
                model += zip(added, sizes).map { ($0, $1) }
                while model.count > 1, model.count > maxCount || model.map(\.size).reduce(0, +) > maxBytes {
                    model.removeFirst()
                }
                #expect(window.count == model.count)
                #expect(window.bytes == model.map(\.size).reduce(0, +))
                #expect(window.firstSeq == model.first?.event.seq)
                let oldest = model.first!.event.seq
                for cursor in [oldest - 1, oldest, (oldest + next) / 2, next - 2, next - 1] where cursor + 1 >= oldest {
                    let limit = Int.random(in: 1...300, using: &generator)
                    let expected = model.filter { $0.event.seq > cursor }.prefix(limit).map(\.event)
                    #expect(window.events(after: cursor, limit: limit) == Array(expected))
                }
                if oldest > 1 { #expect(window.events(after: oldest - 2, limit: 10) == nil) }
            }
        }
    }

    @Test("emptied, it holds nothing and answers nothing")
    func removeAll() {
        var window = EventWindow()
        window.append(vpcCreatedEvents(1...10), sizes: Array(repeating: 5, count: 10), maxCount: 4, maxBytes: .max)
        #expect(window.count == 4 && window.firstSeq == 7)
        window.removeAll()
        #expect(window.isEmpty && window.bytes == 0 && window.firstSeq == nil)
        #expect(window.events(after: 6, limit: 10) == nil)
    }
}
