/// One table of a store, column by column, as it is stored: what `vpcep-server migrate-store` carries
/// from one store to another. Both stores keep the same tables with the same encodings (times in
/// milliseconds since 1970, flags 0/1, lists as JSON text), so a row needs no translation.
public struct StoredTable: Sendable {
    public enum Value: Sendable, Equatable {
        case text(String)
        case integer(Int64)
        case null
    }

    public var name: String
    public var columns: [String]
    public var rows: [[Value]]

    public init(name: String, columns: [String], rows: [[Value]]) {
        self.name = name
        self.columns = columns
        self.rows = rows
    }

    /// Every table of the registry, parents before the tables whose foreign keys point at them.
    /// `sequences`, `log_head` and `log_compaction` hold one row per counter; a new store already
    /// has them, at zero. The tag tables (`endpoint_tags`, `endpoint_service_tags`) are not copied: each
    /// store's triggers derive them from the `tags` columns as the rows are inserted.
    public static let registryTables = [
        "vpcs", "subnets", "backends", "ip_allocations", "endpoint_services", "quota_limits", "permissions", "endpoints",
        "sequences", "idempotency_records", "log_head", "change_events", "log_compaction",
    ]

    /// The tables a new store creates with their rows in place.
    public static let counterTables: Set<String> = ["sequences", "log_head", "log_compaction"]
}
