import Foundation
import Synchronization

/// A child process started with `posix_spawn`, for the tests that start many (servers, CLI runs).
///
/// Not Foundation's `Process`: on this toolchain (Swift 6.3.1) `Process.run()` scans /proc/self/fd by
/// copying 256 bytes of every directory entry, reading past the end of readdir's buffer, and now and
/// then crashes the whole test process with SIGSEGV (swift-corelibs-foundation #5472, fixed after
/// 6.3). The more processes a suite starts, the likelier a run dies of it.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    /// As `Process.terminationStatus`: the exit code, or the signal that ended it.
    private let status = Mutex<Int32?>(nil)

    private init(pid: pid_t) {
        self.pid = pid
    }

    /// Where a standard stream of the child goes.
    public enum Output {
        case null
        /// A descriptor of this process, duplicated onto the child's stream.
        case descriptor(Int32)
    }

    /// Starts `executable`; standard input is /dev/null, and every descriptor of this process other
    /// than the ones given is closed in the child.
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String],
        stdout: Output = .null, stderr: Output = .null
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        for (target, output) in [(Int32(1), stdout), (Int32(2), stderr)] {
            switch output {
            case .null: posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case .descriptor(let source): posix_spawn_file_actions_adddup2(&actions, source, target)
            }
        }
        // (glibc ignores closing a descriptor that was closed since it was listed.)
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in open.compactMap({ Int32($0) }) where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, &argv, &envp)
        guard spawned == 0 else {
            throw SpawnFailure(executable: executable, error: spawned)
        }
        return ChildProcess(pid: pid)
    }

    /// The termination status, once it has exited (and been reaped); nil while it runs.
    public var terminationStatus: Int32? {
        status.withLock { status in
            if let status { return status }
            var waited: Int32 = 0
            let reaped = waitpid(pid, &waited, WNOHANG)
            if reaped == -1 && errno == ECHILD {
                // Reaped by someone else (a SIGCHLD handler reaping every child): gone, status unknown.
                status = -1
                return status
            }
            guard reaped == pid else { return nil }
            // WIFEXITED, WEXITSTATUS and WTERMSIG, which Swift does not import.
            let signal = waited & 0x7f
            status = signal == 0 ? (waited >> 8) & 0xff : signal
            return status
        }
    }

    public var isRunning: Bool { terminationStatus == nil }

    /// Waits for the exit without blocking a thread; returns the termination status.
    public func wait() async -> Int32 {
        while true {
            if let status = terminationStatus { return status }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    public func send(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }
}

public struct SpawnFailure: Error, CustomStringConvertible {
    public var executable: String
    public var error: Int32
    public var description: String { "posix_spawn \(executable): \(String(cString: strerror(error)))" }
}
