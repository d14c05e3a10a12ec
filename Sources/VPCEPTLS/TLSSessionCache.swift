internal import COpenSSL
import Synchronization

/// The sessions a client context keeps for resumption, one per server (`host:port`): the latest
/// session ticket each server sent. A new connection to the same server offers it, and the
/// server, when it still accepts the ticket, skips certificate exchange and verification.
///
/// Safety of `@unchecked Sendable` on `Session`: an `SSL_SESSION` handed over by the new-session
/// callback is complete and never mutated by us afterwards; `SSL_set_session` only takes another
/// reference (an atomic increment), which OpenSSL allows from any thread.
final class TLSSessionCache: Sendable {
    final class Session: @unchecked Sendable {
        let pointer: OpaquePointer

        /// Takes ownership of one reference.
        init(owning pointer: OpaquePointer) {
            self.pointer = pointer
        }

        deinit {
            SSL_SESSION_free(self.pointer)
        }
    }

    /// Keys beyond this many evict an arbitrary one; clients talk to a handful of servers.
    static let capacity = 64

    private let sessions = Mutex<[String: Session]>([:])

    func session(for key: String) -> Session? {
        self.sessions.withLock { $0[key] }
    }

    func store(_ session: Session, for key: String) {
        self.sessions.withLock { sessions in
            if sessions[key] == nil, sessions.count >= Self.capacity, let victim = sessions.keys.first {
                sessions[victim] = nil
            }
            sessions[key] = session
        }
    }

    func remove(_ key: String) {
        self.sessions.withLock { $0[key] = nil }
    }

    var count: Int { self.sessions.withLock { $0.count } }
}
