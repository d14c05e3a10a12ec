import Foundation
import Testing

/// A PostgreSQL cluster of one test's own, for tests that stop and start it: the shared one of
/// scripts/postgres.sh serves other tests in parallel. scripts/postgres.sh exports where the
/// binaries are (`VPCEP_TEST_POSTGRES_BIN`) and the user they run as (`VPCEP_TEST_POSTGRES_OS_USER`).
struct OwnPostgresCluster {
    static let binaries = ProcessInfo.processInfo.environment["VPCEP_TEST_POSTGRES_BIN"].flatMap { $0.isEmpty ? nil : $0 }
    private static let user = ProcessInfo.processInfo.environment["VPCEP_TEST_POSTGRES_OS_USER"] ?? NSUserName()

    let directory: URL
    let port: Int
    var url: String { "postgres://\(Self.user)@127.0.0.1:\(port)/vpcep_test" }

    /// A server certificate and its key, for a cluster that accepts TLS connections only.
    struct TLS {
        var certificate: String
        var key: String
    }

    /// initdb, start and createdb in a new temporary directory; with `tls`, TCP connections must
    /// use TLS with that certificate (`hostnossl` is rejected).
    static func create(tls: TLS? = nil) async throws -> OwnPostgresCluster {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vpcep-own-postgres-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
        if getuid() == 0 { try await run(URL(fileURLWithPath: "/usr/bin/chown"), [user, directory.path], asServer: false) }
        let port = try freePort()
        let cluster = OwnPostgresCluster(directory: directory, port: port)
        try await cluster.postgres("initdb", ["-D", cluster.data, "-U", user, "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
        if let tls { try await cluster.requireTLS(tls) }
        try await cluster.start()
        try await cluster.postgres("createdb", ["-h", "127.0.0.1", "-p", String(port), "-U", user, "vpcep_test"])
        return cluster
    }

    private var data: String { directory.appendingPathComponent("data").path }

    private func requireTLS(_ tls: TLS) async throws {
        let data = URL(fileURLWithPath: self.data)
        for (source, name) in [(tls.certificate, "server.crt"), (tls.key, "server.key")] {
            let target = data.appendingPathComponent(name)
            try FileManager.default.copyItem(atPath: source, toPath: target.path)
            // PostgreSQL refuses a key that others can read, and reads it as the server's user.
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: target.path)
            if getuid() == 0 { try await Self.run(URL(fileURLWithPath: "/usr/bin/chown"), [Self.user, target.path], asServer: false) }
        }
        let configuration = data.appendingPathComponent("postgresql.conf")
        let settings = "\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
        let handle = try FileHandle(forWritingTo: configuration)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(settings.utf8))
        try handle.close()
        let rules = """
            local all all trust
            hostssl all all 127.0.0.1/32 trust
            hostnossl all all 127.0.0.1/32 reject

            """
        try Data(rules.utf8).write(to: data.appendingPathComponent("pg_hba.conf"))
    }

    func start() async throws {
        try await postgres("pg_ctl", [
            "-D", data, "-w", "-l", directory.appendingPathComponent("server.log").path,
            "-o", "-c listen_addresses=127.0.0.1 -p \(port) -k \(directory.path)", "start",
        ])
    }

    /// `pg_ctl stop -m fast`: clients are disconnected, transactions rolled back.
    func stop() async throws {
        try await postgres("pg_ctl", ["-D", data, "-w", "-m", "fast", "stop"])
    }

    /// Stops the cluster and removes its files.
    func remove() async {
        try? await postgres("pg_ctl", ["-D", data, "-m", "immediate", "stop"])
        try? FileManager.default.removeItem(at: directory)
    }

    private func postgres(_ tool: String, _ arguments: [String]) async throws {
        let bin = try #require(Self.binaries)
        try await Self.run(URL(fileURLWithPath: bin).appendingPathComponent(tool), arguments, asServer: true)
    }

    /// PostgreSQL refuses to run as root: as root, its tools run as the unprivileged user.
    /// Spawned with every descriptor above stderr closed: `pg_ctl start` leaves the server running,
    /// and a server holding a descriptor of the test process (Foundation's `Process` watches one
    /// per child) would keep that child from ever being seen to exit.
    private static func run(_ executable: URL, _ arguments: [String], asServer: Bool) async throws {
        let all = asServer && getuid() == 0
            ? ["/usr/sbin/runuser", "-u", user, "--", executable.path] + arguments
            : [executable.path] + arguments
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for descriptor: Int32 in 0...2 {
            posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        // (closefrom is not imported; glibc ignores closing a descriptor closed since.)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in open.compactMap({ Int32($0) }) where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = all.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, all[0], &actions, nil, &argv, environ)
        try #require(spawned == 0, "posix_spawn \(all[0]): \(spawned)")
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 { try await Task.sleep(for: .milliseconds(20)) }
        // Exited with status 0 (WIFEXITED and WEXITSTATUS, which Swift does not import).
        try #require(status == 0, "\(executable.lastPathComponent) \(arguments.joined(separator: " ")): wait status \(status)")
    }

    /// A port nothing uses now (the cluster takes it a moment later), below the kernel's ephemeral
    /// range (32768-60999 by default): the cluster must get the same port back when it restarts, and
    /// while it is down the kernel hands ephemeral ports to other tests' listeners and to the local
    /// side of every outgoing connection.
    private static func freePort() throws -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20_000..<32_000)
            if canBind(port) { return port }
        }
        throw NoFreePort()
    }

    struct NoFreePort: Error, CustomStringConvertible {
        var description: String { "no free port below the ephemeral range after 100 tries" }
    }

    private static func canBind(_ port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 }
        }
    }
}
