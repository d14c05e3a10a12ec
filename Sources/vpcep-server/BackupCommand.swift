import ArgumentParser
import Foundation
import VPCEPStoreSQLite

/// `vpcep-server backup`: an online copy of the SQLite registry, taken while the server runs.
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the SQLite registry to a file, online (SQLite's backup API); the server may keep running.",
        discussion: """
            The copy is one consistent snapshot of the database. To restore it, put it as vpcep.sqlite3 in an \
            empty data directory and start vpcep-server there. For the PostgreSQL store, use pg_dump (README, "Backups").
            """
    )

    @Option(name: .long, help: ArgumentHelp("Data directory of the SQLite store. [env: VPCEP_DATA_DIR] (default: ./data)", valueName: "dir"))
    var dataDir: String?

    @Option(name: .long, help: ArgumentHelp("The file to write; it must not exist.", valueName: "file"))
    var to: String

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let directory = dataDir.flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["VPCEP_DATA_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "./data"
        let summary: SQLiteRegistryStore.BackupSummary
        do {
            summary = try SQLiteRegistryStore.backup(directory: directory, to: to)
        } catch let error as SQLiteStoreError {
            throw StartupError("backup failed: \(error)")
        }
        print("backed up \(directory) to \(to): \(summary.pages) pages, \(summary.bytes) bytes, change log head \(summary.logHead)")
    }
}
