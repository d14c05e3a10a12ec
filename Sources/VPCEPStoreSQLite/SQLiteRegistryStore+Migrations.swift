internal import SQLiteNIO
import VPCEPRegistry

/// Versioned schema migrations, run at open. `PRAGMA user_version` records how many have been applied;
/// each runs, with the version bump, in one transaction. Append new migrations; never edit applied ones.
extension SQLiteRegistryStore {
    /// Migration `i` (0-based) takes the schema from version `i` to `i + 1`. One statement per string.
    static let migrations: [[String]] = [
        // 1: the walking skeleton. Times are milliseconds since 1970 (UTC); lists are JSON arrays.
        [
            """
            CREATE TABLE vpcs (
                id TEXT PRIMARY KEY,
                region TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                name TEXT NOT NULL,
                cidr TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX vpcs_by_owner ON vpcs (region, owner_id)",
            """
            CREATE TABLE subnets (
                id TEXT PRIMARY KEY,
                vpc_id TEXT NOT NULL REFERENCES vpcs (id),
                region TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                name TEXT NOT NULL,
                cidr TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX subnets_by_vpc ON subnets (vpc_id)",
            "CREATE INDEX subnets_by_owner ON subnets (region, owner_id)",
            """
            CREATE TABLE backends (
                id TEXT PRIMARY KEY,
                kind TEXT NOT NULL CHECK (kind IN ('load_balancer', 'vm')),
                vpc_id TEXT NOT NULL REFERENCES vpcs (id),
                subnet_id TEXT NOT NULL REFERENCES subnets (id),
                region TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                name TEXT NOT NULL,
                ip TEXT NOT NULL,
                ingress_cidrs TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX backends_by_owner ON backends (region, owner_id, kind)",
            "CREATE INDEX backends_by_subnet ON backends (subnet_id)",
            // Every address taken in a subnet, whoever holds it (backends now, endpoints later).
            """
            CREATE TABLE ip_allocations (
                subnet_id TEXT NOT NULL REFERENCES subnets (id),
                ip TEXT NOT NULL,
                holder_id TEXT NOT NULL,
                PRIMARY KEY (subnet_id, ip)
            ) STRICT, WITHOUT ROWID
            """,
            """
            CREATE TABLE endpoint_services (
                id TEXT PRIMARY KEY,
                service_name TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                region TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                vpc_id TEXT NOT NULL REFERENCES vpcs (id),
                service_type TEXT NOT NULL,
                backend_kind TEXT NOT NULL,
                backend_id TEXT NOT NULL REFERENCES backends (id),
                ports TEXT NOT NULL,
                approval_enabled INTEGER NOT NULL,
                client_ip_mode TEXT NOT NULL,
                description TEXT NOT NULL,
                tags TEXT NOT NULL,
                status TEXT NOT NULL,
                connection_count INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                revision INTEGER NOT NULL,
                warnings TEXT NOT NULL
            ) STRICT
            """,
            "CREATE INDEX endpoint_services_by_owner ON endpoint_services (region, owner_id)",
            "CREATE INDEX endpoint_services_by_backend ON endpoint_services (backend_id)",
            // Operator overrides of the default quotas, per owner and region.
            """
            CREATE TABLE quota_limits (
                owner_id TEXT NOT NULL,
                region TEXT NOT NULL,
                type TEXT NOT NULL,
                quota_limit INTEGER NOT NULL,
                PRIMARY KEY (owner_id, region, type)
            ) STRICT, WITHOUT ROWID
            """,
        ],
        // 2: public services, allow-lists, endpoints. `connection_count` is computed from the endpoints on
        // every read from now on (always exact), so its stored column goes.
        [
            "ALTER TABLE endpoint_services ADD COLUMN is_public INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE endpoint_services DROP COLUMN connection_count",
            "CREATE INDEX endpoint_services_public ON endpoint_services (region, is_public)",
            """
            CREATE TABLE permissions (
                id TEXT PRIMARY KEY,
                service_id TEXT NOT NULL REFERENCES endpoint_services (id) ON DELETE CASCADE,
                region TEXT NOT NULL,
                permission TEXT NOT NULL,
                permission_type TEXT NOT NULL,
                description TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL,
                UNIQUE (service_id, permission)
            ) STRICT
            """,
            // No foreign key to the service: an endpoint outlives a deleted service (as `failed` or `rejected`).
            """
            CREATE TABLE endpoints (
                id TEXT PRIMARY KEY,
                region TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                vpc_id TEXT NOT NULL REFERENCES vpcs (id),
                subnet_id TEXT NOT NULL REFERENCES subnets (id),
                service_id TEXT NOT NULL,
                service_name TEXT NOT NULL,
                service_type TEXT NOT NULL,
                ip TEXT NOT NULL,
                status TEXT NOT NULL,
                marker_id INTEGER NOT NULL UNIQUE,
                dns_name TEXT NOT NULL,
                whitelist TEXT NOT NULL,
                enable_whitelist INTEGER NOT NULL,
                description TEXT NOT NULL,
                tags TEXT NOT NULL,
                connection_description TEXT NOT NULL,
                decided_by TEXT NOT NULL,
                decided_at INTEGER,
                ever_accepted INTEGER NOT NULL,
                created_at INTEGER NOT NULL,
                updated_at INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX endpoints_by_owner ON endpoints (region, owner_id)",
            "CREATE INDEX endpoints_by_service ON endpoints (service_id, status)",
            "CREATE INDEX endpoints_by_vpc ON endpoints (vpc_id)",
            "CREATE INDEX endpoints_by_subnet ON endpoints (subnet_id)",
            // Counters that never go back (marker ids are never reused).
            """
            CREATE TABLE sequences (
                name TEXT PRIMARY KEY,
                value INTEGER NOT NULL
            ) STRICT, WITHOUT ROWID
            """,
            "INSERT INTO sequences (name, value) VALUES ('marker_id', 0)",
        ],
        // 3: idempotency keys. One row per (owner, region, key): the first successful outcome, until it expires.
        [
            """
            CREATE TABLE idempotency_records (
                owner_id TEXT NOT NULL,
                region TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                method TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                result TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER NOT NULL,
                PRIMARY KEY (owner_id, region, idempotency_key)
            ) STRICT
            """,
            "CREATE INDEX idempotency_records_by_expiry ON idempotency_records (expires_at)",
        ],
        // 4: the change log (docs/DOMAIN.md, "Change log"). `log_head` is one row holding the last sequence
        // given out; a transaction moves it on by the number of events it appends, so numbers are taken
        // under the write lock, in commit order, and a rollback returns them. `seq` is supplied, never
        // chosen by SQLite (no AUTOINCREMENT).
        [
            """
            CREATE TABLE log_head (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                seq INTEGER NOT NULL
            ) STRICT
            """,
            "INSERT INTO log_head (id, seq) VALUES (1, 0)",
            """
            CREATE TABLE change_events (
                seq INTEGER PRIMARY KEY,
                region TEXT NOT NULL,
                kind TEXT NOT NULL,
                resource_id TEXT NOT NULL,
                type TEXT NOT NULL,
                state TEXT NOT NULL,
                previous TEXT,
                revision_before INTEGER,
                revision_after INTEGER,
                actor TEXT NOT NULL,
                request_id TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                committed_at INTEGER NOT NULL,
                owner_id TEXT NOT NULL,
                provider_id TEXT,
                service_id TEXT,
                provider_sees INTEGER NOT NULL
            ) STRICT
            """,
            "CREATE INDEX change_events_by_resource ON change_events (resource_id, seq)",
            "CREATE INDEX change_events_by_owner ON change_events (region, owner_id, seq)",
            "CREATE INDEX change_events_by_provider ON change_events (region, provider_id, seq) WHERE provider_sees = 1",
            "CREATE INDEX change_events_by_service ON change_events (service_id, seq)",
            "CREATE INDEX change_events_by_time ON change_events (region, committed_at)",
        ],
        // 5: how far retention removed the change log, so a resume from before it is told so.
        [
            """
            CREATE TABLE log_compaction (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                seq INTEGER NOT NULL
            ) STRICT
            """,
            "INSERT INTO log_compaction (id, seq) VALUES (1, 0)",
        ],
        // 6: messages both ways on a connection (docs/DOMAIN.md, "Messages"): the consumer's request message
        // and the last decision's reason. Suspended endpoints need no schema change (status is text).
        [
            "ALTER TABLE endpoints ADD COLUMN request_message TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE endpoints ADD COLUMN decision_reason TEXT NOT NULL DEFAULT ''",
        ],
        // 7 (issue 13, tags and pages): endpoints get a revision, for tag changes' revision checks;
        // existing endpoints start at 1, as new ones do.
        [
            "ALTER TABLE endpoints ADD COLUMN revision INTEGER NOT NULL DEFAULT 1",
        ],
        // 8: access policies on allow-list entries (issue 13): decision, connection limit, expiry; existing
        // entries keep today's meaning (manual, no limit, never expire). The partial index is the sweep's.
        [
            "ALTER TABLE permissions ADD COLUMN decision TEXT NOT NULL DEFAULT 'manual'",
            "ALTER TABLE permissions ADD COLUMN connection_limit INTEGER",
            "ALTER TABLE permissions ADD COLUMN expires_at INTEGER",
            "ALTER TABLE permissions ADD COLUMN on_expiry TEXT NOT NULL DEFAULT 'keep'",
            "ALTER TABLE permissions ADD COLUMN expiry_handled INTEGER NOT NULL DEFAULT 0",
            """
            CREATE INDEX permissions_expiry_due ON permissions (expires_at)
            WHERE on_expiry = 'reject' AND expiry_handled = 0
            """,
        ],
        // 9 (issue 14, lists that read a page): indexes that serve a list's filter and order together, so a
        // page (first or by token) is an index range of ~a page of rows, never a scan and sort of the region.
        // Per table: region-wide and per owner, by created_at (the default order) and by updated_at, and
        // the status filter (region-wide and per owner) by created_at; each serves both directions, ties
        // by id. The owner indexes replace `(region, owner_id)`, whose prefix they keep. Six per table is
        // the deliberate budget: a create writes all six, an update moves the two updated_at entries (and
        // the two status ones when the status changes). Status by updated_at gets none: it walks the
        // updated_at index in order and filters, without a sort, reading rows until a page matches.
        [
            "DROP INDEX endpoints_by_owner",
            "CREATE INDEX endpoints_by_owner_created ON endpoints (region, owner_id, created_at, id)",
            "CREATE INDEX endpoints_by_created ON endpoints (region, created_at, id)",
            "CREATE INDEX endpoints_by_status_created ON endpoints (region, status, created_at, id)",
            "CREATE INDEX endpoints_by_owner_status_created ON endpoints (region, owner_id, status, created_at, id)",
            "CREATE INDEX endpoints_by_updated ON endpoints (region, updated_at, id)",
            "CREATE INDEX endpoints_by_owner_updated ON endpoints (region, owner_id, updated_at, id)",
            "DROP INDEX endpoint_services_by_owner",
            "CREATE INDEX endpoint_services_by_owner_created ON endpoint_services (region, owner_id, created_at, id)",
            "CREATE INDEX endpoint_services_by_created ON endpoint_services (region, created_at, id)",
            "CREATE INDEX endpoint_services_by_status_created ON endpoint_services (region, status, created_at, id)",
            "CREATE INDEX endpoint_services_by_owner_status_created ON endpoint_services (region, owner_id, status, created_at, id)",
            "CREATE INDEX endpoint_services_by_updated ON endpoint_services (region, updated_at, id)",
            "CREATE INDEX endpoint_services_by_owner_updated ON endpoint_services (region, owner_id, updated_at, id)",
            // Tags in their own tables, one row per (resource, key, value), with the resource's region, owner and
            // created_at copied in so that a `key=value` filter in the default order is a range of
            // `…_page`. Triggers keep them in step with the JSON column (which the decode still reads) on
            // every insert, update and delete, whatever the code path; an update that leaves the tags, region,
            // owner and created_at alone does not touch them.
            """
            CREATE TABLE endpoint_tags (
                resource_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                resource_region TEXT NOT NULL,
                resource_owner_id TEXT NOT NULL,
                resource_created_at INTEGER NOT NULL,
                PRIMARY KEY (resource_id, key, value)
            ) STRICT, WITHOUT ROWID
            """,
            "CREATE INDEX endpoint_tags_page ON endpoint_tags (resource_region, key, value, resource_created_at, resource_id)",
            """
            INSERT OR IGNORE INTO endpoint_tags
            SELECT r.id, json_extract(t.value, '$.key'), json_extract(t.value, '$.value'), r.region, r.owner_id,
                r.created_at
            FROM endpoints AS r, json_each(r.tags) AS t
            """,
            """
            CREATE TRIGGER endpoint_tags_insert AFTER INSERT ON endpoints BEGIN
                INSERT OR IGNORE INTO endpoint_tags
                SELECT new.id, json_extract(t.value, '$.key'), json_extract(t.value, '$.value'), new.region,
                    new.owner_id, new.created_at
                FROM json_each(new.tags) AS t;
            END
            """,
            """
            CREATE TRIGGER endpoint_tags_update AFTER UPDATE OF tags, region, owner_id, created_at ON endpoints
            WHEN old.tags IS NOT new.tags OR old.region IS NOT new.region OR old.owner_id IS NOT new.owner_id
                OR old.created_at IS NOT new.created_at
            BEGIN
                DELETE FROM endpoint_tags WHERE resource_id = old.id;
                INSERT OR IGNORE INTO endpoint_tags
                SELECT new.id, json_extract(t.value, '$.key'), json_extract(t.value, '$.value'), new.region,
                    new.owner_id, new.created_at
                FROM json_each(new.tags) AS t;
            END
            """,
            """
            CREATE TRIGGER endpoint_tags_delete AFTER DELETE ON endpoints BEGIN
                DELETE FROM endpoint_tags WHERE resource_id = old.id;
            END
            """,
            """
            CREATE TABLE endpoint_service_tags (
                resource_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                resource_region TEXT NOT NULL,
                resource_owner_id TEXT NOT NULL,
                resource_created_at INTEGER NOT NULL,
                PRIMARY KEY (resource_id, key, value)
            ) STRICT, WITHOUT ROWID
            """,
            "CREATE INDEX endpoint_service_tags_page ON endpoint_service_tags (resource_region, key, value, resource_created_at, resource_id)",
            """
            INSERT OR IGNORE INTO endpoint_service_tags
            SELECT r.id, json_extract(t.value, '$.key'), json_extract(t.value, '$.value'), r.region, r.owner_id,
                r.created_at
            FROM endpoint_services AS r, json_each(r.tags) AS t
            """,
            """
            CREATE TRIGGER endpoint_service_tags_insert AFTER INSERT ON endpoint_services BEGIN
                INSERT OR IGNORE INTO endpoint_service_tags
                SELECT new.id, json_extract(t.value, '$.key'), json_extract(t.value, '$.value'), new.region,
                    new.owner_id, new.created_at
                FROM json_each(new.tags) AS t;
            END
            """,
            """
            CREATE TRIGGER endpoint_service_tags_update AFTER UPDATE OF tags, region, owner_id, created_at ON endpoint_services
            WHEN old.tags IS NOT new.tags OR old.region IS NOT new.region OR old.owner_id IS NOT new.owner_id
                OR old.created_at IS NOT new.created_at
            BEGIN
                DELETE FROM endpoint_service_tags WHERE resource_id = old.id;
                INSERT OR IGNORE INTO endpoint_service_tags
                SELECT new.id, json_extract(t.value, '$.key'), json_extract(t.value, '$.value'), new.region,
                    new.owner_id, new.created_at
                FROM json_each(new.tags) AS t;
            END
            """,
            """
            CREATE TRIGGER endpoint_service_tags_delete AFTER DELETE ON endpoint_services BEGIN
                DELETE FROM endpoint_service_tags WHERE resource_id = old.id;
            END
            """,
            // `total_count` of the common shapes without counting: how many rows of a listed table there are per
            // region (owner_id '') and per owner, in all, per status and per tag key=value, kept exact by
            // triggers on every insert, delete and status change (the tag tables' rows come and go with the
            // tags). Counting the matches' index entries instead costs ~12-35 ms at 200,000-250,000 matches
            // (1,000,000 records); a create pays four upserts plus two per tag, on rows that stay cached.
            """
            CREATE TABLE list_counts (
                tbl TEXT NOT NULL,
                region TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                dim TEXT NOT NULL,
                k TEXT NOT NULL,
                v TEXT NOT NULL,
                n INTEGER NOT NULL,
                PRIMARY KEY (tbl, region, owner_id, dim, k, v)
            ) STRICT, WITHOUT ROWID
            """,
            """
            INSERT INTO list_counts
            SELECT 'endpoints', region, '', 'all', '', '', count(*) FROM endpoints GROUP BY region
            UNION ALL SELECT 'endpoints', region, owner_id, 'all', '', '', count(*) FROM endpoints GROUP BY region, owner_id
            UNION ALL SELECT 'endpoints', region, '', 'status', status, '', count(*) FROM endpoints GROUP BY region, status
            UNION ALL SELECT 'endpoints', region, owner_id, 'status', status, '', count(*) FROM endpoints
                GROUP BY region, owner_id, status
            UNION ALL SELECT 'endpoints', resource_region, '', 'tag', key, value, count(*) FROM endpoint_tags
                GROUP BY resource_region, key, value
            UNION ALL SELECT 'endpoints', resource_region, resource_owner_id, 'tag', key, value, count(*) FROM endpoint_tags
                GROUP BY resource_region, resource_owner_id, key, value
            """,
            """
            CREATE TRIGGER endpoints_count_insert AFTER INSERT ON endpoints BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoints', new.region, '', 'all', '', '', 1), ('endpoints', new.region, new.owner_id, 'all', '', '', 1),
                    ('endpoints', new.region, '', 'status', new.status, '', 1),
                    ('endpoints', new.region, new.owner_id, 'status', new.status, '', 1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
            """
            CREATE TRIGGER endpoints_count_delete AFTER DELETE ON endpoints BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoints', old.region, '', 'all', '', '', -1), ('endpoints', old.region, old.owner_id, 'all', '', '', -1),
                    ('endpoints', old.region, '', 'status', old.status, '', -1),
                    ('endpoints', old.region, old.owner_id, 'status', old.status, '', -1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
            """
            CREATE TRIGGER endpoints_count_update AFTER UPDATE OF region, owner_id, status ON endpoints
            WHEN old.region IS NOT new.region OR old.owner_id IS NOT new.owner_id OR old.status IS NOT new.status
            BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoints', old.region, '', 'all', '', '', -1), ('endpoints', old.region, old.owner_id, 'all', '', '', -1),
                    ('endpoints', old.region, '', 'status', old.status, '', -1),
                    ('endpoints', old.region, old.owner_id, 'status', old.status, '', -1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoints', new.region, '', 'all', '', '', 1), ('endpoints', new.region, new.owner_id, 'all', '', '', 1),
                    ('endpoints', new.region, '', 'status', new.status, '', 1),
                    ('endpoints', new.region, new.owner_id, 'status', new.status, '', 1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
            """
            CREATE TRIGGER endpoint_tags_count_insert AFTER INSERT ON endpoint_tags BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoints', new.resource_region, '', 'tag', new.key, new.value, 1),
                    ('endpoints', new.resource_region, new.resource_owner_id, 'tag', new.key, new.value, 1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
            """
            CREATE TRIGGER endpoint_tags_count_delete AFTER DELETE ON endpoint_tags BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoints', old.resource_region, '', 'tag', old.key, old.value, -1),
                    ('endpoints', old.resource_region, old.resource_owner_id, 'tag', old.key, old.value, -1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
            """
            INSERT INTO list_counts
            SELECT 'endpoint_services', region, '', 'all', '', '', count(*) FROM endpoint_services GROUP BY region
            UNION ALL SELECT 'endpoint_services', region, owner_id, 'all', '', '', count(*) FROM endpoint_services GROUP BY region, owner_id
            UNION ALL SELECT 'endpoint_services', region, '', 'status', status, '', count(*) FROM endpoint_services GROUP BY region, status
            UNION ALL SELECT 'endpoint_services', region, owner_id, 'status', status, '', count(*) FROM endpoint_services
                GROUP BY region, owner_id, status
            UNION ALL SELECT 'endpoint_services', resource_region, '', 'tag', key, value, count(*) FROM endpoint_service_tags
                GROUP BY resource_region, key, value
            UNION ALL SELECT 'endpoint_services', resource_region, resource_owner_id, 'tag', key, value, count(*) FROM endpoint_service_tags
                GROUP BY resource_region, resource_owner_id, key, value
            """,
            """
            CREATE TRIGGER endpoint_services_count_insert AFTER INSERT ON endpoint_services BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoint_services', new.region, '', 'all', '', '', 1), ('endpoint_services', new.region, new.owner_id, 'all', '', '', 1),
                    ('endpoint_services', new.region, '', 'status', new.status, '', 1),
                    ('endpoint_services', new.region, new.owner_id, 'status', new.status, '', 1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
            """
            CREATE TRIGGER endpoint_services_count_delete AFTER DELETE ON endpoint_services BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoint_services', old.region, '', 'all', '', '', -1), ('endpoint_services', old.region, old.owner_id, 'all', '', '', -1),
                    ('endpoint_services', old.region, '', 'status', old.status, '', -1),
                    ('endpoint_services', old.region, old.owner_id, 'status', old.status, '', -1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
            """
            CREATE TRIGGER endpoint_services_count_update AFTER UPDATE OF region, owner_id, status ON endpoint_services
            WHEN old.region IS NOT new.region OR old.owner_id IS NOT new.owner_id OR old.status IS NOT new.status
            BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoint_services', old.region, '', 'all', '', '', -1), ('endpoint_services', old.region, old.owner_id, 'all', '', '', -1),
                    ('endpoint_services', old.region, '', 'status', old.status, '', -1),
                    ('endpoint_services', old.region, old.owner_id, 'status', old.status, '', -1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoint_services', new.region, '', 'all', '', '', 1), ('endpoint_services', new.region, new.owner_id, 'all', '', '', 1),
                    ('endpoint_services', new.region, '', 'status', new.status, '', 1),
                    ('endpoint_services', new.region, new.owner_id, 'status', new.status, '', 1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
            """
            CREATE TRIGGER endpoint_service_tags_count_insert AFTER INSERT ON endpoint_service_tags BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoint_services', new.resource_region, '', 'tag', new.key, new.value, 1),
                    ('endpoint_services', new.resource_region, new.resource_owner_id, 'tag', new.key, new.value, 1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
            """
            CREATE TRIGGER endpoint_service_tags_count_delete AFTER DELETE ON endpoint_service_tags BEGIN
                INSERT INTO list_counts (tbl, region, owner_id, dim, k, v, n) VALUES
                    ('endpoint_services', old.resource_region, '', 'tag', old.key, old.value, -1),
                    ('endpoint_services', old.resource_region, old.resource_owner_id, 'tag', old.key, old.value, -1)
                ON CONFLICT (tbl, region, owner_id, dim, k, v) DO UPDATE SET n = n + excluded.n;
            END
            """,
        ],
        // 10 (issue 14, fewer pages per write): no change-log index entry that another index already finds.
        // A service's own events have `service_id = resource_id`, so `change_events_by_resource` finds
        // them; an event whose provider is its owner (a service's, an allow-list's, an endpoint on its own
        // tenant's service) is the owner's, found by `change_events_by_owner`. The queries say so
        // (`listEvents`, `eventVisibility`). Those entries were two of the ~8 pages a service update wrote
        // at 100,000 records, each a random leaf (BENCHMARKS.md, "The change log's redundant index entries").
        [
            "DROP INDEX change_events_by_provider",
            """
            CREATE INDEX change_events_by_provider ON change_events (region, provider_id, seq)
            WHERE provider_sees = 1 AND provider_id != owner_id
            """,
            "DROP INDEX change_events_by_service",
            "CREATE INDEX change_events_by_service ON change_events (service_id, seq) WHERE service_id != resource_id",
        ],
    ]

    /// The schema version this build writes.
    public static var schemaVersion: Int { migrations.count }

    /// Brings the schema up to `schemaVersion`; refuses a database written by a newer build.
    static func migrate(_ connection: StoreConnection) async throws {
        try await connection.execute("BEGIN IMMEDIATE")
        do {
            let version = try await connection.query("PRAGMA user_version").first?.column("user_version")?.integer ?? 0
            guard version <= schemaVersion else {
                throw StoreError(
                    code: .internalError,
                    message: "the database schema is version \(version), newer than this build's \(schemaVersion)")
            }
            for migration in migrations[Int(version)...] {
                for statement in migration {
                    try await connection.execute(statement)
                }
            }
            if version < schemaVersion {
                try await connection.execute("PRAGMA user_version = \(schemaVersion)")
            }
            try await connection.execute("COMMIT")
        } catch {
            try? await connection.execute("ROLLBACK")
            throw error
        }
    }
}
