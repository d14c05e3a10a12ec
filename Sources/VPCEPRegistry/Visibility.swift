/// Which records a caller may learn exist: a record is visible when it is in `region` and at least one
/// grant admits it. The registry states its rules once, as values of this type (`Scope.reading`,
/// `Scope.owning`, `Scope.consumerLookup`, `Scope.connecting`, `Visibility.provider(of:)`,
/// `Visibility.anyOwner(in:)`); it checks them in memory, and a store applies the same value in its
/// look-up, so that a record the caller may not see is never read: not visible and not there are one
/// answer and one amount of work.
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
        /// Endpoints that connect to the service with this id, whoever owns them: its provider's view.
        /// Only endpoints have this.
        case endpointOfService(String)
    }

    public let region: String
    /// Any one admits; none admits nothing.
    public let grants: [Grant]

    public init(region: String, grants: [Grant]) {
        self.region = region
        self.grants = grants
    }

    /// Every owner's records in `region`. Operators read with it (`Scope.reading`); the registry also
    /// uses it for its own bookkeeping that answers no caller with the record (the owner of the service
    /// an endpoint connects to, stamped on the endpoint's events). Named so that such a look-up is never
    /// an unscoped one by accident.
    public static func anyOwner(in region: String) -> Visibility {
        Visibility(region: region, grants: [.anyOwner])
    }

    /// A provider's view of the endpoints on its service: those connecting to `service`, in its region,
    /// of any owner. For the provider's decisions on connections, after it was found to own the service.
    public static func provider(of service: EndpointService) -> Visibility {
        Visibility(region: service.region, grants: [.endpointOfService(service.id)])
    }

    /// Whether a record with these facts is visible. `isPublic` and `allowList` (entries' permission
    /// strings) are a service's, `serviceID` (the service it connects to) an endpoint's; other records
    /// have none of them.
    public func admits(
        region: String, ownerID: String, isPublic: Bool = false, allowList: [String] = [], serviceID: String? = nil
    ) -> Bool {
        guard same(region, self.region) else { return false }
        return grants.contains { grant in
            switch grant {
            case .anyOwner: true
            case .owner(let owner): same(ownerID, owner)
            case .publicService: isPublic
            case .allowListEntry(let entries): allowList.contains { entry in entries.contains { same(entry, $0) } }
            case .endpointOfService(let id): serviceID.map { same($0, id) } ?? false
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
        isOperator ? .anyOwner(in: region) : owning
    }

    /// Building on a resource (a subnet in a VPC, a service on a backend), or the caller's own records
    /// only: operators too see just their own.
    var owning: Visibility {
        Visibility(region: region, grants: [.owner(ownerID)])
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
