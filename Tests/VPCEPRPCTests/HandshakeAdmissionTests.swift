import NIOCore
import Testing
@testable import VPCEPRPC

/// §8.1: connections still in their TLS handshake are limited overall and per source address; the
/// oldest is closed rather than a new one refused, and pressure shortens the timeout (issue 10,
/// defect 3).
@Suite("§8.1 handshake admission")
struct HandshakeAdmissionTests {
    private static let limits = HandshakeAdmission<Int>.Limits(
        maxPending: 8, maxPendingPerAddress: 4, timeout: .seconds(10), timeoutUnderPressure: .seconds(1))
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func at(_ milliseconds: Int64) -> NIODeadline { start + .milliseconds(milliseconds) }

    @Test func aQuietServerGivesTheFullTimeoutAndClosesNothing() {
        var admission = HandshakeAdmission<Int>(limits: Self.limits)
        #expect(admission.admit(1, address: "10.0.0.1", now: at(0)) == .init(timeout: .seconds(10), evict: []))
        #expect(admission.admit(2, address: "10.0.0.2", now: at(1)) == .init(timeout: .seconds(10), evict: []))
        #expect(admission.pendingCount == 2)
    }

    @Test func oneAddressPastItsLimitLosesItsOwnOldestNeverAnotherAddress() {
        var admission = HandshakeAdmission<Int>(limits: Self.limits)
        _ = admission.admit(100, address: "127.0.0.1", now: at(0))
        for id in 1...4 { _ = admission.admit(id, address: "127.0.0.2", now: at(Int64(id))) }
        #expect(admission.pendingCount(from: "127.0.0.2") == 4)
        let decision = admission.admit(5, address: "127.0.0.2", now: at(5))
        #expect(decision.evict == [1])
        #expect(admission.pendingCount(from: "127.0.0.2") == 4)
        #expect(admission.pendingCount(from: "127.0.0.1") == 1)
        // A flood keeps churning its own slots only.
        for id in 6...50 {
            #expect(!admission.admit(id, address: "127.0.0.2", now: at(Int64(id))).evict.contains(100))
        }
        #expect(admission.pendingCount(from: "127.0.0.1") == 1)
        #expect(admission.pendingCount == 5)
    }

    @Test func theOverallLimitClosesTheOldestPendingOverall() {
        var admission = HandshakeAdmission<Int>(limits: .init(
            maxPending: 4, maxPendingPerAddress: 4, timeout: .seconds(10), timeoutUnderPressure: .seconds(1)))
        for id in 1...4 { _ = admission.admit(id, address: "10.0.0.\(id)", now: at(Int64(id))) }
        let decision = admission.admit(5, address: "10.0.0.5", now: at(5))
        #expect(decision.evict == [1])
        #expect(admission.pendingCount == 4)
    }

    @Test func completedHandshakesFreeTheirSlot() {
        var admission = HandshakeAdmission<Int>(limits: Self.limits)
        for id in 1...4 { _ = admission.admit(id, address: "127.0.0.2", now: at(Int64(id))) }
        for id in 1...4 { admission.remove(id) }
        admission.remove(99)
        #expect(admission.pendingCount == 0 && admission.pendingCount(from: "127.0.0.2") == 0)
        #expect(admission.admit(5, address: "127.0.0.2", now: at(5)) == .init(timeout: .seconds(10), evict: []))
    }

    @Test func pressureShortensTheTimeoutAndClosesPendingOlderThanIt() {
        var admission = HandshakeAdmission<Int>(limits: Self.limits)
        _ = admission.admit(1, address: "10.0.0.1", now: at(0))
        _ = admission.admit(2, address: "10.0.0.2", now: at(0))
        _ = admission.admit(3, address: "10.0.0.3", now: at(1500))
        // Three of eight pending: below half, the full timeout.
        #expect(admission.admit(4, address: "10.0.0.4", now: at(1600)).timeout == .seconds(10))
        // Four pending: half taken. Those pending for a second or more go; the new one gets a second.
        let decision = admission.admit(5, address: "10.0.0.5", now: at(1700))
        #expect(decision == .init(timeout: .seconds(1), evict: [1, 2]))
        #expect(admission.pendingCount == 3)
    }

    @Test func pressureFromOneAddressShortensTheTimeoutOfThatAddressOnly() {
        var admission = HandshakeAdmission<Int>(limits: Self.limits)
        _ = admission.admit(1, address: "127.0.0.2", now: at(0))
        _ = admission.admit(2, address: "127.0.0.2", now: at(10))
        #expect(admission.admit(3, address: "127.0.0.2", now: at(20)).timeout == .seconds(1))
        #expect(admission.admit(4, address: "127.0.0.1", now: at(30)).timeout == .seconds(10))
    }
}
