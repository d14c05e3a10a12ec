#if canImport(Glibc)
import Glibc
#endif

/// Gives memory that was freed back to the system.
///
/// glibc keeps freed memory in its per-thread arenas for reuse: after a burst of large answers
/// to clients that would not read them (docs/PROTOCOL.md §8.2), the server's resident memory
/// stayed at its peak after those clients had gone. `malloc_trim(0)` returns the free pages of
/// every arena.
/// It costs a walk over the heaps (about a millisecond for a few hundred MB), so the server calls
/// it only when its buffered bytes fall back from high to low (`ServerStatistics`).
enum MemoryTrim {
    #if canImport(Glibc)
    private typealias Trim = @convention(c) (Int) -> Int32
    /// Looked up at run time: Swift's Glibc module does not export <malloc.h>.
    private static let trim: Trim? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return nil }
        return unsafeBitCast(symbol, to: Trim.self)
    }()
    #endif

    static func releaseFreedMemory() {
        #if canImport(Glibc)
        _ = trim?(0)
        #endif
    }
}
