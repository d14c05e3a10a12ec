import ArgumentParser
import Foundation
import Logging
import VPCEPRegistry
import VPCEPStorePostgres
import VPCEPStoreSQLite

/// `vpcep-server migrate-store`: copies a SQLite registry into PostgreSQL, offline.
struct MigrateStoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate-store",
        abstract: "Copy a stopped server's SQLite registry into an empty PostgreSQL store, and verify it.",
        discussion: """
            Every table moves (idempotency records, quotas and the change log included) in one PostgreSQL \
            transaction; the rows of each table and the change log's head are compared with the source's \
            before it commits. A failure leaves the target as it was and exits non-zero.
            """
    )

    @Option(name: .long, help: ArgumentHelp("sqlite:DIR, the data directory of a stopped server.", valueName: "sqlite:dir"))
    var from: String

    @Option(name: .long, help: ArgumentHelp("postgres://user@host:port/db[?sslmode=…&schema=name] as for --store, no password in it; the store must be empty.", valueName: "url"))
    var to: String

    @Option(name: .long, help: ArgumentHelp("File holding the PostgreSQL password (else VPCEP_STORE_PASSWORD).", valueName: "file"))
    var storePasswordFile: String?

    @Option(name: .long, help: ArgumentHelp("PEM bundle of the CAs that sign PostgreSQL's certificate, for sslmode=require.", valueName: "file"))
    var storeCA: String?

    func validate() throws {
        guard from.hasPrefix("sqlite:"), from.count > "sqlite:".count else {
            throw ValidationError("--from must be sqlite:DIR, the data directory of a stopped server")
        }
    }

    func run() async throws {
        let directory = String(from.dropFirst("sqlite:".count))
        var configuration: PostgresRegistryStore.Configuration
        do {
            let password = try ServeCommand.storePassword(
                file: storePasswordFile, source: "flag --store-password-file", ProcessInfo.processInfo.environment)
            configuration = try PostgresRegistryStore.Configuration(url: to, password: password)
        } catch let error as StoreError {
            // The URL itself is not repeated: a mistyped one may hold a password.
            throw StartupError("invalid --to: \(error.message)")
        }
        configuration.caFile = storeCA
        configuration.maximumConnections = 1

        // The source first: a running server is reported before PostgreSQL is even reached.
        let tables: [StoredTable]
        do {
            tables = try await SQLiteRegistryStore.exportTables(directory: directory)
        } catch let error as SQLiteStoreError {
            throw StartupError("cannot read the source: \(error)")
        }
        let summary: PostgresRegistryStore.ImportSummary
        do {
            // The store's own start-up lines would only repeat what the summary says.
            var logger = Logger(label: "vpcep-server")
            logger.logLevel = .warning
            summary = try await PostgresRegistryStore.importTables(tables, into: configuration, logger: logger)
        } catch let error as StoreError {
            throw StartupError("migration to \(configuration.redacted) failed, nothing was written: \(error.message)")
        }
        print("migrated \(directory) (SQLite) to \(configuration.redacted), verified:")
        let width = summary.rows.map(\.table.count).max() ?? 0
        for (table, count) in summary.rows {
            print("  " + table.padding(toLength: width, withPad: " ", startingAt: 0) + "  \(count) rows")
        }
        print("  change log head: \(summary.logHead)")
    }
}
