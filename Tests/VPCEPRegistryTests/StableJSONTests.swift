import Foundation
import Testing
@testable import VPCEPRegistry

/// The direct encoding of the most written kinds is byte for byte `JSONEncoder`'s (sorted keys,
/// millisecond dates), for every field, awkward strings and fractional times included: stored states
/// read back the same, and a field added to one of these types without its line here fails.
@Suite("Stored states written directly")
struct StableJSONTests {
    static func encoded(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Strings JSON escapes in several ways, and some it does not.
    static let awkward = [
        "", "plain", "quote \" and backslash \\", "a/b//c", "tab\tnew\nline\rcr", "\u{08}\u{0C}\u{00}\u{01}\u{1F}\u{7F}",
        "é ü 中文 🙂", "</script>", "\u{2028}\u{2029}", "x\u{0}y",
    ]

    static let dates = [
        Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_764_612_345.678),
        Date(timeIntervalSince1970: 1_764_612_345.678_9), Date(timeIntervalSince1970: -1.5), Date(),
        Date(timeIntervalSince1970: 4_102_444_800.001), Date(timeIntervalSince1970: 1e-7),
    ]

    static func service(_ seed: Int) -> EndpointService {
        var random = SystemRandomNumberGenerator()
        func text() -> String { awkward[Int.random(in: 0..<awkward.count, using: &random)] }
        func date() -> Date { dates[Int.random(in: 0..<dates.count, using: &random)] }
        return EndpointService(
            id: text(), serviceName: text(), name: text(), ownerID: text(), region: text(), vpcID: text(),
            serviceType: ServiceType.allCases.randomElement()!, backendKind: BackendKind.allCases.randomElement()!,
            backendID: text(),
            ports: (0..<(seed % 4)).map { PortMapping(terminalPort: $0 * 1000 + 1, servicePort: 65_535 - $0, protocol: text()) },
            approvalEnabled: seed % 2 == 0, clientIPMode: ClientIPMode.allCases.randomElement()!, description: text(),
            tags: (0..<(seed % 3)).map { _ in Tag(key: text(), value: text()) }, status: ServiceStatus.allCases.randomElement()!,
            connectionCount: [0, 1, 999_999, Int.max, -1][seed % 5], createdAt: date(), updatedAt: date(),
            revision: [1, 2, UInt64.max][seed % 3], warnings: (0..<(seed % 3)).map { _ in text() }, clientIPNote: text(),
            isPublic: seed % 3 == 0)
    }

    @Test func endpointServicesAreJSONEncodersBytes() throws {
        for seed in 0..<400 {
            let service = Self.service(seed)
            #expect(service.stableJSON() == (try Self.encoded(service)), "\(service)")
            #expect(try ResourceState.endpointService(service).serialized() == (try Self.encoded(service)))
        }
    }

    static func endpoint(_ seed: Int) -> Endpoint {
        var random = SystemRandomNumberGenerator()
        func text() -> String { awkward[Int.random(in: 0..<awkward.count, using: &random)] }
        func date() -> Date { dates[Int.random(in: 0..<dates.count, using: &random)] }
        return Endpoint(
            id: text(), ownerID: text(), region: text(), vpcID: text(), subnetID: text(), serviceID: text(),
            serviceName: text(), serviceType: ServiceType.allCases.randomElement()!, ip: text(),
            status: EndpointStatus.allCases.randomElement()!, markerID: [0, 7, UInt64.max][seed % 3], dnsName: text(),
            whitelist: (0..<(seed % 3)).map { _ in text() }, enableWhitelist: seed % 2 == 1, description: text(),
            tags: (0..<(seed % 4)).map { _ in Tag(key: text(), value: text()) }, connectionDescription: text(),
            decidedBy: text(), decidedAt: seed % 2 == 0 ? nil : date(), everAccepted: seed % 3 == 1,
            createdAt: date(), updatedAt: date(), requestMessage: text(), decisionReason: text(),
            revision: [1, 42, UInt64.max][seed % 3])
    }

    @Test func endpointsAreJSONEncodersBytes() throws {
        for seed in 0..<400 {
            let endpoint = Self.endpoint(seed)
            #expect(endpoint.stableJSON() == (try Self.encoded(endpoint)), "\(endpoint)")
            #expect(try ResourceState.endpoint(endpoint).serialized() == (try Self.encoded(endpoint)))
        }
    }

    @Test func vpcsAreJSONEncodersBytes() throws {
        for (index, text) in Self.awkward.enumerated() {
            for date in Self.dates {
                let vpc = VPC(id: text, name: Self.awkward[(index + 1) % Self.awkward.count], cidr: "10.0.0.0/16",
                              region: text, ownerID: "operator:\(text)", createdAt: date, updatedAt: Self.dates[index % Self.dates.count])
                #expect(vpc.stableJSON() == (try Self.encoded(vpc)), "\(vpc)")
            }
        }
    }

    /// What is written reads back as the same value.
    @Test func writtenStatesReadBack() throws {
        for seed in 0..<50 {
            var service = Self.service(seed)
            service.createdAt = Date(timeIntervalSince1970: 1_764_612_345.678)
            service.updatedAt = service.createdAt
            let state = try ResourceState(kind: .endpointService, serialized: try ResourceState.endpointService(service).serialized())
            #expect(state == .endpointService(service))
            var endpoint = Self.endpoint(seed)
            endpoint.createdAt = service.createdAt
            endpoint.updatedAt = service.createdAt
            endpoint.decidedAt = seed % 2 == 0 ? nil : service.createdAt
            let read = try ResourceState(kind: .endpoint, serialized: try ResourceState.endpoint(endpoint).serialized())
            #expect(read == .endpoint(endpoint))
        }
    }
}
