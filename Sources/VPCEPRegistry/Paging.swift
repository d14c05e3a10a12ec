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
    /// The `nextPageToken` of the previous page of the same query; empty for the first page.
    public var pageToken: String

    public init(limit: Int = 0, offset: Int = 0, sortKey: String = "", sortDir: String = "", pageToken: String = "") {
        self.limit = limit
        self.offset = offset
        self.sortKey = sortKey
        self.sortDir = sortDir
        self.pageToken = pageToken
    }
}

/// A position in a list's order: the sort column's value (milliseconds) and the id of the last row
/// of a page. The next page starts strictly after it, so rows inserted or deleted elsewhere in the
/// order move no row that stayed across a page boundary (keyset paging).
public struct ListCursor: Sendable, Hashable, Codable {
    public var sortValue: Int64
    public var id: String

    public init(sortValue: Int64, id: String) {
        self.sortValue = sortValue
        self.id = id
    }
}

/// One page of a list, and how many items match in total regardless of paging.
public struct ListResult<T: Sendable>: Sendable {
    public var items: [T]
    public var totalCount: Int
    /// Set by the store: where the page's last row stands, when more rows follow it; `nil` on the last page.
    public var next: ListCursor?
    /// Set by the registry from `next`: the token that asks for the following page; empty on the last page.
    public var nextPageToken: String

    public init(items: [T], totalCount: Int, next: ListCursor? = nil, nextPageToken: String = "") {
        self.items = items
        self.totalCount = totalCount
        self.next = next
        self.nextPageToken = nextPageToken
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
    /// Only rows strictly after this position in the query's order (a page token's); `totalCount`
    /// still counts every match.
    public var after: ListCursor?
    /// What a page token of this query is bound to (the list, scope, filters and order), for the
    /// registry; stores ignore it.
    public var tokenBinding: String

    public init(
        region: String, ownerID: String?, sortKey: SortKey, ascending: Bool, limit: Int, offset: Int,
        after: ListCursor? = nil, tokenBinding: String = ""
    ) {
        self.region = region
        self.ownerID = ownerID
        self.sortKey = sortKey
        self.ascending = ascending
        self.limit = limit
        self.offset = offset
        self.after = after
        self.tokenBinding = tokenBinding
    }
}
