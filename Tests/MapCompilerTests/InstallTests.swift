import Foundation
import Testing

/// `make install`, `make install-compat`, `make uninstall` and `make deb`, run for real into
/// scratch directories (and, for the package, a scratch dpkg root).
@Suite("Installation and the Debian package", .serialized)
struct InstallTests {
    /// The binary the tests install: the release build under `make test`.
    private var binary: String { releaseBinary ?? swiftpostmapPath }

    private func make(_ arguments: [String]) throws -> ProcessResult {
        try run("/usr/bin/make", ["-s", "-C", packageRoot.path] + arguments + ["INSTALL_BIN=\(binary)"])
    }

    /// Every regular file and symbolic link under `root`, relative to it.
    private func files(under root: URL) -> Set<String> {
        var found: Set<String> = []
        guard let walker = FileManager.default.enumerator(atPath: root.path) else { return found }
        while let relative = walker.nextObject() as? String {
            let type = walker.fileAttributes?[.type] as? FileAttributeType
            if type != .typeDirectory { found.insert(relative) }
        }
        return found
    }

    @Test("make install DESTDIR= puts every file in place; make uninstall removes exactly them")
    func stagedInstall() throws {
        try withTemporaryDirectory { root in
            let stage = root.appendingPathComponent("stage")
            let other = stage.appendingPathComponent("usr/share/man/man1/other.1")
            try FileManager.default.createDirectory(
                at: other.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data("not ours\n".utf8).write(to: other)

            let installed = try make(["install", "DESTDIR=\(stage.path)", "PREFIX=/usr"])
            #expect(installed.status == 0, "\(installed)")
            let expected: Set<String> = [
                "usr/bin/swiftpostmap", "usr/share/man/man1/swiftpostmap.1",
                "usr/share/bash-completion/completions/swiftpostmap", "usr/share/zsh/site-functions/_swiftpostmap",
                "usr/share/fish/vendor_completions.d/swiftpostmap.fish", "usr/share/swiftpostmap/manifest",
                "usr/share/man/man1/other.1",
            ]
            #expect(files(under: stage) == expected)
            let manifest = try String(
                contentsOf: stage.appendingPathComponent("usr/share/swiftpostmap/manifest"), encoding: .utf8)
            #expect(
                Set(manifest.split(separator: "\n").map { String($0.dropFirst()) })
                    == expected.subtracting(["usr/share/man/man1/other.1"]))
            let program = stage.appendingPathComponent("usr/bin/swiftpostmap").path
            #expect(FileManager.default.isExecutableFile(atPath: program))
            let version = try run(program, ["--version"])
            #expect(version.status == 0 && version.out.hasPrefix("swiftpostmap "), "\(version)")
            // The installed man page is the one that renders (ManualAndCompletionTests).
            let page = try run(
                "/usr/bin/man", ["-l", stage.appendingPathComponent("usr/share/man/man1/swiftpostmap.1").path],
                environment: ["MANWIDTH": "80"])
            #expect(page.status == 0 && page.out.contains("SYNOPSIS"), "\(page.err)")

            let removed = try make(["uninstall", "DESTDIR=\(stage.path)", "PREFIX=/usr"])
            #expect(removed.status == 0, "\(removed)")
            #expect(files(under: stage) == ["usr/share/man/man1/other.1"], "only what was installed is removed")
            let again = try make(["uninstall", "DESTDIR=\(stage.path)", "PREFIX=/usr"])
            #expect(again.status == 0 && again.out.contains("nothing to remove"), "\(again)")
        }
    }

    @Test("make install-compat links postmap and postalias, keeps a real postmap unless forced, and puts it back")
    func compatibilityLinks() throws {
        try withTemporaryDirectory { root in
            let prefix = root.appendingPathComponent("prefix")
            let sbin = root.appendingPathComponent("sbin")
            let settings = ["PREFIX=\(prefix.path)", "COMPATDIR=\(sbin.path)"]
            #expect(try make(["install"] + settings).status == 0)
            // A directory where Postfix's postmap already is.
            try FileManager.default.createDirectory(at: sbin, withIntermediateDirectories: true)
            let realPostmap = sbin.appendingPathComponent("postmap")
            try Data("#!/bin/sh\necho the real postmap\n".utf8).write(to: realPostmap)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: realPostmap.path)

            // postalias there is a link to something that does not exist (a staging root).
            try FileManager.default.createSymbolicLink(
                atPath: sbin.appendingPathComponent("postalias").path, withDestinationPath: "/nonexistent/postalias")

            let refused = try make(["install-compat"] + settings)
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.err.contains("\(realPostmap.path) exists"), "\(refused)")
            #expect(try run(realPostmap.path, []).out == "the real postmap\n", "left as it was")

            let forced = try make(["install-compat", "FORCE=1"] + settings)
            #expect(forced.status == 0, "\(forced)")
            let target = prefix.appendingPathComponent("bin/swiftpostmap").path
            for name in ["postmap", "postalias"] {
                let link = sbin.appendingPathComponent(name).path
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == target)
            }
            // Again, with the prefix spelled differently: the links are recognised as ours and
            // the real postmap moved aside stays what it was.
            let twice = try make(["install-compat", "FORCE=1", "PREFIX=\(prefix.path)/", "COMPATDIR=\(sbin.path)"])
            #expect(twice.status == 0, "\(twice)")
            let aside = sbin.appendingPathComponent("postmap.before-swiftpostmap").path
            #expect(try run(aside, []).out == "the real postmap\n")
            // Through the link, the program is postmap: its name in messages and its usage.
            let usage = try run(sbin.appendingPathComponent("postalias").path, [])
            #expect(usage.status == 1)
            #expect(usage.err.hasPrefix("postalias: fatal: usage: postalias [-Nfinoprsuvw]"), "\(usage)")

            #expect(try make(["uninstall"] + settings).status == 0)
            #expect(try run(realPostmap.path, []).out == "the real postmap\n", "the original is back")
            #expect(
                try FileManager.default.destinationOfSymbolicLink(atPath: sbin.appendingPathComponent("postalias").path)
                    == "/nonexistent/postalias", "the dangling original is back too")
            #expect(files(under: prefix).isEmpty)
            #expect(files(under: sbin) == ["postmap", "postalias"])
        }
    }

    @Test("make deb builds a package that installs into a dpkg root, runs, and removes cleanly")
    func debianPackage() throws {
        try withTemporaryDirectory { root in
            let built = try make(["deb", "DEBDIR=\(root.path)"])
            #expect(built.status == 0, "\(built)")
            let deb = built.out.trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(deb.hasPrefix(root.path) && deb.hasSuffix(".deb"), "\(built)")
            let fields = try run("/usr/bin/dpkg-deb", ["-f", deb, "Package", "Depends", "Architecture"])
            #expect(fields.out.contains("Package: swiftpostmap"), "\(fields)")
            #expect(fields.out.contains("Depends: libc6 (>= "), "static: glibc is its only dependency: \(fields)")
            let listing = try run("/usr/bin/dpkg-deb", ["-c", deb]).out
            for path in [
                "./usr/bin/swiftpostmap", "./usr/share/man/man1/swiftpostmap.1.gz",
                "./usr/share/bash-completion/completions/swiftpostmap",
                "./usr/share/zsh/vendor-completions/_swiftpostmap",
                "./usr/share/fish/vendor_completions.d/swiftpostmap.fish", "./usr/share/doc/swiftpostmap/copyright",
            ] {
                #expect(listing.contains(" \(path)\n"), "\(path) in the package: \(listing)")
            }

            // A dpkg database of its own: the running system is left alone.
            let system = root.appendingPathComponent("root")
            for directory in ["var/lib/dpkg/info", "var/lib/dpkg/updates"] {
                try FileManager.default.createDirectory(
                    at: system.appendingPathComponent(directory), withIntermediateDirectories: true)
            }
            try Data().write(to: system.appendingPathComponent("var/lib/dpkg/status"))
            let dpkg = "/usr/bin/dpkg"
            // libc6 is not in the scratch database; the binary uses the running system's.
            let installed = try run(dpkg, ["--root=\(system.path)", "--force-depends", "-i", deb])
            #expect(installed.status == 0, "\(installed)")
            let status = try run(dpkg, ["--root=\(system.path)", "-s", "swiftpostmap"])
            #expect(status.out.contains("Status: install ok installed"), "\(status)")
            let program = system.appendingPathComponent("usr/bin/swiftpostmap").path
            try write("Info@Example.COM joe\n", to: "virtual", in: root)
            let config = try makeConfigDirectory(in: root)
            #expect(try run(program, ["-c", config.path, "hash:virtual"], in: root).status == 0)
            let query = try run(program, ["-c", config.path, "-q", "info@example.com", "hash:virtual"], in: root)
            #expect(query.out == "joe\n", "\(query)")
            let page = try run(
                "/usr/bin/man",
                ["-l", system.appendingPathComponent("usr/share/man/man1/swiftpostmap.1.gz").path])
            #expect(page.status == 0 && page.out.contains("swiftpostmap"), "\(page.err)")

            let removed = try run(dpkg, ["--root=\(system.path)", "-r", "swiftpostmap"])
            #expect(removed.status == 0, "\(removed)")
            #expect(files(under: system.appendingPathComponent("usr")).isEmpty)
        }
    }
}
