#ifndef CPOSTGRESQL_SHIM_H
#define CPOSTGRESQL_SHIM_H

/*
 * The C surface swiftpostmap uses for pgsql: maps: Debian's libpq-dev (libpq 15).
 *
 * Only the declarations: the binary does not link libpq. It loads libpq.so.5 with dlopen
 * when a pgsql: map is first used, so the release binary keeps needing nothing but glibc,
 * and PostgreSQL support costs nothing to users without it (as Postfix's postfix-pgsql
 * plug-in). The typedefs give each function swiftpostmap calls a pointer type for dlsym.
 */
#include <postgresql/libpq-fe.h>

typedef __typeof__(&PQconnectdb) swiftpostmap_PQconnectdb;
typedef __typeof__(&PQstatus) swiftpostmap_PQstatus;
typedef __typeof__(&PQerrorMessage) swiftpostmap_PQerrorMessage;
typedef __typeof__(&PQfinish) swiftpostmap_PQfinish;
typedef __typeof__(&PQexec) swiftpostmap_PQexec;
typedef __typeof__(&PQexecParams) swiftpostmap_PQexecParams;
typedef __typeof__(&PQresultStatus) swiftpostmap_PQresultStatus;
typedef __typeof__(&PQresultErrorMessage) swiftpostmap_PQresultErrorMessage;
typedef __typeof__(&PQresultErrorField) swiftpostmap_PQresultErrorField;
typedef __typeof__(&PQntuples) swiftpostmap_PQntuples;
typedef __typeof__(&PQnfields) swiftpostmap_PQnfields;
typedef __typeof__(&PQgetvalue) swiftpostmap_PQgetvalue;
typedef __typeof__(&PQgetlength) swiftpostmap_PQgetlength;
typedef __typeof__(&PQgetisnull) swiftpostmap_PQgetisnull;
typedef __typeof__(&PQclear) swiftpostmap_PQclear;
typedef __typeof__(&PQputCopyData) swiftpostmap_PQputCopyData;
typedef __typeof__(&PQputCopyEnd) swiftpostmap_PQputCopyEnd;
typedef __typeof__(&PQgetResult) swiftpostmap_PQgetResult;
typedef __typeof__(&PQescapeStringConn) swiftpostmap_PQescapeStringConn;
typedef __typeof__(&PQescapeIdentifier) swiftpostmap_PQescapeIdentifier;
typedef __typeof__(&PQfreemem) swiftpostmap_PQfreemem;
typedef __typeof__(&PQparameterStatus) swiftpostmap_PQparameterStatus;
typedef __typeof__(&PQsetClientEncoding) swiftpostmap_PQsetClientEncoding;
typedef __typeof__(&PQhost) swiftpostmap_PQhost;
typedef __typeof__(&PQport) swiftpostmap_PQport;
typedef __typeof__(&PQuser) swiftpostmap_PQuser;
typedef __typeof__(&PQdb) swiftpostmap_PQdb;
typedef __typeof__(&PQconnectionUsedPassword) swiftpostmap_PQconnectionUsedPassword;
typedef __typeof__(&PQconninfoParse) swiftpostmap_PQconninfoParse;
typedef __typeof__(&PQconninfoFree) swiftpostmap_PQconninfoFree;

#endif
