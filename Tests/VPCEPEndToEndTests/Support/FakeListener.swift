import Foundation
import Synchronization

/// A TCP listener on 127.0.0.1 that is not a vpcep server: it counts the connections it accepts and
/// either closes each at once or holds it open without a word (a hung server).
final class FakeListener: Sendable {
    enum Behaviour: Sendable { case closeAtOnce, silent }

    let port: Int
    private let socket: Int32
    private let accepted = Atomic<Int>(0)
    private let held = Mutex<[Int32]>([])

    init(_ behaviour: Behaviour) throws {
        let (socket, port) = try Self.bound()
        guard listen(socket, 64) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        self.socket = socket
        self.port = port
        Thread.detachNewThread { [self] in
            while true {
                let connection = accept(socket, nil, nil)
                if connection < 0 {
                    if errno == EINTR { continue }
                    // Closed here, not in stop(): once closed its number may be reused (by a
                    // listener of another test in this process) and must not be accepted on again.
                    close(socket)
                    for held in held.withLock({ $0 }) { close(held) }
                    return
                }
                accepted.add(1, ordering: .relaxed)
                switch behaviour {
                case .closeAtOnce: close(connection)
                case .silent: held.withLock { $0.append(connection) }
                }
            }
        }
    }

    /// Connections accepted so far.
    var connections: Int { accepted.load(ordering: .relaxed) }

    /// Wakes the accepting thread, which then closes the socket and the connections it holds.
    func stop() {
        shutdown(socket, Int32(SHUT_RDWR))
    }

    static func bound() throws -> (Int32, Int) {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(socket, generic, length) == 0 && getsockname(socket, generic, &length) == 0
            }
        }
        guard ok else {
            close(socket)
            throw POSIXError(.init(rawValue: errno) ?? .EIO)
        }
        return (socket, Int(UInt16(bigEndian: address.sin_port)))
    }
}

/// A port that refuses connections for as long as this lives: bound by the kernel's choice and held,
/// never listened on, so a connection gets a reset. A port merely bound and released could be taken
/// meanwhile by a listener of another test in this process (a silent one made a failover test wait
/// out its deadline).
final class RefusedPort: Sendable {
    let port: Int
    private let socket: Int32

    init() throws {
        (socket, port) = try FakeListener.bound()
    }

    deinit {
        close(socket)
    }
}
