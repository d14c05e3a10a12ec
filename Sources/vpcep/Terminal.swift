import Foundation

/// What the CLI knows about where its output goes: colour and sizing only for people at a terminal.
enum Terminal {
    static let stdoutIsTerminal = isatty(STDOUT_FILENO) == 1
    static let stderrIsTerminal = isatty(STDERR_FILENO) == 1

    /// Colour on stderr only at a terminal, and never when NO_COLOR is set (no-color.org).
    static var colourOnStderr: Bool {
        stderrIsTerminal && ProcessInfo.processInfo.environment["NO_COLOR"].map(\.isEmpty) ?? true
            && ProcessInfo.processInfo.environment["TERM"] != "dumb"
    }

    static func red(_ text: String) -> String { colourOnStderr ? "\u{1B}[31m\(text)\u{1B}[0m" : text }

    /// The terminal's width in columns, when stdout is one.
    static var width: Int? {
        guard stdoutIsTerminal else { return nil }
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 else { return nil }
        return Int(size.ws_col)
    }

    /// A one-line progress note on stderr that rewrites itself, for waits; silent off a terminal.
    static func progress(_ text: String) {
        guard stderrIsTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K\(text)".utf8))
    }

    /// After half a second without an answer, a spinner on stderr until the task is cancelled.
    /// Nothing at all when stderr is not a terminal.
    static func spinWhileWaiting() async {
        guard stderrIsTerminal else { return }
        guard (try? await Task.sleep(for: .milliseconds(500))) != nil else { return }
        let frames = ["|", "/", "-", "\\"]
        var index = 0
        let started = ContinuousClock.now
        while !Task.isCancelled {
            let seconds = (ContinuousClock.now - started).components.seconds
            progress("\(frames[index % frames.count]) waiting for the server (\(seconds) s)")
            index += 1
            guard (try? await Task.sleep(for: .milliseconds(120))) != nil else { break }
        }
        endProgress()
    }

    static func endProgress() {
        guard stderrIsTerminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}
