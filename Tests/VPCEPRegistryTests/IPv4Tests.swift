import Testing
@testable import VPCEPRegistry

@Suite("IPv4 parsing and arithmetic")
struct IPv4Tests {
    @Test func parsesStrictly() throws {
        #expect(IPv4Address("0.0.0.0")?.value == 0)
        #expect(IPv4Address("255.255.255.255")?.value == UInt32.max)
        #expect(IPv4Address("10.1.2.3")?.description == "10.1.2.3")
        for bad in ["", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.256", "1.2.3.-1", "1.2.3.+4", "a.b.c.d", "1..2.3", "１.2.3.4"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
        let cidr = try IPv4CIDR.parse("10.0.0.0/8")
        #expect(cidr.first == 10 << 24)
        #expect(cidr.last == 10 << 24 | 0xff_ffff)
        #expect(try IPv4CIDR.parse("0.0.0.0/0").last == UInt32.max)
        #expect(try IPv4CIDR.parse("1.2.3.4", acceptAddress: true).description == "1.2.3.4/32")
        #expect(throws: IPv4CIDR.ParseError.syntax) { try IPv4CIDR.parse("1.2.3.4") }
        #expect(throws: IPv4CIDR.ParseError.hostBitsSet) { try IPv4CIDR.parse("1.2.3.4/24") }
        #expect(throws: IPv4CIDR.ParseError.syntax) { try IPv4CIDR.parse("1.2.3.0/") }
    }

    @Test func containsAndOverlaps() throws {
        let vpc = try IPv4CIDR.parse("10.0.0.0/16")
        #expect(vpc.contains(try IPv4CIDR.parse("10.0.255.0/24")))
        #expect(!vpc.contains(try IPv4CIDR.parse("10.0.0.0/15")))
        #expect(vpc.overlaps(try IPv4CIDR.parse("10.0.0.0/8")))
        #expect(!vpc.overlaps(try IPv4CIDR.parse("10.1.0.0/16")))
        #expect(IPv4CIDR.endpointSourceRange.description == "198.19.128.0/17")
    }

    @Test func coverageByAUnion() throws {
        let target = IPv4CIDR.endpointSourceRange
        func covered(_ blocks: [String]) throws -> Bool {
            target.isCovered(by: try blocks.map { try IPv4CIDR.parse($0, acceptAddress: true) })
        }
        #expect(try covered(["0.0.0.0/0"]))
        #expect(try covered(["198.19.192.0/18", "198.19.128.0/18"]))
        #expect(try covered(["198.19.128.0/18", "198.19.160.0/19", "198.19.192.0/18"]))
        #expect(try !covered([]))
        #expect(try !covered(["198.19.128.0/18", "198.19.192.0/19"]))
        #expect(try !covered(["198.19.128.1"]))
        let top = IPv4CIDR(address: IPv4Address(value: UInt32.max), prefix: 32)
        #expect(top.isCovered(by: [try IPv4CIDR.parse("255.0.0.0/8")]))
    }
}
