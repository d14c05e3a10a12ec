import Foundation

/// The stored form of the most written resources (`ResourceState.serialized`: VPCs, services and
/// endpoints), written directly: the same bytes as Foundation's `JSONEncoder` with sorted keys and
/// millisecond dates, at a fraction of its cost. Every write stores its event's state (an update its
/// previous state too), and the encoder was the largest single item of a write (issue 11's throughput
/// phases: 14-15% of the server's CPU). `StableJSONTests` holds every field of these kinds byte-equal to
/// `JSONEncoder`'s output; the other kinds still go through `JSONEncoder`.
package struct StableJSON {
    package private(set) var bytes: [UInt8] = []

    package init() {
        bytes.reserveCapacity(512)
    }

    package var string: String { String(decoding: bytes, as: UTF8.self) }

    /// An object whose members `body` writes (`key` then a value each), in sorted key order.
    package mutating func object(_ body: (inout StableJSON) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        body(&self)
        bytes.append(UInt8(ascii: "}"))
    }

    /// A tag, as services and endpoints hold them.
    package mutating func tag(_ tag: Tag) {
        object { json in
            json.key("key"); json.string(tag.key)
            json.key("value"); json.string(tag.value)
        }
    }

    /// A member's key; its value follows.
    package mutating func key(_ name: StaticString) {
        if bytes.last != UInt8(ascii: "{") { bytes.append(UInt8(ascii: ",")) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        bytes.append(contentsOf: [UInt8(ascii: "\""), UInt8(ascii: ":")])
    }

    package mutating func array<Element>(_ elements: [Element], _ write: (inout StableJSON, Element) -> Void) {
        bytes.append(UInt8(ascii: "["))
        for (index, element) in elements.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            write(&self, element)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    package mutating func string(_ value: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "/"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "/")])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case UInt8(ascii: "\n"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x00..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0xF)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    package mutating func integer(_ value: some BinaryInteger) {
        bytes.append(contentsOf: String(value).utf8)
    }

    package mutating func bool(_ value: Bool) {
        bytes.append(contentsOf: (value ? "true" : "false").utf8)
    }

    /// As `JSONEncoder.DateEncodingStrategy.millisecondsSince1970`: a Double, without a trailing `.0`.
    package mutating func date(_ value: Date) {
        var text = (1000.0 * value.timeIntervalSince1970).description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
    }
}

extension VPC {
    /// `JSONEncoder`'s bytes (sorted keys, millisecond dates) for this value.
    func stableJSON() -> String {
        var json = StableJSON()
        json.object { json in
            json.key("cidr"); json.string(cidr)
            json.key("createdAt"); json.date(createdAt)
            json.key("id"); json.string(id)
            json.key("name"); json.string(name)
            json.key("ownerID"); json.string(ownerID)
            json.key("region"); json.string(region)
            json.key("updatedAt"); json.date(updatedAt)
        }
        return json.string
    }
}

extension EndpointService {
    /// `JSONEncoder`'s bytes (sorted keys, millisecond dates) for this value.
    func stableJSON() -> String {
        var json = StableJSON()
        json.object { json in
            json.key("approvalEnabled"); json.bool(approvalEnabled)
            json.key("backendID"); json.string(backendID)
            json.key("backendKind"); json.string(backendKind.rawValue)
            json.key("clientIPMode"); json.string(clientIPMode.rawValue)
            json.key("clientIPNote"); json.string(clientIPNote)
            json.key("connectionCount"); json.integer(connectionCount)
            json.key("createdAt"); json.date(createdAt)
            json.key("description"); json.string(description)
            json.key("id"); json.string(id)
            json.key("isPublic"); json.bool(isPublic)
            json.key("name"); json.string(name)
            json.key("ownerID"); json.string(ownerID)
            json.key("ports")
            json.array(ports) { json, port in
                json.object { json in
                    json.key("protocol"); json.string(port.protocol)
                    json.key("servicePort"); json.integer(port.servicePort)
                    json.key("terminalPort"); json.integer(port.terminalPort)
                }
            }
            json.key("region"); json.string(region)
            json.key("revision"); json.integer(revision)
            json.key("serviceName"); json.string(serviceName)
            json.key("serviceType"); json.string(serviceType.rawValue)
            json.key("status"); json.string(status.rawValue)
            json.key("tags")
            json.array(tags) { json, tag in json.tag(tag) }
            json.key("updatedAt"); json.date(updatedAt)
            json.key("vpcID"); json.string(vpcID)
            json.key("warnings")
            json.array(warnings) { json, warning in json.string(warning) }
        }
        return json.string
    }
}

extension Endpoint {
    /// `JSONEncoder`'s bytes (sorted keys, millisecond dates, no `decidedAt` when there is none).
    func stableJSON() -> String {
        var json = StableJSON()
        json.object { json in
            json.key("connectionDescription"); json.string(connectionDescription)
            json.key("createdAt"); json.date(createdAt)
            if let decidedAt { json.key("decidedAt"); json.date(decidedAt) }
            json.key("decidedBy"); json.string(decidedBy)
            json.key("decisionReason"); json.string(decisionReason)
            json.key("description"); json.string(description)
            json.key("dnsName"); json.string(dnsName)
            json.key("enableWhitelist"); json.bool(enableWhitelist)
            json.key("everAccepted"); json.bool(everAccepted)
            json.key("id"); json.string(id)
            json.key("ip"); json.string(ip)
            json.key("markerID"); json.integer(markerID)
            json.key("ownerID"); json.string(ownerID)
            json.key("region"); json.string(region)
            json.key("requestMessage"); json.string(requestMessage)
            json.key("revision"); json.integer(revision)
            json.key("serviceID"); json.string(serviceID)
            json.key("serviceName"); json.string(serviceName)
            json.key("serviceType"); json.string(serviceType.rawValue)
            json.key("status"); json.string(status.rawValue)
            json.key("subnetID"); json.string(subnetID)
            json.key("tags")
            json.array(tags) { json, tag in json.tag(tag) }
            json.key("updatedAt"); json.date(updatedAt)
            json.key("vpcID"); json.string(vpcID)
            json.key("whitelist")
            json.array(whitelist) { json, entry in json.string(entry) }
        }
        return json.string
    }
}
