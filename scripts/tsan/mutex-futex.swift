// A correct program: four threads change one array, only inside `Synchronization.Mutex.withLock`.
// ThreadSanitizer reports "Swift access race" inside the closures all the same: on Linux the Mutex
// locks with atomics and futex calls inside libswiftSynchronization, which is not instrumented, so
// TSan never sees the lock. Run with scripts/tsan/run-repros.sh.

import Synchronization
import Foundation

final class Box: Sendable {
    let state = Mutex<[Int]>([])
}

@main struct Main {
    static func main() {
        let box = Box()
        let threads = (0..<4).map { t in
            Thread {
                for i in 0..<20000 {
                    box.state.withLock { $0.append(i &+ t) }
                    if i % 100 == 0 { box.state.withLock { $0.removeAll(keepingCapacity: false) } }
                }
            }
        }
        threads.forEach { $0.start() }
        while threads.contains(where: { !$0.isFinished }) { usleep(1000) }
        print("done", box.state.withLock { $0.count })
    }
}
