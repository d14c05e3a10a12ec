// The same program as mutex-futex.swift with a pthread mutex, which TSan intercepts: no report.
// Run with scripts/tsan/run-repros.sh.

import Foundation
import Glibc

final class Box: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var value: [Int] = []
    init() { pthread_mutex_init(&mutex, nil) }
    func withLock<R>(_ body: (inout [Int]) -> R) -> R {
        pthread_mutex_lock(&mutex); defer { pthread_mutex_unlock(&mutex) }
        return body(&value)
    }
}

@main struct Main {
    static func main() {
        let box = Box()
        let threads = (0..<4).map { t in
            Thread {
                for i in 0..<20000 {
                    box.withLock { $0.append(i &+ t) }
                    if i % 100 == 0 { box.withLock { $0.removeAll(keepingCapacity: false) } }
                }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
        print("done", box.withLock { $0.count })
    }
}
