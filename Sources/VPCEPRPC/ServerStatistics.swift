import Synchronization

/// Counters of one `RPCServer`, updated by its connections from any event loop.
final class ServerStatistics: Sendable {
    private let connections = Atomic<Int>(0)
    private let refusedConnections = Atomic<Int>(0)
    private let callsInFlight = Atomic<Int>(0)
    private let bufferedBytes = Atomic<Int>(0)
    private let peakBufferedBytes = Atomic<Int>(0)
    private let fullHandshakes = Atomic<Int>(0)
    private let resumedHandshakes = Atomic<Int>(0)
    private let readPauses = Atomic<Int>(0)
    private let parkedSends = Atomic<Int>(0)
    private let handshakeTimeouts = Atomic<Int>(0)
    private let idleCloses = Atomic<Int>(0)
    private let keepaliveTimeouts = Atomic<Int>(0)
    private let waitingCalls = Atomic<Int>(0)
    private let overloadRefusals = Atomic<Int>(0)
    private let handshakeEvictions = Atomic<Int>(0)
    /// Set once the buffered bytes pass `trimHighWater`; cleared, with a trim, when they fall
    /// below `trimLowWater`.
    private let trimArmed = Atomic<Bool>(false)

    /// Buffered bytes from which a later drain gives freed memory back to the system.
    static let trimHighWater = 16 * 1024 * 1024
    static let trimLowWater = 1024 * 1024

    /// Counts a new connection unless `limit` are open already; false means refuse it.
    func admitConnection(limit: Int) -> Bool {
        while true {
            let current = connections.load(ordering: .relaxed)
            guard current < limit else {
                refusedConnections.add(1, ordering: .relaxed)
                return false
            }
            if connections.compareExchange(expected: current, desired: current + 1, ordering: .relaxed).exchanged {
                return true
            }
        }
    }

    func connectionClosed() { connections.subtract(1, ordering: .relaxed) }
    func adjustCallsInFlight(_ delta: Int) { callsInFlight.add(delta, ordering: .relaxed) }

    func adjustBufferedBytes(_ delta: Int) {
        guard delta != 0 else { return }
        let now = bufferedBytes.add(delta, ordering: .relaxed).newValue
        if delta > 0 {
            raisePeak(to: now)
            if now >= Self.trimHighWater, !trimArmed.load(ordering: .relaxed) { trimArmed.store(true, ordering: .relaxed) }
        } else if now <= Self.trimLowWater, trimArmed.load(ordering: .relaxed),
                  trimArmed.exchange(false, ordering: .relaxed) {
            MemoryTrim.releaseFreedMemory()
        }
    }

    /// Whether all connections together hold more than `limit` bytes for sending.
    func bufferedBytesExceed(_ limit: Int) -> Bool { bufferedBytes.load(ordering: .relaxed) > limit }

    func adjustWaitingCalls(_ delta: Int) { waitingCalls.add(delta, ordering: .relaxed) }
    func recordOverloadRefusal() { overloadRefusals.add(1, ordering: .relaxed) }
    func recordHandshakeEvictions(_ count: Int) { handshakeEvictions.add(count, ordering: .relaxed) }

    private func raisePeak(to candidate: Int) {
        var current = peakBufferedBytes.load(ordering: .relaxed)
        while candidate > current {
            let (exchanged, original) = peakBufferedBytes.compareExchange(
                expected: current, desired: candidate, ordering: .relaxed)
            if exchanged {
                // Two raises on two event loops may set the gauge out of order: it then shows the
                // lower of two peaks a moment apart until the next raise.
                RPCMetrics.peakBufferedOutboundBytes.set(candidate)
                return
            }
            current = original
        }
    }

    func recordHandshake(resumed: Bool) {
        if resumed {
            resumedHandshakes.add(1, ordering: .relaxed)
        } else {
            fullHandshakes.add(1, ordering: .relaxed)
        }
    }
    func recordReadPause() { readPauses.add(1, ordering: .relaxed) }
    func recordParkedSend() { parkedSends.add(1, ordering: .relaxed) }
    func recordHandshakeTimeout() { handshakeTimeouts.add(1, ordering: .relaxed) }
    func recordIdleClose() { idleCloses.add(1, ordering: .relaxed) }
    func recordKeepaliveTimeout() { keepaliveTimeouts.add(1, ordering: .relaxed) }

    var snapshot: RPCServer.Statistics {
        RPCServer.Statistics(
            openConnections: connections.load(ordering: .relaxed),
            refusedConnections: refusedConnections.load(ordering: .relaxed),
            callsInFlight: callsInFlight.load(ordering: .relaxed),
            bufferedOutboundBytes: bufferedBytes.load(ordering: .relaxed),
            peakBufferedOutboundBytes: peakBufferedBytes.load(ordering: .relaxed),
            fullHandshakes: fullHandshakes.load(ordering: .relaxed),
            resumedHandshakes: resumedHandshakes.load(ordering: .relaxed),
            readPauses: readPauses.load(ordering: .relaxed),
            parkedStreamSends: parkedSends.load(ordering: .relaxed),
            handshakeTimeouts: handshakeTimeouts.load(ordering: .relaxed),
            idleTimeouts: idleCloses.load(ordering: .relaxed),
            keepaliveTimeouts: keepaliveTimeouts.load(ordering: .relaxed),
            callsWaiting: waitingCalls.load(ordering: .relaxed),
            overloadRefusals: overloadRefusals.load(ordering: .relaxed),
            handshakeEvictions: handshakeEvictions.load(ordering: .relaxed)
        )
    }
}

