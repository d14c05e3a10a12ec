import Testing
import VPCEPProto

@Suite("Malformed input is refused, never crashes")
struct MalformedInputTests {
    @Test("garbage", arguments: [
        [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],  // overlong varint key
        [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F],  // length far past the end
        [0x07],  // wire type 7
        [0x00, 0x00],  // field number 0
        [0x0B, 0x0C],  // a group
    ] as [[UInt8]])
    func garbage(bytes: [UInt8]) {
        #expect {
            try EndpointService(serializedBytes: bytes)
        } throws: { error in
            (error as? ProtoDecodingError)?.code == .malformedInput
                && (error as? ProtoDecodingError)?.messageName == "vpcep.v1.EndpointService"
        }
    }

    @Test("truncated in the middle of a field")
    func truncated() throws {
        let bytes = try Fixtures.endpointService.serializedBytes()
        // Cut inside the first string (id): tag, length 20, then only 5 of its bytes.
        let cut = Array(bytes.prefix(7))
        #expect(throws: ProtoDecodingError.self) {
            try EndpointService(serializedBytes: cut)
        }
        #expect(throws: ProtoDecodingError.self) {
            try EndpointService(serializedBytes: Array(bytes.dropLast()))
        }
        // Every prefix either decodes (it ends between fields) or throws; none crashes.
        var refused = 0
        for length in 0..<bytes.count {
            do {
                _ = try EndpointService(serializedBytes: Array(bytes.prefix(length)))
            } catch {
                refused += 1
            }
        }
        #expect(refused > bytes.count / 2)
    }

    @Test("random bytes never crash")
    func fuzz() {
        var generator = SplitMix64(seed: 0x5EED)
        var decoded = 0
        for _ in 0..<5000 {
            let count = Int(generator.next() % 64)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if (try? EndpointService(serializedBytes: bytes)) != nil {
                decoded += 1
            }
            _ = try? ListVpcsResponse(serializedBytes: bytes)
            _ = try? Status(serializedBytes: bytes)
        }
        #expect(decoded < 5000)
    }

    @Test("mutated valid encodings never crash")
    func mutations() throws {
        let bytes = try Fixtures.endpointService.serializedBytes()
        var generator = SplitMix64(seed: 42)
        for _ in 0..<3000 {
            var mutated = bytes
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                let index = Int(generator.next() % UInt64(mutated.count))
                mutated[index] = UInt8(truncatingIfNeeded: generator.next())
            }
            _ = try? EndpointService(serializedBytes: mutated)
        }
    }

    @Test("a string that is not UTF-8 names its field")
    func invalidUTF8() {
        // field 2 (service_name): 0xC3 0x28 is an invalid two-byte sequence.
        let bytes: [UInt8] = [0x12, 0x02, 0xC3, 0x28]
        #expect {
            try EndpointService(serializedBytes: bytes)
        } throws: { error in
            let error = error as? ProtoDecodingError
            return error?.code == .invalidUTF8 && error?.field == "service_name"
        }
    }

    @Test("invalid UTF-8 in nested and repeated fields has the full path")
    func invalidUTF8Nested() {
        // field 14 (tags) { field 2 (value): 0xFF }
        let tag: [UInt8] = [0x0A, 0x01, 0x6B, 0x12, 0x01, 0xFF]
        let tags: [UInt8] = [0x72, 0x00] + [0x72, UInt8(tag.count)] + tag
        #expect {
            try EndpointService(serializedBytes: tags)
        } throws: { error in
            (error as? ProtoDecodingError)?.field == "tags[1].value"
        }
        // field 20 (warnings): "ok", then an overlong encoding of "/".
        let warnings: [UInt8] = [0xA2, 0x01, 0x02, 0x6F, 0x6B, 0xA2, 0x01, 0x02, 0xC0, 0xAF]
        #expect {
            try EndpointService(serializedBytes: warnings)
        } throws: { error in
            let error = error as? ProtoDecodingError
            return error?.code == .invalidUTF8 && error?.field == "warnings[1]"
        }
        // field 4 (field_violations) { field 1 (field): lone surrogate U+D800 }
        let violation: [UInt8] = [0x0A, 0x03, 0xED, 0xA0, 0x80]
        let status: [UInt8] = [0x22, UInt8(violation.count)] + violation
        #expect {
            try Status(serializedBytes: status)
        } throws: { error in
            (error as? ProtoDecodingError)?.field == "field_violations[0].field"
        }
    }

    @Test("a NUL inside a string on the wire is refused, not truncated")
    func nulOnTheWire() {
        // field 3 (name) "a\0b"
        #expect {
            try EndpointService(serializedBytes: [0x1A, 0x03, 0x61, 0x00, 0x62])
        } throws: { error in
            let error = error as? ProtoDecodingError
            return error?.code == .nulInString && error?.field == "name"
        }
        // field 10 (ports) {}, field 14 (tags) { field 1 (key) "\0" }
        #expect {
            try EndpointService(serializedBytes: [0x52, 0x00, 0x72, 0x00, 0x72, 0x03, 0x0A, 0x01, 0x00])
        } throws: { error in
            (error as? ProtoDecodingError)?.field == "tags[1].key"
        }
        // NUL in bytes fields and unknown fields is fine: field 99 (unknown) "\0".
        #expect(throws: Never.self) {
            try EndpointService(serializedBytes: [0x9A, 0x06, 0x01, 0x00])
        }
    }

    @Test("error descriptions name the message and field but not the data")
    func description() {
        do {
            _ = try EndpointService(serializedBytes: [0x12, 0x02, 0xC3, 0x28])
            Issue.record("decoding should have failed")
        } catch {
            #expect(error.description == "cannot decode vpcep.v1.EndpointService: service_name: string is not valid UTF-8")
        }
    }
}

/// A small deterministic generator, so a failure reproduces.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
