import Logging
import PostgresNIO
import VPCEPRegistry

/// Versioned schema migrations, run at open. `vpcep_schema` records how many have been applied; all
/// pending ones run, with the version bump, in one transaction that first takes a transaction-level
/// advisory lock, so replicas starting at once apply each migration exactly once (the others wait,
/// then find the schema current). Append new migrations; never edit applied ones.
extension PostgresRegistryStore {
    /// Migration `i` (0-based) takes the schema from version `i` to `i + 1`. One statement per string.
    /// The tables are the SQLite store's (its migrations 1–5 folded into one), in PostgreSQL's types:
    /// times are milliseconds since 1970 (UTC), flags 0/1, lists JSON text.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE vpcs (
                id TEXT PRIMARY KEY,
                region TEXT NOT NULL,
                owner_id TEXT NOT NULL,
                name TEXT NOT NULL,
                cidr TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
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
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
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
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX backends_by_owner ON backends (region, owner_id, kind)",
            "CREATE INDEX backends_by_subnet ON backends (subnet_id)",
            """
            CREATE TABLE ip_allocations (
                subnet_id TEXT NOT NULL REFERENCES subnets (id),
                ip TEXT NOT NULL,
                holder_id TEXT NOT NULL,
                PRIMARY KEY (subnet_id, ip)
            )
            """,
            "CREATE INDEX ip_allocations_by_holder ON ip_allocations (holder_id)",
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
                approval_enabled BIGINT NOT NULL,
                client_ip_mode TEXT NOT NULL,
                description TEXT NOT NULL,
                tags TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                revision BIGINT NOT NULL,
                warnings TEXT NOT NULL,
                is_public BIGINT NOT NULL DEFAULT 0
            )
            """,
            "CREATE INDEX endpoint_services_by_owner ON endpoint_services (region, owner_id)",
            "CREATE INDEX endpoint_services_by_backend ON endpoint_services (backend_id)",
            "CREATE INDEX endpoint_services_public ON endpoint_services (region, is_public)",
            """
            CREATE TABLE quota_limits (
                owner_id TEXT NOT NULL,
                region TEXT NOT NULL,
                type TEXT NOT NULL,
                quota_limit BIGINT NOT NULL,
                PRIMARY KEY (owner_id, region, type)
            )
            """,
            """
            CREATE TABLE permissions (
                id TEXT PRIMARY KEY,
                service_id TEXT NOT NULL REFERENCES endpoint_services (id) ON DELETE CASCADE,
                region TEXT NOT NULL,
                permission TEXT NOT NULL,
                permission_type TEXT NOT NULL,
                description TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                UNIQUE (service_id, permission)
            )
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
                marker_id BIGINT NOT NULL UNIQUE,
                dns_name TEXT NOT NULL,
                whitelist TEXT NOT NULL,
                enable_whitelist BIGINT NOT NULL,
                description TEXT NOT NULL,
                tags TEXT NOT NULL,
                connection_description TEXT NOT NULL,
                decided_by TEXT NOT NULL,
                decided_at BIGINT,
                ever_accepted BIGINT NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL
            )
            """,
            "CREATE INDEX endpoints_by_owner ON endpoints (region, owner_id)",
            "CREATE INDEX endpoints_by_service ON endpoints (service_id, status)",
            "CREATE INDEX endpoints_by_vpc ON endpoints (vpc_id)",
            "CREATE INDEX endpoints_by_subnet ON endpoints (subnet_id)",
            // Counters that never go back (marker ids are never reused): a row, not a SEQUENCE, so that a
            // rolled-back transaction gives its number back like the SQLite store's does.
            "CREATE TABLE sequences (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO sequences (name, value) VALUES ('marker_id', 0)",
            """
            CREATE TABLE idempotency_records (
                owner_id TEXT NOT NULL,
                region TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                method TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                result TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                PRIMARY KEY (owner_id, region, idempotency_key)
            )
            """,
            "CREATE INDEX idempotency_records_by_expiry ON idempotency_records (expires_at)",
            // The change log (docs/DOMAIN.md, "Change log"): `log_head` holds the last sequence given out.
            "CREATE TABLE log_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL)",
            "INSERT INTO log_head (id, seq) VALUES (1, 0)",
            """
            CREATE TABLE change_events (
                seq BIGINT PRIMARY KEY,
                region TEXT NOT NULL,
                kind TEXT NOT NULL,
                resource_id TEXT NOT NULL,
                type TEXT NOT NULL,
                state TEXT NOT NULL,
                previous TEXT,
                revision_before BIGINT,
                revision_after BIGINT,
                actor TEXT NOT NULL,
                request_id TEXT NOT NULL,
                idempotency_key TEXT NOT NULL,
                committed_at BIGINT NOT NULL,
                owner_id TEXT NOT NULL,
                provider_id TEXT,
                service_id TEXT,
                provider_sees BIGINT NOT NULL
            )
            """,
            "CREATE INDEX change_events_by_resource ON change_events (resource_id, seq)",
            "CREATE INDEX change_events_by_owner ON change_events (region, owner_id, seq)",
            "CREATE INDEX change_events_by_provider ON change_events (region, provider_id, seq) WHERE provider_sees = 1",
            "CREATE INDEX change_events_by_service ON change_events (service_id, seq)",
            "CREATE INDEX change_events_by_time ON change_events (region, committed_at)",
            "CREATE TABLE log_compaction (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL)",
            "INSERT INTO log_compaction (id, seq) VALUES (1, 0)",
        ],
        // 2: messages both ways on a connection (the SQLite store's migration 6).
        [
            "ALTER TABLE endpoints ADD COLUMN request_message TEXT NOT NULL DEFAULT ''",
            "ALTER TABLE endpoints ADD COLUMN decision_reason TEXT NOT NULL DEFAULT ''",
        ],
        // 3 (issue 13, tags and pages): endpoints get a revision, for tag changes' revision checks;
        // existing endpoints start at 1, as new ones do.
        [
            "ALTER TABLE endpoints ADD COLUMN revision BIGINT NOT NULL DEFAULT 1",
        ],
        // 4: access policies on allow-list entries (issue 13), as SQLite's migration 8.
        [
            "ALTER TABLE permissions ADD COLUMN decision TEXT NOT NULL DEFAULT 'manual'",
            "ALTER TABLE permissions ADD COLUMN connection_limit BIGINT",
            "ALTER TABLE permissions ADD COLUMN expires_at BIGINT",
            "ALTER TABLE permissions ADD COLUMN on_expiry TEXT NOT NULL DEFAULT 'keep'",
            "ALTER TABLE permissions ADD COLUMN expiry_handled BIGINT NOT NULL DEFAULT 0",
            """
            CREATE INDEX permissions_expiry_due ON permissions (expires_at)
            WHERE on_expiry = 'reject' AND expiry_handled = 0
            """,
        ],
        // 5 (issue 14, lists that read a page): SQLite's migration 9 (the reasons are there): six order
        // indexes per listed table, and the tag tables kept in step with the JSON column by triggers.
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
            """
            CREATE TABLE endpoint_tags (
                resource_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                resource_region TEXT NOT NULL,
                resource_owner_id TEXT NOT NULL,
                resource_created_at BIGINT NOT NULL,
                PRIMARY KEY (resource_id, key, value)
            )
            """,
            "CREATE INDEX endpoint_tags_page ON endpoint_tags (resource_region, key, value, resource_created_at, resource_id)",
            """
            INSERT INTO endpoint_tags
            SELECT r.id, t.value->>'key', t.value->>'value', r.region, r.owner_id, r.created_at
            FROM endpoints AS r, jsonb_array_elements(r.tags::jsonb) AS t
            ON CONFLICT DO NOTHING
            """,
            """
            CREATE FUNCTION endpoint_tags_sync() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN
                    DELETE FROM endpoint_tags WHERE resource_id = OLD.id;
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    INSERT INTO endpoint_tags
                    SELECT NEW.id, t.value->>'key', t.value->>'value', NEW.region, NEW.owner_id, NEW.created_at
                    FROM jsonb_array_elements(NEW.tags::jsonb) AS t
                    ON CONFLICT DO NOTHING;
                END IF;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER endpoint_tags_insert_delete AFTER INSERT OR DELETE ON endpoints
            FOR EACH ROW EXECUTE FUNCTION endpoint_tags_sync()
            """,
            """
            CREATE TRIGGER endpoint_tags_update AFTER UPDATE OF tags, region, owner_id, created_at ON endpoints
            FOR EACH ROW WHEN (OLD.tags IS DISTINCT FROM NEW.tags OR OLD.region IS DISTINCT FROM NEW.region
                OR OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)
            EXECUTE FUNCTION endpoint_tags_sync()
            """,
            """
            CREATE TABLE endpoint_service_tags (
                resource_id TEXT NOT NULL,
                key TEXT NOT NULL,
                value TEXT NOT NULL,
                resource_region TEXT NOT NULL,
                resource_owner_id TEXT NOT NULL,
                resource_created_at BIGINT NOT NULL,
                PRIMARY KEY (resource_id, key, value)
            )
            """,
            "CREATE INDEX endpoint_service_tags_page ON endpoint_service_tags (resource_region, key, value, resource_created_at, resource_id)",
            """
            INSERT INTO endpoint_service_tags
            SELECT r.id, t.value->>'key', t.value->>'value', r.region, r.owner_id, r.created_at
            FROM endpoint_services AS r, jsonb_array_elements(r.tags::jsonb) AS t
            ON CONFLICT DO NOTHING
            """,
            """
            CREATE FUNCTION endpoint_service_tags_sync() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP IN ('UPDATE', 'DELETE') THEN
                    DELETE FROM endpoint_service_tags WHERE resource_id = OLD.id;
                END IF;
                IF TG_OP IN ('INSERT', 'UPDATE') THEN
                    INSERT INTO endpoint_service_tags
                    SELECT NEW.id, t.value->>'key', t.value->>'value', NEW.region, NEW.owner_id, NEW.created_at
                    FROM jsonb_array_elements(NEW.tags::jsonb) AS t
                    ON CONFLICT DO NOTHING;
                END IF;
                RETURN NULL;
            END
            $$
            """,
            """
            CREATE TRIGGER endpoint_service_tags_insert_delete AFTER INSERT OR DELETE ON endpoint_services
            FOR EACH ROW EXECUTE FUNCTION endpoint_service_tags_sync()
            """,
            """
            CREATE TRIGGER endpoint_service_tags_update AFTER UPDATE OF tags, region, owner_id, created_at ON endpoint_services
            FOR EACH ROW WHEN (OLD.tags IS DISTINCT FROM NEW.tags OR OLD.region IS DISTINCT FROM NEW.region
                OR OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.created_at IS DISTINCT FROM NEW.created_at)
            EXECUTE FUNCTION endpoint_service_tags_sync()
            """,
        ],
        // 6: read leases (docs/DOMAIN.md, "Read cache across servers"): one row per running server, until
        // when (by PostgreSQL's clock) it may answer reads from memory, and the log head its cache has
        // applied. A writer waits for every live lease to have seen its commit before answering.
        [
            """
            CREATE TABLE replica_leases (
                replica_id TEXT PRIMARY KEY,
                expires_at TIMESTAMPTZ NOT NULL,
                seen_seq BIGINT NOT NULL
            )
            """,
        ],
    ]

    /// The schema version this build writes.
    public static var schemaVersion: Int { migrations.count }

    /// Creates `schema` when it is given and missing, and brings the schema (the first on the search
    /// path) up to `schemaVersion`; refuses one written by a newer build.
    static func migrate(_ connection: PostgresConnection, schema: String?, logger: Logger) async throws {
        func run(_ sql: String) async throws {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        }
        try await run("BEGIN")
        do {
            // One lock per search path: replicas of one deployment wait for each other, others do not.
            try await run("SELECT pg_advisory_xact_lock(7206581, hashtext(current_setting('search_path')))")
            if let schema {
                // Created only when missing: a role may own its schema without the right to create one.
                let exists = try await connection.query(
                    "SELECT 1 FROM pg_namespace WHERE nspname = \(schema)", logger: logger
                ).collect()
                if exists.isEmpty { try await run("CREATE SCHEMA \(quoteIdentifier(schema))") }
            }
            try await run("CREATE TABLE IF NOT EXISTS vpcep_schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)")
            try await run("INSERT INTO vpcep_schema (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
            let rows = try await connection.query("SELECT version FROM vpcep_schema WHERE id = 1", logger: logger).collect()
            let version = try rows.first?.decode(Int32.self) ?? 0
            guard version <= schemaVersion else {
                throw StoreError(
                    code: .internalError,
                    message: "the database schema is version \(version), newer than this build's \(schemaVersion)")
            }
            for migration in migrations[Int(version)...] {
                for statement in migration {
                    try await run(statement)
                }
            }
            if version < schemaVersion {
                try await run("UPDATE vpcep_schema SET version = \(schemaVersion) WHERE id = 1")
            }
            try await run("COMMIT")
        } catch {
            try? await run("ROLLBACK")
            throw StoreError(postgres: error)
        }
    }
}
