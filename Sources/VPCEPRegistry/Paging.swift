/// Paging and ordering of a list call, as the caller sent it (validated by the registry).
public struct PageRequest: Sendable, Hashable {
    /// 0 means the default (10); at most 1000.
    public var limit: Int
    public var offset: Int
    /// `created_at` (default) or `updated_at`; `create_at`/`update_at` are accepted too (docs/DOMAIN.md,
    /// "Lists").
    public var sortKey: String
    /// `desc` (default) or `asc`.
    public var sortDir: String

    public init(limit: Int = 0, offset: Int = 0, sortKey: String = "", sortDir: String = "") {
        self.limit = limit
        self.offset = offset
        self.sortKey = sortKey
        self.sortDir = sortDir
    }
}

/// One page of a list, and how many items match in total regardless of paging.
public struct ListResult<T: Sendable>: Sendable {
    public var items: [T]
    public var totalCount: Int

    public init(items: [T], totalCount: Int) {
        self.items = items
        self.totalCount = totalCount
    }
}

extension ListResult: Equatable where T: Equatable {}
extension ListResult: Hashable where T: Hashable {}

/// A validated list request as the store sees it: scope, order and page.
public struct ListQuery: Sendable, Hashable {
    public enum SortKey: String, Sendable, Hashable {
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    public var region: String
    /// Only this owner's resources; `nil` for every owner (operators).
    public var ownerID: String?
    public var sortKey: SortKey
    /// Ties are broken by id in the same direction.
    public var ascending: Bool
    public var limit: Int
    public var offset: Int

    public init(region: String, ownerID: String?, sortKey: SortKey, ascending: Bool, limit: Int, offset: Int) {
        self.region = region
        self.ownerID = ownerID
        self.sortKey = sortKey
        self.ascending = ascending
        self.limit = limit
        self.offset = offset
    }
}
