import CPostgreSQL
import Glibc

/// libpq's functions, loaded from `libpq.so.5` the first time a `pgsql:` map is used.
///
/// The binary does not link libpq: it stays a file that needs only glibc, and a machine
/// without libpq5 is told so only when it asks for PostgreSQL.
struct LibPQ: @unchecked Sendable {
    // Safety: immutable C function pointers into a library that is never unloaded.
    let connectdb: swiftpostmap_PQconnectdb
    let status: swiftpostmap_PQstatus
    let errorMessage: swiftpostmap_PQerrorMessage
    let finish: swiftpostmap_PQfinish
    let exec: swiftpostmap_PQexec
    let execParams: swiftpostmap_PQexecParams
    let resultStatus: swiftpostmap_PQresultStatus
    let resultErrorMessage: swiftpostmap_PQresultErrorMessage
    let resultErrorField: swiftpostmap_PQresultErrorField
    let ntuples: swiftpostmap_PQntuples
    let nfields: swiftpostmap_PQnfields
    let getvalue: swiftpostmap_PQgetvalue
    let getlength: swiftpostmap_PQgetlength
    let getisnull: swiftpostmap_PQgetisnull
    let clear: swiftpostmap_PQclear
    let putCopyData: swiftpostmap_PQputCopyData
    let putCopyEnd: swiftpostmap_PQputCopyEnd
    let getResult: swiftpostmap_PQgetResult
    let escapeStringConn: swiftpostmap_PQescapeStringConn
    let escapeIdentifier: swiftpostmap_PQescapeIdentifier
    let freemem: swiftpostmap_PQfreemem
    let parameterStatus: swiftpostmap_PQparameterStatus
    let setClientEncoding: swiftpostmap_PQsetClientEncoding
    let host: swiftpostmap_PQhost
    let port: swiftpostmap_PQport
    let user: swiftpostmap_PQuser
    let db: swiftpostmap_PQdb
    let connectionUsedPassword: swiftpostmap_PQconnectionUsedPassword
    let conninfoParse: swiftpostmap_PQconninfoParse
    let conninfoFree: swiftpostmap_PQconninfoFree

    /// The library, or why it could not be loaded.
    static let shared: Result<LibPQ, PostgreSQLError> = load()

    /// The loaded library.
    static func loaded() throws(PostgreSQLError) -> LibPQ { try shared.get() }

    private static func load() -> Result<LibPQ, PostgreSQLError> {
        guard let handle = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "libpq.so.5: cannot be loaded"
            return .failure(PostgreSQLError(.loadLibrary, "\(reason) (install libpq5)"))
        }
        func symbol<Function>(_ name: String, as _: Function.Type) throws(PostgreSQLError) -> Function {
            guard let address = dlsym(handle, name) else {
                throw PostgreSQLError(.loadLibrary, "libpq.so.5 has no \(name)")
            }
            return unsafeBitCast(address, to: Function.self)
        }
        do throws(PostgreSQLError) {
            return .success(
                LibPQ(
                    connectdb: try symbol("PQconnectdb", as: swiftpostmap_PQconnectdb.self),
                    status: try symbol("PQstatus", as: swiftpostmap_PQstatus.self),
                    errorMessage: try symbol("PQerrorMessage", as: swiftpostmap_PQerrorMessage.self),
                    finish: try symbol("PQfinish", as: swiftpostmap_PQfinish.self),
                    exec: try symbol("PQexec", as: swiftpostmap_PQexec.self),
                    execParams: try symbol("PQexecParams", as: swiftpostmap_PQexecParams.self),
                    resultStatus: try symbol("PQresultStatus", as: swiftpostmap_PQresultStatus.self),
                    resultErrorMessage: try symbol("PQresultErrorMessage", as: swiftpostmap_PQresultErrorMessage.self),
                    resultErrorField: try symbol("PQresultErrorField", as: swiftpostmap_PQresultErrorField.self),
                    ntuples: try symbol("PQntuples", as: swiftpostmap_PQntuples.self),
                    nfields: try symbol("PQnfields", as: swiftpostmap_PQnfields.self),
                    getvalue: try symbol("PQgetvalue", as: swiftpostmap_PQgetvalue.self),
                    getlength: try symbol("PQgetlength", as: swiftpostmap_PQgetlength.self),
                    getisnull: try symbol("PQgetisnull", as: swiftpostmap_PQgetisnull.self),
                    clear: try symbol("PQclear", as: swiftpostmap_PQclear.self),
                    putCopyData: try symbol("PQputCopyData", as: swiftpostmap_PQputCopyData.self),
                    putCopyEnd: try symbol("PQputCopyEnd", as: swiftpostmap_PQputCopyEnd.self),
                    getResult: try symbol("PQgetResult", as: swiftpostmap_PQgetResult.self),
                    escapeStringConn: try symbol("PQescapeStringConn", as: swiftpostmap_PQescapeStringConn.self),
                    escapeIdentifier: try symbol("PQescapeIdentifier", as: swiftpostmap_PQescapeIdentifier.self),
                    freemem: try symbol("PQfreemem", as: swiftpostmap_PQfreemem.self),
                    parameterStatus: try symbol("PQparameterStatus", as: swiftpostmap_PQparameterStatus.self),
                    setClientEncoding: try symbol("PQsetClientEncoding", as: swiftpostmap_PQsetClientEncoding.self),
                    host: try symbol("PQhost", as: swiftpostmap_PQhost.self),
                    port: try symbol("PQport", as: swiftpostmap_PQport.self),
                    user: try symbol("PQuser", as: swiftpostmap_PQuser.self),
                    db: try symbol("PQdb", as: swiftpostmap_PQdb.self),
                    connectionUsedPassword: try symbol(
                        "PQconnectionUsedPassword", as: swiftpostmap_PQconnectionUsedPassword.self),
                    conninfoParse: try symbol("PQconninfoParse", as: swiftpostmap_PQconninfoParse.self),
                    conninfoFree: try symbol("PQconninfoFree", as: swiftpostmap_PQconninfoFree.self)))
        } catch {
            return .failure(error)
        }
    }
}
