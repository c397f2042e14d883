#ifndef CLMDB_SHIM_H
#define CLMDB_SHIM_H

/*
 * The C surface swiftpostmap uses for lmdb tables: Debian's liblmdb-dev (LMDB 0.9).
 */
#include <lmdb.h>

#endif
