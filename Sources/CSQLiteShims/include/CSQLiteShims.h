#ifndef VPCEP_CSQLITESHIMS_H
#define VPCEP_CSQLITESHIMS_H

/// Turns on SQLite's query planner stability guarantee for `db` (a `sqlite3*` of sqlite-nio's copy of
/// SQLite): a statement's plan no longer depends on the values bound to it, so a statement that is
/// prepared once is not prepared again each time it is bound. `sqlite3_db_config` is variadic, which
/// Swift cannot call. Returns SQLite's result code.
int vpcep_sqlite_enable_stable_plans(void *db);

/// Registers (once) the VFS that gathers a write-ahead log's writes into one call per sync
/// (`walbuffer.c`) and returns its name, or NULL when it cannot be registered.
const char *vpcep_sqlite_gathering_vfs(void);

#endif
