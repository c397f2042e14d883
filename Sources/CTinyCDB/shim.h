#ifndef CTINYCDB_SHIM_H
#define CTINYCDB_SHIM_H

/*
 * The C surface swiftpostmap uses for cdb tables: Debian's libcdb-dev (tinycdb 0.78).
 */
#include <cdb.h>

#endif
