// A VFS over SQLite's own ("unix") that gathers the writes to a write-ahead log into one buffer and
// hands them to the kernel together, when SQLite syncs the log (or reads, sizes, truncates or
// closes it). SQLite writes a log frame as two calls, its 24-byte header and then its page, and each
// frame straddles two of the kernel's 4 KiB pages: a commit of 200 frames was 400 `pwrite`s, each
// locking the file, updating its time and taking two or three page-cache pages through ext4's
// write_begin/write_end. Gathered, the commit is a `pwrite` per 124 KiB.
//
// Correctness rests on one fact of SQLite's WAL: a commit's frames become visible to other
// connections only when the writer publishes the log's new index header, which at `synchronous=FULL`
// (the store's setting on every connection) it does after syncing the log, and the sync writes the
// buffer out first. At other settings no sync comes first, so the buffer is also written out at the
// memory barrier SQLite raises on the database file just before it publishes the header (an error
// there cannot be reported; at FULL the buffer is already empty). Frames written but not committed
// (a transaction's spilled pages) are read back only by the writing connection itself, through this
// file, which writes the buffer out before any read it overlaps. The database file and its shared
// memory otherwise pass straight through.

#include "CSQLiteShims.h"
#include "sqlite_nio_sqlite3.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define BUFFER_CAPACITY (4 * 1024 * 1024)
// The unix VFS writes at most 128 KiB less one byte per call (`seekAndWriteFd` masks the length
// with 0x1ffff), so the buffer goes out in pieces of 31 pages.
#define WRITE_LIMIT (31 * 4096)

typedef struct GatherFile {
    sqlite3_file base;
    sqlite3_file *real;           // the unix VFS's file, allocated right after this struct
    int isLog;
    struct GatherFile *log;       // on a database file: its connection's open log, if any
    struct GatherFile *database;  // on a log: its database file
    unsigned char *buffer;        // BUFFER_CAPACITY bytes once the log is first written
    sqlite3_int64 bufferOffset;   // where the buffer's first byte goes in the file
    int bufferLength;
} GatherFile;

static sqlite3_vfs gatherVFS;
static sqlite3_vfs *unixVFS;

static int writeOut(GatherFile *file) {
    int result = SQLITE_OK;
    for (int done = 0; done < file->bufferLength && result == SQLITE_OK; done += WRITE_LIMIT) {
        int amount = file->bufferLength - done < WRITE_LIMIT ? file->bufferLength - done : WRITE_LIMIT;
        result = file->real->pMethods->xWrite(file->real, file->buffer + done, amount, file->bufferOffset + done);
    }
    // Written or not, the bytes are SQLite's error now; keeping them would write them again later.
    file->bufferLength = 0;
    return result;
}

static int gatherClose(sqlite3_file *f) {
    GatherFile *file = (GatherFile *)f;
    if (file->database != NULL && file->database->log == file) file->database->log = NULL;
    if (file->log != NULL) file->log->database = NULL;
    int result = writeOut(file);
    int closed = file->real->pMethods ? file->real->pMethods->xClose(file->real) : SQLITE_OK;
    free(file->buffer);
    file->buffer = NULL;
    return result != SQLITE_OK ? result : closed;
}

static int gatherRead(sqlite3_file *f, void *out, int amount, sqlite3_int64 offset) {
    GatherFile *file = (GatherFile *)f;
    if (file->bufferLength > 0 && offset < file->bufferOffset + file->bufferLength
        && offset + amount > file->bufferOffset) {
        int result = writeOut(file);
        if (result != SQLITE_OK) return result;
    }
    return file->real->pMethods->xRead(file->real, out, amount, offset);
}

static int gatherWrite(sqlite3_file *f, const void *data, int amount, sqlite3_int64 offset) {
    GatherFile *file = (GatherFile *)f;
    if (!file->isLog) return file->real->pMethods->xWrite(file->real, data, amount, offset);
    if (file->buffer == NULL) {
        file->buffer = malloc(BUFFER_CAPACITY);
        if (file->buffer == NULL) return file->real->pMethods->xWrite(file->real, data, amount, offset);
    }
    sqlite3_int64 end = file->bufferOffset + file->bufferLength;
    if (file->bufferLength > 0 && offset >= file->bufferOffset && offset + amount <= end) {
        // SQLite rewrites a frame of the open transaction in place (a page changed again).
        memcpy(file->buffer + (offset - file->bufferOffset), data, (size_t)amount);
        return SQLITE_OK;
    }
    if (file->bufferLength > 0 && (offset != end || file->bufferLength + amount > BUFFER_CAPACITY)) {
        int result = writeOut(file);
        if (result != SQLITE_OK) return result;
    }
    if (amount > BUFFER_CAPACITY) return file->real->pMethods->xWrite(file->real, data, amount, offset);
    if (file->bufferLength == 0) file->bufferOffset = offset;
    memcpy(file->buffer + file->bufferLength, data, (size_t)amount);
    file->bufferLength += amount;
    return SQLITE_OK;
}

static int gatherTruncate(sqlite3_file *f, sqlite3_int64 size) {
    GatherFile *file = (GatherFile *)f;
    int result = writeOut(file);
    if (result != SQLITE_OK) return result;
    return file->real->pMethods->xTruncate(file->real, size);
}

static int gatherSync(sqlite3_file *f, int flags) {
    GatherFile *file = (GatherFile *)f;
    int result = writeOut(file);
    if (result != SQLITE_OK) return result;
    return file->real->pMethods->xSync(file->real, flags);
}

static int gatherFileSize(sqlite3_file *f, sqlite3_int64 *size) {
    GatherFile *file = (GatherFile *)f;
    int result = writeOut(file);
    if (result != SQLITE_OK) return result;
    return file->real->pMethods->xFileSize(file->real, size);
}

static int gatherLock(sqlite3_file *f, int level) {
    GatherFile *file = (GatherFile *)f;
    return file->real->pMethods->xLock(file->real, level);
}

static int gatherUnlock(sqlite3_file *f, int level) {
    GatherFile *file = (GatherFile *)f;
    return file->real->pMethods->xUnlock(file->real, level);
}

static int gatherCheckReservedLock(sqlite3_file *f, int *out) {
    GatherFile *file = (GatherFile *)f;
    return file->real->pMethods->xCheckReservedLock(file->real, out);
}

static int gatherFileControl(sqlite3_file *f, int op, void *argument) {
    GatherFile *file = (GatherFile *)f;
    int result = file->real->pMethods->xFileControl(file->real, op, argument);
    if (op == SQLITE_FCNTL_VFSNAME && result == SQLITE_OK) {
        // Shims name themselves before the VFS they wrap, as SQLite's own do ("vpcep-gather/unix").
        char **name = (char **)argument;
        *name = sqlite_nio_sqlite3_mprintf("vpcep-gather/%z", *name);
    }
    return result;
}

static int gatherSectorSize(sqlite3_file *f) {
    GatherFile *file = (GatherFile *)f;
    return file->real->pMethods->xSectorSize(file->real);
}

static int gatherDeviceCharacteristics(sqlite3_file *f) {
    GatherFile *file = (GatherFile *)f;
    return file->real->pMethods->xDeviceCharacteristics(file->real);
}

static int gatherShmMap(sqlite3_file *f, int page, int pageSize, int extend, void volatile **out) {
    GatherFile *file = (GatherFile *)f;
    return file->real->pMethods->xShmMap(file->real, page, pageSize, extend, out);
}

static int gatherShmLock(sqlite3_file *f, int offset, int n, int flags) {
    GatherFile *file = (GatherFile *)f;
    return file->real->pMethods->xShmLock(file->real, offset, n, flags);
}

static void gatherShmBarrier(sqlite3_file *f) {
    GatherFile *file = (GatherFile *)f;
    if (file->log != NULL) (void)writeOut(file->log);
    file->real->pMethods->xShmBarrier(file->real);
}

static int gatherShmUnmap(sqlite3_file *f, int deleteFlag) {
    GatherFile *file = (GatherFile *)f;
    return file->real->pMethods->xShmUnmap(file->real, deleteFlag);
}

static int gatherFetch(sqlite3_file *f, sqlite3_int64 offset, int amount, void **out) {
    GatherFile *file = (GatherFile *)f;
    // A mapped read would bypass the buffer; the log is never mapped, but say no rather than trust it.
    if (file->isLog) { *out = NULL; return SQLITE_OK; }
    return file->real->pMethods->xFetch(file->real, offset, amount, out);
}

static int gatherUnfetch(sqlite3_file *f, sqlite3_int64 offset, void *pointer) {
    GatherFile *file = (GatherFile *)f;
    if (file->isLog) return SQLITE_OK;
    return file->real->pMethods->xUnfetch(file->real, offset, pointer);
}

static const sqlite3_io_methods gatherMethods = {
    3, gatherClose, gatherRead, gatherWrite, gatherTruncate, gatherSync, gatherFileSize, gatherLock,
    gatherUnlock, gatherCheckReservedLock, gatherFileControl, gatherSectorSize, gatherDeviceCharacteristics,
    gatherShmMap, gatherShmLock, gatherShmBarrier, gatherShmUnmap, gatherFetch, gatherUnfetch,
};

static int gatherOpen(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *outFlags) {
    (void)vfs;
    GatherFile *file = (GatherFile *)f;
    memset(file, 0, sizeof(GatherFile));
    file->real = (sqlite3_file *)(file + 1);
    int result = unixVFS->xOpen(unixVFS, name, file->real, flags, outFlags);
    if (result != SQLITE_OK) {
        // SQLite calls xClose only on a file whose pMethods is set.
        if (file->real->pMethods) file->real->pMethods->xClose(file->real);
        file->base.pMethods = NULL;
        return result;
    }
    file->base.pMethods = &gatherMethods;
    file->isLog = (flags & SQLITE_OPEN_WAL) != 0;
    if (file->isLog) {
        // The log is opened by the connection that opened the database, through this VFS.
        sqlite3_file *database = sqlite_nio_sqlite3_database_file_object(name);
        if (database != NULL && database->pMethods == &gatherMethods) {
            file->database = (GatherFile *)database;
            file->database->log = file;
        }
    }
    return SQLITE_OK;
}

static int gatherDelete(sqlite3_vfs *v, const char *name, int syncDirectory) {
    (void)v; return unixVFS->xDelete(unixVFS, name, syncDirectory);
}
static int gatherAccess(sqlite3_vfs *v, const char *name, int flags, int *out) {
    (void)v; return unixVFS->xAccess(unixVFS, name, flags, out);
}
static int gatherFullPathname(sqlite3_vfs *v, const char *name, int size, char *out) {
    (void)v; return unixVFS->xFullPathname(unixVFS, name, size, out);
}
static void *gatherDlOpen(sqlite3_vfs *v, const char *name) { (void)v; return unixVFS->xDlOpen(unixVFS, name); }
static void gatherDlError(sqlite3_vfs *v, int size, char *out) { (void)v; unixVFS->xDlError(unixVFS, size, out); }
static void (*gatherDlSym(sqlite3_vfs *v, void *handle, const char *symbol))(void) {
    (void)v; return unixVFS->xDlSym(unixVFS, handle, symbol);
}
static void gatherDlClose(sqlite3_vfs *v, void *handle) { (void)v; unixVFS->xDlClose(unixVFS, handle); }
static int gatherRandomness(sqlite3_vfs *v, int size, char *out) { (void)v; return unixVFS->xRandomness(unixVFS, size, out); }
static int gatherSleep(sqlite3_vfs *v, int micros) { (void)v; return unixVFS->xSleep(unixVFS, micros); }
static int gatherCurrentTime(sqlite3_vfs *v, double *out) { (void)v; return unixVFS->xCurrentTime(unixVFS, out); }
static int gatherGetLastError(sqlite3_vfs *v, int size, char *out) { (void)v; return unixVFS->xGetLastError(unixVFS, size, out); }
static int gatherCurrentTimeInt64(sqlite3_vfs *v, sqlite3_int64 *out) {
    (void)v; return unixVFS->xCurrentTimeInt64(unixVFS, out);
}

static int registered = 0;

static void registerOnce(void) {
    if (sqlite_nio_sqlite3_initialize() != SQLITE_OK) return;
    unixVFS = sqlite_nio_sqlite3_vfs_find("unix");
    if (unixVFS == NULL || unixVFS->iVersion < 2) return;
    gatherVFS = (sqlite3_vfs){
        .iVersion = 2, .szOsFile = (int)sizeof(GatherFile) + unixVFS->szOsFile,
        .mxPathname = unixVFS->mxPathname, .zName = "vpcep-gather", .pAppData = NULL,
        .xOpen = gatherOpen, .xDelete = gatherDelete, .xAccess = gatherAccess,
        .xFullPathname = gatherFullPathname, .xDlOpen = gatherDlOpen, .xDlError = gatherDlError,
        .xDlSym = gatherDlSym, .xDlClose = gatherDlClose, .xRandomness = gatherRandomness,
        .xSleep = gatherSleep, .xCurrentTime = gatherCurrentTime, .xGetLastError = gatherGetLastError,
        .xCurrentTimeInt64 = gatherCurrentTimeInt64,
    };
    if (sqlite_nio_sqlite3_vfs_register(&gatherVFS, 0) == SQLITE_OK) registered = 1;
}

const char *vpcep_sqlite_gathering_vfs(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, registerOnce);
    return registered ? "vpcep-gather" : NULL;
}
