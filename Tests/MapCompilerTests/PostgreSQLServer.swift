import Foundation
import Testing

/// A PostgreSQL server of the test's own (Debian's `postgresql` package): `initdb` into a
/// scratch directory as the `postgres` user, listening on 127.0.0.1 on a free port and on a
/// socket in that directory, stopped and removed by ``stop()``, which
/// ``withPostgreSQLServer(_:)`` calls also when the test fails.
final class PostgreSQLServer {
    let directory: URL
    let port: Int
    private var running = true

    /// The newest PostgreSQL installed: `/usr/lib/postgresql/N/bin`.
    static let binDirectory: String? = {
        let base = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
        guard let newest = versions.compactMap(Int.init).max() else { return nil }
        let bin = "\(base)/\(newest)/bin"
        return FileManager.default.isExecutableFile(atPath: bin + "/initdb") ? bin : nil
    }()

    /// A connection string for the database `name` as `user`.
    func conninfo(database: String = "mail", user: String = "postgres", password: String? = nil) -> String {
        "host=127.0.0.1 port=\(port) dbname=\(database) user=\(user)" + (password.map { " password=\($0)" } ?? "")
    }

    /// Runs the server's owner's command `arguments` (as `postgres` when we are root), with
    /// every descriptor above 2 closed: Foundation learns that a child ended when a pipe it
    /// shares with the child closes, and the server pg_ctl leaves running would hold it open.
    private static func asOwner(_ arguments: [String], in directory: URL? = nil) throws -> ProcessResult {
        let closing = ["/usr/bin/perl", "-e", "use POSIX; POSIX::close($_) for 3 .. 1023; exec @ARGV or exit 127"]
        if getuid() == 0 {
            return try run(
                "/usr/bin/setpriv",
                ["--reuid=postgres", "--regid=postgres", "--clear-groups", "--"] + closing + arguments,
                in: directory, environment: ["HOME": "/var/lib/postgresql"])
        }
        return try run(closing[0], Array(closing.dropFirst()) + arguments, in: directory)
    }

    init() throws {
        guard let bin = Self.binDirectory else { throw LivePostfixError("PostgreSQL is not installed") }
        directory = URL(fileURLWithPath: "/tmp/swiftpostmap-pg-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        if getuid() == 0, let owner = getpwnam("postgres")?.pointee {
            chown(directory.path, owner.pw_uid, owner.pw_gid)
        }
        let data = directory.appendingPathComponent("data").path
        let initialised = try Self.asOwner(
            ["\(bin)/initdb", "-D", data, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"], in: directory)
        guard initialised.status == 0 else {
            try? FileManager.default.removeItem(at: directory)
            throw LivePostfixError("initdb failed: \(initialised)")
        }
        // One role must log in with a password (the authentication test); everyone else is
        // trusted, on this private server only.
        let hba = """
            local all all trust
            host all secured 127.0.0.1/32 scram-sha-256
            host all all 127.0.0.1/32 trust

            """
        try hba.write(toFile: data + "/pg_hba.conf", atomically: true, encoding: .utf8)
        var started: Int? = nil
        var lastFailure = ""
        for _ in 0..<8 {
            let candidate = Int.random(in: 20_000..<60_000)
            let options =
                "-c listen_addresses=127.0.0.1 -p \(candidate) -k \(directory.path) -c fsync=off "
                + "-c synchronous_commit=off -c full_page_writes=off"
            let result = try Self.asOwner(
                [
                    "\(bin)/pg_ctl", "-D", data, "-o", options, "-l", directory.appendingPathComponent("log").path,
                    "-w", "-t", "30", "start",
                ], in: directory)
            if result.status == 0 {
                started = candidate
                break
            }
            lastFailure = "\(result)"
        }
        guard let started else {
            try? FileManager.default.removeItem(at: directory)
            throw LivePostfixError("pg_ctl start failed: \(lastFailure)")
        }
        port = started
        try psql("CREATE DATABASE mail", database: "postgres")
    }

    /// Runs `sql` with psql as `user` (ON_ERROR_STOP), returning its result.
    @discardableResult
    func psql(_ sql: String, database: String = "mail", user: String = "postgres") throws -> ProcessResult {
        guard let bin = Self.binDirectory else { throw LivePostfixError("PostgreSQL is not installed") }
        let result = try run(
            "\(bin)/psql",
            [
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d",
                database, "-c", sql,
            ])
        guard result.status == 0 else { throw LivePostfixError("psql \(sql): \(result)") }
        return result
    }

    /// Stops the server (immediately: nothing here needs to survive) and removes its files.
    func stop() {
        guard running, let bin = Self.binDirectory else { return }
        running = false
        _ = try? Self.asOwner(
            ["\(bin)/pg_ctl", "-D", directory.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}

/// Runs `body` with a fresh server, stopped and removed afterwards whatever happens.
func withPostgreSQLServer<T>(_ body: (PostgreSQLServer) throws -> T) throws -> T {
    let server = try PostgreSQLServer()
    defer { server.stop() }
    return try body(server)
}

/// PostgreSQL and Postfix's pgsql client are installed (`make test` installs them), or we
/// run under CI, where their absence fails the tests.
let postgresAvailable =
    (PostgreSQLServer.binDirectory != nil && FileManager.default.fileExists(atPath: "/usr/lib/postfix/postfix-pgsql.so")
        && oracleInstalled) || runningUnderCI
