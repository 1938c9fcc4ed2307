#ifndef SANDHI_CSQLITE_SHIM_H
#define SANDHI_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast of -1 to a function pointer; Swift cannot import it.
static inline sqlite3_destructor_type sandhi_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
}

// Process-wide settings, made before SQLite's first use (sqlite3_config is variadic; after
// the library initialised it refuses with SQLITE_MISUSE and changes nothing). Memory
// statistics off: keeping them takes one process-wide mutex on every allocation, which the
// threads of different banks (and the simulator's seeds) then contend for, and nothing here
// reads them.
static inline int sandhi_sqlite_configure(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

// sqlite3_db_config is variadic; Swift cannot call it directly.
static inline int sandhi_sqlite_no_checkpoint_on_close(sqlite3 *db) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)0);
}

// The WAL's frame count after each commit, for deciding when to checkpoint.
static int sandhi_sqlite_count_wal_frames(void *counter, sqlite3 *db, const char *name, int frames) {
    (void)db; (void)name;
    *(int *)counter = frames;
    return SQLITE_OK;
}

static inline void sandhi_sqlite_install_wal_frame_counter(sqlite3 *db, int *counter) {
    sqlite3_wal_hook(db, sandhi_sqlite_count_wal_frames, counter);
}

// One open file of Sandhi's file-system VFS (FileSystemVFS): SQLite's base object first, as
// every VFS's file must begin, then what the Swift side needs to find the file again.
typedef struct sandhi_vfs_file {
    sqlite3_file base;
    /// The descriptor the FileSystem returned.
    int fd;
    /// The directory entry is new and not yet synced: the first sync of the file syncs its
    /// directory too (as SQLite's unix VFS does for a new journal or WAL).
    int directory_sync_pending;
    int delete_on_close;
    /// The FileSystemVFS, unretained (it outlives every file it opens).
    void *owner;
    /// The file's full path: a retained Swift object (FileSystemVFS's `FilePath`), released at
    /// close, so that no call converts a C string again.
    void *path;
} sandhi_vfs_file;

// The WAL (or rollback journal) file of a connection's main database, for syncing it through
// whichever VFS opened it. NULL if the connection has none open.
static inline sqlite3_file *sandhi_sqlite_journal_file(sqlite3 *db) {
    sqlite3_file *file = 0;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) != SQLITE_OK) return 0;
    if (file == 0 || file->pMethods == 0) return 0;
    return file;
}

static inline int sandhi_sqlite_sync_file(sqlite3_file *file, int flags) {
    return file->pMethods->xSync(file, flags);
}
#endif
