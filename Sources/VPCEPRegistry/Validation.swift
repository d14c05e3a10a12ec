/// The pure input rules, each throwing the error that names the field at fault.
enum Validation {
    static let maxPortMappings = 50
    static let maxTags = 20
    static let maxIngressCIDRs = 20
    static let maxDescription = 128
    static let maxListLimit = 1000
    static let defaultListLimit = 10
    static let maxPermissions = 500
    static let maxPermissionsPerRequest = 100
    /// The largest connection limit an entry may set (the quota's largest endpoint limit).
    static let maxConnectionLimit = 10_000
    static let maxWhitelist = 20
    static let maxTagFilterKeys = 10
    static let maxTagFilterValues = 10
    static let maxDecisionsPerRequest = 100
    static let maxMessage = 255
    static let maxQuotaLimit = 10_000

    /// Whether every byte of `text` is an ASCII letter or digit or one of `others`. Names allow only
    /// ASCII, so their bytes decide as their Characters would, without Unicode property look-ups
    /// (1% of a create's CPU).
    private static func onlyASCII(_ text: some StringProtocol, alphanumericsAnd others: StaticString) -> Bool {
        text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            default:
                others.withUTF8Buffer { $0.contains(byte) }
            }
        }
    }

    /// Inventory names (VPC, subnet, load balancer, VM): 1-64 of `[A-Za-z0-9_.-]`.
    static func resourceName(_ name: String, field: String = "name") throws(RegistryError) {
        guard (1...64).contains(name.utf8.count), onlyASCII(name, alphanumericsAnd: "_.-") else {
            throw .invalid(.nameInvalid, "name must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'", field: field)
        }
    }

    /// Endpoint service names: 0-16 of `[A-Za-z0-9_-]`.
    static func serviceName(_ name: String) throws(RegistryError) {
        guard name.utf8.count <= 16, onlyASCII(name, alphanumericsAnd: "_-") else {
            throw .invalid(
                .serviceNameInvalid, "name must be 0-16 characters of A-Z, a-z, 0-9, '_', '-'", field: "name")
        }
    }

    /// At most 128 characters, no `<` or `>`, no control characters: descriptions are shown in
    /// consoles, terminals and logs, to other tenants and to operators.
    static func description(_ text: String) throws(RegistryError) {
        guard text.count <= maxDescription, !text.contains("<"), !text.contains(">"), !containsControlCharacter(text)
        else {
            throw .invalid(
                .descriptionInvalid,
                "description must be at most 128 characters and contain no '<', '>' or control characters",
                field: "description")
        }
    }

    /// A consumer's request message or a decision's reason: shown to the other party, so held to the
    /// description's characters, with room for a sentence or two (255 characters).
    static func message(_ text: String, field: String) throws(RegistryError) {
        guard text.count <= maxMessage, !text.contains("<"), !text.contains(">"), !containsControlCharacter(text) else {
            throw .invalid(
                .messageInvalid,
                "\(field) must be at most \(maxMessage) characters and contain no '<', '>' or control characters",
                field: field)
        }
    }

    /// C0 controls (newline, ESC, …), DEL, C1 controls and the Unicode line and paragraph
    /// separators: what could end a line or drive a terminal when stored text is shown.
    static func containsControlCharacter(_ text: String) -> Bool {
        text.unicodeScalars.contains { scalar in
            switch scalar.value {
            case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: true
            default: false
            }
        }
    }

    /// An IPv4 CIDR with host bits zero and a prefix in `prefixes`.
    static func cidr(_ text: String, prefixes: ClosedRange<Int>, field: String = "cidr") throws(RegistryError) -> IPv4CIDR {
        let cidr = try parseCIDR(text, acceptAddress: false, field: field)
        guard prefixes.contains(cidr.prefix) else {
            throw .invalid(
                .cidrPrefixOutOfRange,
                "the prefix length must be /\(prefixes.lowerBound) to /\(prefixes.upperBound)", field: field)
        }
        return cidr
    }

    static func parseCIDR(_ text: String, acceptAddress: Bool, field: String) throws(RegistryError) -> IPv4CIDR {
        do {
            return try IPv4CIDR.parse(text, acceptAddress: acceptAddress)
        } catch {
            switch error {
            case .syntax:
                throw .invalid(
                    .cidrInvalid,
                    acceptAddress ? "not an IPv4 address or CIDR (a.b.c.d or a.b.c.d/n)" : "not an IPv4 CIDR (a.b.c.d/n)",
                    field: field)
            case .hostBitsSet:
                throw .invalid(.cidrHostBitsSet, "the address has bits set beyond the prefix length", field: field)
            }
        }
    }

    static func ingressCIDRs(_ list: [String]) throws(RegistryError) -> [IPv4CIDR] {
        guard list.count <= maxIngressCIDRs else {
            throw .invalid(.tooManyIngressCIDRs, "at most \(maxIngressCIDRs) ingress CIDRs", field: "ingress_cidrs")
        }
        var blocks: [IPv4CIDR] = []
        for (i, text) in list.enumerated() {
            blocks.append(try parseCIDR(text, acceptAddress: true, field: "ingress_cidrs[\(i)]"))
        }
        return blocks
    }

    /// 1-50 mappings, ports 1-65535, TCP, no terminal port twice. Returns them with the protocol normalized.
    static func ports(_ ports: [PortMapping]) throws(RegistryError) -> [PortMapping] {
        guard !ports.isEmpty else {
            throw .invalid(.portMappingsRequired, "at least one port mapping is required", field: "ports")
        }
        guard ports.count <= maxPortMappings else {
            throw .invalid(.tooManyPortMappings, "at most \(maxPortMappings) port mappings", field: "ports")
        }
        var terminalPorts: Set<Int> = []
        var normalized: [PortMapping] = []
        for (i, port) in ports.enumerated() {
            for (value, name) in [(port.terminalPort, "terminal_port"), (port.servicePort, "service_port")]
            where !(1...65535).contains(value) {
                throw .invalid(.portOutOfRange, "\(name) must be 1-65535", field: "ports[\(i)].\(name)")
            }
            guard port.protocol.isEmpty || port.protocol.uppercased() == "TCP" else {
                throw .invalid(.protocolUnsupported, "the only protocol supported is TCP", field: "ports[\(i)].protocol")
            }
            guard terminalPorts.insert(port.terminalPort).inserted else {
                throw .invalid(
                    .portMappingDuplicate, "terminal port \(port.terminalPort) appears twice",
                    field: "ports[\(i)].terminal_port")
            }
            normalized.append(PortMapping(terminalPort: port.terminalPort, servicePort: port.servicePort, protocol: "TCP"))
        }
        return normalized
    }

    /// ≤20 tags; key 1-128 of letters, digits, space and `_ . : = + - @`, no `_sys_` prefix, no leading or
    /// trailing space; value 0-255 of the same plus `/`; keys unique.
    static func tags(_ tags: [Tag]) throws(RegistryError) {
        guard tags.count <= maxTags else {
            throw .invalid(.tooManyTags, "at most \(maxTags) tags", field: "tags")
        }
        var keys: Set<String> = []
        for (i, tag) in tags.enumerated() {
            let key = tag.key
            guard (1...128).contains(key.count), key.allSatisfy({ tagCharacter($0) }), !key.hasPrefix("_sys_"),
                key.first != " ", key.last != " "
            else {
                throw .invalid(
                    .tagInvalid,
                    "a tag key is 1-128 letters, digits, spaces or _ . : = + - @, without a leading or trailing space or the _sys_ prefix",
                    field: "tags[\(i)].key")
            }
            guard tag.value.count <= 255, tag.value.allSatisfy({ tagCharacter($0) || $0 == "/" }) else {
                throw .invalid(
                    .tagInvalid, "a tag value is 0-255 letters, digits, spaces or _ . : = + - @ /",
                    field: "tags[\(i)].value")
            }
            guard keys.insert(key).inserted else {
                throw .invalid(.tagDuplicateKey, "the tag key appears twice", field: "tags[\(i)].key")
            }
        }
    }

    private static func tagCharacter(_ c: Character) -> Bool {
        c.isLetter || c.isWholeNumber || " _.:=+-@".contains(c)
    }

    /// Tenant ids as certificates carry them: 1-64 of `[A-Za-z0-9_-]`.
    static func isTenantID(_ id: some StringProtocol) -> Bool {
        (1...64).contains(id.utf8.count) && onlyASCII(id, alphanumericsAnd: "_-")
    }

    /// 1-100 entries, each `*` or `iam:domain::<tenant-id>` with a valid description, none twice.
    static func permissionEntries(_ entries: [PermissionEntry]) throws(RegistryError) {
        guard !entries.isEmpty else {
            throw .invalid(.permissionsRequired, "give at least one entry", field: "entries")
        }
        guard entries.count <= maxPermissionsPerRequest else {
            throw .invalid(
                .tooManyPermissions, "at most \(maxPermissionsPerRequest) entries per request", field: "entries")
        }
        var seen: Set<String> = []
        for (i, entry) in entries.enumerated() {
            let text = entry.permission
            let valid = text == Permission.everyone
                || (text.hasPrefix(Permission.domainPrefix) && isTenantID(text.dropFirst(Permission.domainPrefix.count)))
            guard valid else {
                throw .invalid(
                    .permissionInvalid, "an entry is \"*\" or \"iam:domain::<tenant-id>\" (1-64 of A-Z, a-z, 0-9, '_', '-')",
                    field: "entries[\(i)].permission")
            }
            guard seen.insert(text).inserted else {
                throw .invalid(.permissionDuplicate, "the entry appears twice", field: "entries[\(i)].permission")
            }
            do {
                try description(entry.description)
            } catch {
                throw .invalid(error.reason, error.message, field: "entries[\(i)].description")
            }
            if let limit = entry.connectionLimit, !(0...maxConnectionLimit).contains(limit) {
                throw .invalid(
                    .connectionLimitOutOfRange, "a connection limit is 0-\(maxConnectionLimit)",
                    field: "entries[\(i)].connection_limit")
            }
            if entry.onExpiry == .reject, entry.expiresAt == nil {
                throw .invalid(
                    .expiryRequired, "on_expiry reject needs an expires_at", field: "entries[\(i)].on_expiry")
            }
        }
    }

    /// Tag filters: at most 10 keys with at most 10 values each; keys non-empty. Returns them unchanged.
    static func tagFilters(_ tags: [Tag]) throws(RegistryError) -> [Tag] {
        var values: [String: Int] = [:]
        for (i, tag) in tags.enumerated() {
            guard (1...128).contains(tag.key.count), tag.value.count <= 255 else {
                throw .invalid(
                    .tagFilterInvalid, "a tag filter needs a key of 1-128 characters and a value of at most 255",
                    field: "tags[\(i)].key")
            }
            values[tag.key, default: 0] += 1
            guard values.count <= maxTagFilterKeys, values[tag.key, default: 0] <= maxTagFilterValues else {
                throw .invalid(
                    .tooManyTagFilters, "at most \(maxTagFilterKeys) keys with \(maxTagFilterValues) values each",
                    field: "tags")
            }
        }
        return tags
    }

    /// An endpoint's whitelist: at most 20 IPv4 addresses or CIDRs, returned canonical (`a.b.c.d/n`).
    static func whitelist(_ list: [String]) throws(RegistryError) -> [String] {
        guard list.count <= maxWhitelist else {
            throw .invalid(.tooManyWhitelistEntries, "at most \(maxWhitelist) whitelist entries", field: "whitelist")
        }
        var result: [String] = []
        for (i, text) in list.enumerated() {
            result.append(try parseCIDR(text, acceptAddress: true, field: "whitelist[\(i)]").description)
        }
        return result
    }

    /// The store's query for `page`. `list` names the list and `filter` describes every filter of the
    /// call (a value's description), so that a page token is honoured only with the query it came from.
    static func page(
        _ page: PageRequest, region: String, ownerID: String?, list: String, filter: Any = ""
    ) throws(RegistryError) -> ListQuery {
        let (limit, offset) = try limitAndOffset(page)
        let sortKey: ListQuery.SortKey
        switch page.sortKey.lowercased() {
        case "", "created_at", "create_at": sortKey = .createdAt
        case "updated_at", "update_at": sortKey = .updatedAt
        default:
            throw .invalid(.sortKeyInvalid, "sort_key must be created_at or updated_at", field: "page.sort_key")
        }
        let ascending = try ascending(page)
        let binding = PageToken.binding([
            list, region, ownerID ?? "*", sortKey.rawValue, ascending ? "asc" : "desc", String(reflecting: filter),
        ])
        var after: ListCursor?
        if !page.pageToken.isEmpty {
            guard page.offset == 0 else {
                throw .invalid(
                    .pageTokenWithOffset, "give either page_token or offset, not both", field: "page.offset")
            }
            after = try PageToken.decode(page.pageToken, binding: binding)
        }
        return ListQuery(
            region: region, ownerID: ownerID, sortKey: sortKey, ascending: ascending, limit: limit,
            offset: offset, after: after, tokenBinding: binding)
    }

    /// The paging of `ListHistory`: as for every list, but ordered by sequence (`sort_key` empty or `seq`).
    static func historyPage(_ page: PageRequest) throws(RegistryError) -> (ascending: Bool, limit: Int, offset: Int) {
        // History pages by offset or by time range (`since`); its order, the sequence, only grows at one end.
        guard page.pageToken.isEmpty else {
            throw .invalid(
                .pageTokenInvalid, "ListHistory takes no page_token; page with offset or since/until",
                field: "page.page_token")
        }
        let (limit, offset) = try limitAndOffset(page)
        guard ["", "seq"].contains(page.sortKey.lowercased()) else {
            throw .invalid(.sortKeyInvalid, "history is ordered by seq; sort_key must be seq or empty", field: "page.sort_key")
        }
        return (try ascending(page), limit, offset)
    }

    private static func limitAndOffset(_ page: PageRequest) throws(RegistryError) -> (limit: Int, offset: Int) {
        guard (0...maxListLimit).contains(page.limit) else {
            throw .invalid(.limitOutOfRange, "limit must be 0-\(maxListLimit) (0 means \(defaultListLimit))", field: "page.limit")
        }
        guard page.offset >= 0 else {
            throw .invalid(.offsetOutOfRange, "offset must not be negative", field: "page.offset")
        }
        return (page.limit == 0 ? defaultListLimit : page.limit, page.offset)
    }

    private static func ascending(_ page: PageRequest) throws(RegistryError) -> Bool {
        switch page.sortDir.lowercased() {
        case "", "desc": return false
        case "asc": return true
        default: throw .invalid(.sortDirInvalid, "sort_dir must be asc or desc", field: "page.sort_dir")
        }
    }
}
