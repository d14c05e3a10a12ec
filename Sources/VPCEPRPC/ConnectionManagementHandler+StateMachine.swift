import NIOCore

extension ConnectionManagementHandler {
    /// When a connection is checked, probed, drained and closed (docs/PROTOCOL.md §7, §8.1, §8.3),
    /// without channels or timers: the handler passes in the time with every event and keeps one
    /// timer at `nextDeadline`, so tests drive it with any clock they like.
    struct StateMachine {
        struct Configuration: Sendable {
            /// Nil when the handshake is not watched (the client, or a handshake already done).
            var handshakeTimeout: TimeAmount?
            /// Nil: never idle (the client).
            var idleTimeout: TimeAmount?
            /// Nil: no keepalive PINGs.
            var keepaliveInterval: TimeAmount?
            var keepaliveTimeout: TimeAmount = .seconds(20)
            /// The client watches its server only while calls are open; the server watches always.
            var keepaliveOnlyWithOpenCalls = false
        }

        enum Action: Equatable {
            case none
            /// Write a keepalive PING.
            case sendPing
            /// Close at once, without GOAWAY: the TLS handshake did not finish in time.
            case handshakeTimedOut
            /// Close at once, without GOAWAY: nothing arrived within the keepalive timeout of a PING.
            case keepaliveTimedOut
            /// GOAWAY (`IDLE_TIMEOUT`), then close after flushing.
            case idleTimedOut
            /// GOAWAY (the shutdown's status); calls still open may finish.
            case goAway
            /// GOAWAY (the shutdown's status), then close after flushing: nothing is open.
            case goAwayAndClose
            /// The grace period is over: end the calls still open, then close after flushing.
            case graceExpired
            /// The last call of a draining connection ended: close after flushing.
            case close
        }

        private enum Phase: Equatable {
            case handshaking(deadline: NIODeadline)
            case active
            case draining(graceDeadline: NIODeadline)
            case closing
        }

        let configuration: Configuration
        private var phase: Phase = .active
        private(set) var openCalls = 0
        /// The later of the last call opened and the last call closed (§8.1: PINGs do not count).
        private var lastActivity: NIODeadline
        private var keepalive: Keepalive?
        private var underBackpressure = false

        init(configuration: Configuration, now: NIODeadline) {
            self.configuration = configuration
            self.lastActivity = now
            self.keepalive = configuration.keepaliveInterval.map {
                Keepalive(interval: $0, timeout: configuration.keepaliveTimeout, now: now)
            }
        }

        var isClosing: Bool { phase == .closing }

        /// The connection is up: the handshake timeout and the silence count from `now`.
        mutating func connectionStarted(now: NIODeadline) {
            lastActivity = now
            keepalive?.reset(at: now)
            if phase == .active, let timeout = configuration.handshakeTimeout {
                phase = .handshaking(deadline: now + timeout)
            }
        }

        mutating func handshakeCompleted() {
            if case .handshaking = phase { phase = .active }
        }

        var handshakeDone: Bool {
            if case .handshaking = phase { return false }
            return true
        }

        /// Any bytes count as liveness (§8.3) and answer an outstanding PING.
        mutating func bytesReceived(now: NIODeadline) {
            keepalive?.reset(at: now)
        }

        mutating func backpressureChanged(_ underBackpressure: Bool) {
            self.underBackpressure = underBackpressure
        }

        mutating func callOpened(now: NIODeadline) {
            if openCalls == 0, configuration.keepaliveOnlyWithOpenCalls {
                // Watching starts now: the silence before the call proves nothing.
                keepalive?.reset(at: now)
            }
            openCalls += 1
            lastActivity = now
        }

        mutating func callClosed(now: NIODeadline) -> Action {
            guard openCalls > 0 else { return .none }
            openCalls -= 1
            lastActivity = now
            guard openCalls == 0, case .draining = phase else { return .none }
            phase = .closing
            return .close
        }

        /// Graceful shutdown (§7): GOAWAY now, close when the open calls are done or `gracePeriod` ends.
        mutating func beginGracefulShutdown(now: NIODeadline, gracePeriod: TimeAmount) -> Action {
            switch phase {
            case .draining, .closing:
                return .none
            case .handshaking, .active:
                if openCalls == 0 {
                    phase = .closing
                    return .goAwayAndClose
                }
                phase = .draining(graceDeadline: now + gracePeriod)
                return .goAway
            }
        }

        /// The connection closes for a reason of its own (a protocol violation, an error): nothing
        /// more is checked. Returns false when it was closing already.
        mutating func closeRequested() -> Bool {
            guard phase != .closing else { return false }
            phase = .closing
            return true
        }

        private var watchesKeepalive: Bool {
            handshakeDone && (!configuration.keepaliveOnlyWithOpenCalls || openCalls > 0)
        }

        /// When the timer should next fire; nil when nothing is watched. A check whose condition
        /// cannot hold yet (calls open, probing suspended) is looked at again one period later.
        func nextDeadline(now: NIODeadline) -> NIODeadline? {
            var due: NIODeadline?
            func consider(_ deadline: NIODeadline) { due = due.map { min($0, deadline) } ?? deadline }
            switch phase {
            case .closing: return nil
            case .handshaking(let deadline): consider(deadline)
            case .draining(let graceDeadline): consider(graceDeadline)
            case .active: break
            }
            if let idleTimeout = configuration.idleTimeout {
                consider(openCalls == 0 && handshakeDone ? lastActivity + idleTimeout : now + idleTimeout)
            }
            if watchesKeepalive, let keepalive {
                consider(keepalive.nextCheck(now: now, suspended: underBackpressure))
            }
            return due
        }

        mutating func timerFired(now: NIODeadline) -> Action {
            switch phase {
            case .closing:
                return .none
            case .handshaking(let deadline):
                // Before the handshake no PING has gone out and no call can be open.
                guard now >= deadline else { return .none }
                phase = .closing
                return .handshakeTimedOut
            case .draining(let graceDeadline):
                if now >= graceDeadline {
                    phase = .closing
                    return .graceExpired
                }
            case .active:
                if let idleTimeout = configuration.idleTimeout, openCalls == 0, now - lastActivity >= idleTimeout {
                    phase = .closing
                    return .idleTimedOut
                }
            }
            guard watchesKeepalive else { return .none }
            switch keepalive?.check(now: now, suspended: underBackpressure) {
            case .timedOut?:
                phase = .closing
                return .keepaliveTimedOut
            case .sendPing?:
                return .sendPing
            case .wait?, nil:
                return .none
            }
        }
    }
}
