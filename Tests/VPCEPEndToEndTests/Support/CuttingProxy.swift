import Foundation
import Synchronization

/// A TCP forwarder on 127.0.0.1 to a server's port that can reset every connection it carries at
/// any moment: what a client sees when a middlebox or the network drops its connection.
final class CuttingProxy: Sendable {
    let port: Int
    private let socketBuffer: Int?
    private let listener: Int32
    private let links = Mutex<[Int: Link]>([:])
    private let nextLink = Atomic<Int>(0)
    private let cuts = Atomic<Int>(0)

    /// Both sockets of one forwarded connection, closed by the second of its two pumps to stop so
    /// that no file descriptor is reused while the other pump or `cutAll` may still use it.
    private struct Link {
        var client: Int32
        var upstream: Int32
        var pumpsRunning = 2
    }

    /// `socketBuffer` caps the kernel's send and receive buffers of the proxy's sockets (and so the
    /// window the server sees): on loopback they otherwise grow to megabytes, which would hide how
    /// much a server itself holds for a reader that stopped reading.
    init(upstreamPort: Int, socketBuffer: Int? = nil) throws {
        let (listener, port) = try Self.bound()
        guard listen(listener, 64) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        self.listener = listener
        self.port = port
        self.socketBuffer = socketBuffer
        Thread.detachNewThread { [self] in
            while true {
                let client = accept(listener, nil, nil)
                if client < 0 {
                    if errno == EINTR { continue }
                    close(listener)
                    return
                }
                if let socketBuffer { Self.limitBuffers(client, to: socketBuffer) }
                guard let upstream = try? Self.connected(to: upstreamPort, socketBuffer: socketBuffer) else {
                    Self.reset(client)
                    close(client)
                    continue
                }
                let id = nextLink.add(1, ordering: .relaxed).newValue
                links.withLock { $0[id] = Link(client: client, upstream: upstream) }
                Thread.detachNewThread { [self] in pump(id, from: client, to: upstream) }
                Thread.detachNewThread { [self] in pump(id, from: upstream, to: client) }
            }
        }
    }

    /// Connections reset so far by `cutAll`.
    var connectionsCut: Int { cuts.load(ordering: .relaxed) }

    /// Resets every connection now open (RST to the client and to the server, never FIN); returns how many.
    @discardableResult
    func cutAll() -> Int {
        let count = links.withLock { links in
            for link in links.values {
                Self.reset(link.client)
                Self.reset(link.upstream)
            }
            return links.count
        }
        cuts.add(count, ordering: .relaxed)
        return count
    }

    /// Stops accepting and resets what is open.
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        cutAll()
    }

    private func pump(_ id: Int, from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: min(socketBuffer ?? 64 * 1024, 64 * 1024))
        copying: while true {
            let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            var sent = 0
            while sent < count {
                let written = buffer.withUnsafeBytes {
                    send(destination, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL))
                }
                if written < 0, errno == EINTR { continue }
                guard written > 0 else { break copying }
                sent += written
            }
        }
        // Either side gone: the other is reset too, which also wakes the opposite pump.
        links.withLock { links in
            guard var link = links[id] else { return }
            Self.reset(link.client)
            Self.reset(link.upstream)
            link.pumpsRunning -= 1
            if link.pumpsRunning == 0 {
                links[id] = nil
                close(link.client)
                close(link.upstream)
            } else {
                links[id] = link
            }
        }
    }

    /// Aborts a TCP connection: with a zero linger, a disconnect (connect to AF_UNSPEC) sends RST and
    /// wakes the threads blocked on the socket, which a close from another thread would not.
    private static func reset(_ socket: Int32) {
        var linger = linger(l_onoff: 1, l_linger: 0)
        setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        var address = sockaddr()
        address.sa_family = sa_family_t(AF_UNSPEC)
        _ = connect(socket, &address, socklen_t(MemoryLayout<sockaddr>.size))
    }

    /// Set before connecting, so that the window offered to the server is small from the start.
    private static func limitBuffers(_ socket: Int32, to bytes: Int) {
        var size = Int32(bytes)
        setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    private static func connected(to port: Int, socketBuffer: Int?) throws -> Int32 {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        if let socketBuffer { limitBuffers(socket, to: socketBuffer) }
        var address = loopback(port: port)
        let ok = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard ok else {
            let failure = POSIXError(.init(rawValue: errno) ?? .EIO)
            close(socket)
            throw failure
        }
        return socket
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    private static func bound() throws -> (Int32, Int) {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = loopback(port: 0)
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
