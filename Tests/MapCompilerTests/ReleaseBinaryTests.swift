import Foundation
import Testing

/// The release binary (`make build`), which `make test` passes in `SWIFTPOSTMAP_RELEASE_BIN`:
/// one file that needs only glibc, so it runs on a mail server without Swift or libdb, and
/// still writes tables Postfix reads, looks them up, and finds this machine's users.
@Suite(
    "Release binary", .serialized,
    .enabled(if: releaseBinary != nil || runningUnderCI, "SWIFTPOSTMAP_RELEASE_BIN is not set (make test sets it)"))
struct ReleaseBinaryTests {
    @Test("needs only glibc")
    func needsOnlyGlibc() throws {
        let binary = try #require(releaseBinary, "make test must set SWIFTPOSTMAP_RELEASE_BIN")
        let linked = try run("/usr/bin/ldd", [binary])
        #expect(linked.status == 0, "\(linked)")
        let libraries = linked.out.split(separator: "\n").compactMap { line in
            line.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init)
        }
        let glibc: Set<String> = ["linux-vdso.so.1", "libc.so.6", "libm.so.6", "libgcc_s.so.1"]
        #expect(libraries.contains("libc.so.6"), "\(linked.out)")
        for library in libraries where !glibc.contains(library) && !library.hasPrefix("/lib64/ld-linux") {
            Issue.record("the release binary needs \(library): \(linked.out)")
        }
    }

    @Test("builds a table postmap reads, answers queries, resolves local users")
    func works() throws {
        let binary = try #require(releaseBinary, "make test must set SWIFTPOSTMAP_RELEASE_BIN")
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { root in
            let config = try backdated(makeConfigDirectory(in: root))
            try write("Info@Example.COM\tjoe\n@example.net\tsales@example.org\n", to: "virtual", in: root)
            let built = try run(binary, ["-c", config.path, "hash:virtual"], in: root)
            #expect(built == ProcessResult(status: 0, stdout: Data(), stderr: Data()))
            let listed = try run(realPostmap, ["-c", config.path, "-s", "hash:virtual"], in: root)
            #expect(
                sortedLines(listed.stdout).filter { !$0.isEmpty }
                    == ["@example.net\tsales@example.org", "info@example.com\tjoe"].map { Data($0.utf8) })
            let query = try run(binary, ["-c", config.path, "-q", "INFO@example.com", "hash:virtual"], in: root)
            #expect(query == ProcessResult(status: 0, stdout: Data("joe\n".utf8), stderr: Data()))
            // Many getpwnam calls through every NSS module of this machine (a static glibc
            // crashed in libnss_systemd on the seventeenth).
            let strangers = (0..<40).map { "no-such-user-\($0)@localhost" }
            let users = try run(
                binary, ["-c", config.path, "--resolve", "--passwd"] + strangers + ["root@localhost"], in: root)
            #expect(users.status == 1, "\(users)")
            #expect(users.out.contains("local(8) user root"), "\(users)")
            #expect(users.out.contains("User unknown in local recipient table"), "\(users)")
        }
    }
}

/// `$SWIFTPOSTMAP_RELEASE_BIN`, when set.
let releaseBinary: String? = {
    guard let path = ProcessInfo.processInfo.environment["SWIFTPOSTMAP_RELEASE_BIN"], !path.isEmpty else { return nil }
    return path
}()
