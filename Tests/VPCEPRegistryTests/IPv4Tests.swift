import Testing
@testable import VPCEPRegistry

@Suite("IPv4 parsing and arithmetic")
struct IPv4Tests {
    /// The byte-wise parsers agree with the Character-wise ones they replaced, on strings made of the
    /// characters that matter (digits, separators, signs, spaces, a non-ASCII digit).
    @Test func byteWiseParsingAgreesWithTheCharacterWiseReference() {
        func referenceDecimal(_ text: Substring, max: Int) -> Int? {
            guard !text.isEmpty, text.count <= 3, text.allSatisfy({ $0.isASCII && $0.isNumber }),
                text == "0" || text.first != "0", let number = Int(text), number <= max
            else { return nil }
            return number
        }
        func referenceAddress(_ text: Substring) -> UInt32? {
            let parts = text.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4 else { return nil }
            var value: UInt32 = 0
            for part in parts {
                guard let octet = referenceDecimal(part, max: 255) else { return nil }
                value = value << 8 | UInt32(octet)
            }
            return value
        }
        func referenceCIDR(_ text: String) -> String? {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let prefix = referenceDecimal(parts[1], max: 32), let address = referenceAddress(parts[0]) else {
                return nil
            }
            let mask: UInt32 = prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix)
            return address & ~mask == 0 ? "\(IPv4Address(value: address))/\(prefix)" : "host bits"
        }
        let alphabet = Array("0123456789./-+ a١")
        var random = SystemRandomNumberGenerator()
        var valid = 0
        for round in 0..<20_000 {
            let length = Int.random(in: 0...(round % 2 == 0 ? 12 : 20), using: &random)
            var text = String((0..<length).map { _ in alphabet.randomElement(using: &random)! })
            if round % 3 == 0 {  // mostly well-formed, with a fault here and there
                let octets = (0..<4).map { _ in String(Int.random(in: 0...300, using: &random)) }
                text = octets.joined(separator: ".") + "/" + String(Int.random(in: 0...40, using: &random))
                if round % 9 == 0 { text.insert(alphabet.randomElement(using: &random)!, at: text.index(text.startIndex, offsetBy: Int.random(in: 0..<text.count, using: &random))) }
            }
            #expect(IPv4Address(text)?.value == referenceAddress(text[...]), "\(text)")
            let parsed: String?
            do { parsed = try IPv4CIDR.parse(text).description } catch .hostBitsSet { parsed = "host bits" } catch { parsed = nil }
            #expect(parsed == referenceCIDR(text), "\(text)")
            if parsed != nil { valid += 1 }
        }
        #expect(valid > 100)
    }

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
        for bad in ["1.2.3.0/33", "1.2.3.0/24/1", "1.2.3.0/024", "/24", "1.2.3.0/ 24", "1.2.3.0/8x", "1.2.3.0/-1", "1.2.3.0004/32"] {
            #expect(throws: IPv4CIDR.ParseError.syntax, "\(bad)") { try IPv4CIDR.parse(bad) }
        }
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
