#ifndef CBERKELEYDB_SHIM_H
#define CBERKELEYDB_SHIM_H

/*
 * The whole C surface swiftpostmap uses: Debian's libdb-dev (Berkeley DB 5.3). Swift calls
 * libdb's function pointers (db->open, db->put, ...) directly, so no wrappers are needed.
 */
#include <db.h>

#endif
