/// Which records a caller may learn exist: a record is visible when it is in `region` and at least one
/// grant admits it. The registry states its rules once, as values of this type (`Scope.reading`,
/// `Scope.consumerLookup`, `Scope.connecting`); it checks them in memory, and a store applies the same
/// value in its look-up, so that a record the caller may not see is never read: not visible and not
/// there are one answer and one amount of work.
public struct Visibility: Sendable, Hashable {
    public enum Grant: Sendable, Hashable {
        /// Every owner's records (operators).
        case anyOwner
        /// Records owned by this owner key.
        case owner(String)
        /// Endpoint services that are public. Only services have this.
        case publicService
        /// Endpoint services whose allow-list holds one of these entries. Only services have this.
        case allowListEntry(oneOf: [String])
    }

    public let region: String
    /// Any one admits; none admits nothing.
    public let grants: [Grant]

    public init(region: String, grants: [Grant]) {
        self.region = region
        self.grants = grants
    }

    /// Whether a record with these facts is visible. `isPublic` and `allowList` (entries' permission
    /// strings) are a service's; other records have neither.
    public func admits(region: String, ownerID: String, isPublic: Bool = false, allowList: [String] = []) -> Bool {
        guard same(region, self.region) else { return false }
        return grants.contains { grant in
            switch grant {
            case .anyOwner: true
            case .owner(let owner): same(ownerID, owner)
            case .publicService: isPublic
            case .allowListEntry(let entries): allowList.contains { entry in entries.contains { same(entry, $0) } }
            }
        }
    }

    /// Byte equality, as a store compares text: Swift's `==` would also equate canonically equivalent
    /// spellings, which no store query does, and then memory and store would disagree.
    private func same(_ a: String, _ b: String) -> Bool {
        a.utf8.elementsEqual(b.utf8)
    }

    /// Whether the grants depend on a service's allow-list, which the record alone does not carry.
    public var needsAllowList: Bool {
        grants.contains { if case .allowListEntry = $0 { true } else { false } }
    }
}

extension Scope {
    /// Get, list, change: the caller's own records in the region, or every owner's for operators.
    var reading: Visibility {
        Visibility(region: region, grants: [isOperator ? .anyOwner : .owner(ownerID)])
    }

    /// The allow-list entries that admit this caller: everyone's, and its own tenant's.
    var admittingEntries: Visibility.Grant {
        .allowListEntry(oneOf: [Permission.everyone, Permission.domain(ownerID)])
    }

    /// Creating an endpoint to a service: its owner, or a caller its allow-list admits.
    var connecting: Visibility {
        Visibility(region: region, grants: [.owner(ownerID), admittingEntries])
    }

    /// DescribeEndpointService and CreateEndpoint: who may learn that a service exists. Those who may read
    /// it, everyone for a public service, and those who may connect to it. (For operators `anyOwner`
    /// already admits every service in the region.)
    var consumerLookup: Visibility {
        isOperator
            ? reading
            : Visibility(region: region, grants: [.owner(ownerID), .publicService, admittingEntries])
    }
}
