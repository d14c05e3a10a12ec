// A correct program: a thread writes a value, then resumes the continuation the task awaits; the
// task reads the value after the await. The resume orders the two (the language guarantees it),
// yet TSan reports a "Swift access race": it does not see this hand-over inside the concurrency
// runtime. sqlite-nio's `SQLiteDatabase.query(_:_:) async` collects rows exactly this way.
// Run with scripts/tsan/run-repros.sh.

import Foundation

// A value written on a plain thread, then read by the task that thread resumed: ordered by the
// continuation resume (the language guarantees it), like sqlite-nio's `query` collecting rows.
final class Pool: @unchecked Sendable {
    func run(_ work: @escaping @Sendable () -> Void, done: @escaping @Sendable () -> Void) {
        Thread { work(); done() }.start()
    }
}

@main struct Main {
    static func main() async {
        let pool = Pool()
        var total = 0
        for i in 0..<2000 {
            nonisolated(unsafe) var rows: [Int] = []
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                pool.run({ rows.append(i) }, done: { c.resume() })
            }
            total += rows.count
        }
        print("done", total)
    }
}
