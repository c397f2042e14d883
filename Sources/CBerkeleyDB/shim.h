#ifndef CBERKELEYDB_SHIM_H
#define CBERKELEYDB_SHIM_H

/* The whole C surface swiftpostmap uses: Debian's libdb-dev (Berkeley DB 5.3). */
#include <db.h>

/*
 * DB_VERSION_STRING is a string macro; Swift imports string macros only when they are
 * simple literals, which this one is not on every libdb build. One accessor keeps the
 * version reportable in verbose output.
 */
static inline const char *CBerkeleyDB_versionString(void) {
    return DB_VERSION_STRING;
}

#endif
