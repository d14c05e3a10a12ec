import Foundation

/// A read of the change log as the store sees it: whose view (`viewer`, applied in the query with the
/// same rule as `ChangeEvent.view(for:)`), which events, in which order, which page. Ordered by `seq`.
public struct EventQuery: Sendable, Hashable {
    public var viewer: EventViewer
    /// Only this resource's events.
    public var resourceID: String?
    /// Only events committed at or after `since` and before `until`.
    public var since: Date?
    public var until: Date?
    /// Only events after this sequence (a watch resuming; 0 for all).
    public var afterSeq: UInt64
    /// Only these kinds, these types; empty means every one.
    public var kinds: Set<ResourceKind>
    public var types: Set<ChangeType>
    /// Only events concerning this service (its own, its allow-list's, its connections').
    public var serviceID: String?
    public var ascending: Bool
    public var limit: Int
    public var offset: Int
    /// Whether the store counts every match for `totalCount` (a list shows it; a watch paging through
    /// the log does not need it, and counting a long tail again for every page would cost more than
    /// the page).
    public var countsTotal = true

    public init(
        viewer: EventViewer, resourceID: String? = nil, since: Date? = nil, until: Date? = nil, afterSeq: UInt64 = 0,
        kinds: Set<ResourceKind> = [], types: Set<ChangeType> = [], serviceID: String? = nil, ascending: Bool = true,
        limit: Int, offset: Int = 0
    ) {
        self.viewer = viewer
        self.resourceID = resourceID
        self.since = since
        self.until = until
        self.afterSeq = afterSeq
        self.kinds = kinds
        self.types = types
        self.serviceID = serviceID
        self.ascending = ascending
        self.limit = limit
        self.offset = offset
    }

    /// Whether `event` matches every filter but the paging; the store's query applies the same rules.
    /// The view comes last: it compares the most strings, and the change feed tests every distinct
    /// watch query against each new event, where a filter by resource or service rejects nearly all.
    public func matches(_ event: ChangeEvent) -> Bool {
        guard event.seq > afterSeq else { return false }
        if let resourceID, event.resourceID != resourceID { return false }
        if let serviceID, event.serviceID != serviceID { return false }
        if !kinds.isEmpty, !kinds.contains(event.kind) { return false }
        if !types.isEmpty, !types.contains(event.type) { return false }
        if let since, event.committedAt < since { return false }
        if let until, event.committedAt >= until { return false }
        return event.view(for: viewer) != nil
    }
}
