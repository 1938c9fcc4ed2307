#ifndef SANDHI_CSQLITE_SHIM_H
#define SANDHI_CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is a cast of -1 to a function pointer; Swift cannot import it.
static inline sqlite3_destructor_type sandhi_sqlite_transient(void) {
    return SQLITE_TRANSIENT;
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
#endif
