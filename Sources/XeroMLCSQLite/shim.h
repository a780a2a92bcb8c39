#ifndef XEROML_CSQLITE_SHIM_H
#define XEROML_CSQLITE_SHIM_H

#include <sqlite3.h>

// Variadic and macro-based parts of the SQLite C API that Swift cannot call directly.

/// Turns off double-quoted string literals on one connection, so a typo in an identifier is an error
/// instead of a silently accepted string (https://www.sqlite.org/quirks.html#dblquote).
static inline int xeroml_sqlite_disable_dqs(sqlite3 *db) {
    int rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DML, 0, (void *)0);
    if (rc != SQLITE_OK) return rc;
    return sqlite3_db_config(db, SQLITE_DBCONFIG_DQS_DDL, 0, (void *)0);
}

#endif
