import Foundation
import Testing

/// `--scan-config` and `--sync` over a configuration with every reference form: comma and
/// whitespace lists, continuation lines, `$parameter` expansion, `proxy:`, a master.cf `-o`,
/// a cache, aliases; tables missing, stale and fresh. The synced tables are read by the real
/// postmap and postalias, and a second `--sync` changes nothing.
@Suite("Configuration scan and sync", .serialized, .enabled(if: oracleAvailable, "Postfix is not installed"))
struct ConfigurationSyncTests {
    /// The configuration directory `dir/etc` and its sources; returns it.
    private func makeConfiguration(in dir: URL) throws -> URL {
        let etc = dir.appendingPathComponent("etc")
        try FileManager.default.createDirectory(at: etc, withIntermediateDirectories: true)
        let main = """
            compatibility_level = 3.6
            myhostname = mx.example.com
            alias_maps = hash:$config_directory/aliases
            alias_database = hash:$config_directory/aliases
            virtual_alias_maps = hash:$config_directory/virtual,
                proxy:btree:$config_directory/virtual2 lmdb:$config_directory/already
            transport_maps = $my_transport
            my_transport = hash:$config_directory/transport
            smtpd_recipient_restrictions = permit_mynetworks,
                check_recipient_access hash:$config_directory/access, reject_unauth_destination
            address_verify_map = btree:$config_directory/verify_cache

            """
        let file = try write(main, to: "main.cf", in: etc)
        try FileManager.default.setAttributes(
            [.modificationDate: Date(timeIntervalSinceNow: -120)], ofItemAtPath: file.path)
        try write(
            "submission inet n - y - - smtpd\n  -o smtpd_sender_login_maps=hash:$config_directory/senders\n",
            to: "master.cf", in: etc)
        try write("root: admin@example.com\npostmaster: root\n", to: "aliases", in: etc)
        try write("Info@Example.com joe@example.net\n", to: "virtual", in: etc)
        try write("sales@example.com jane@example.net\n", to: "virtual2", in: etc)
        try write("old@example.com new@example.net\n", to: "already", in: etc)
        try write("example.org smtp:[relay.example.net]\n", to: "transport", in: etc)
        try write("joe@example.com joe\n", to: "senders", in: etc)
        // Fresh: virtual (and already, an lmdb table); stale: transport; missing: the rest.
        for map in ["hash:virtual", "lmdb:already", "hash:transport"] {
            #expect(try run(realPostmap, ["-c", etc.path, map], in: etc).status == 0)
        }
        try write("example.org smtp:[relay2.example.net]\n", to: "transport", in: etc)
        return etc
    }

    @Test("--scan-config lists every Berkeley DB reference with its state")
    func scan() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let etc = try makeConfiguration(in: dir)
            let e = etc.path
            let result = try swiftpostmap(["--scan-config", "-c", e], in: dir)
            #expect(result.status == 1, "\(result)")
            #expect(
                result.out == """
                    main.cf:3: alias_maps: hash:\(e)/aliases: lmdb:\(e)/aliases or cdb:\(e)/aliases; source \(e)/aliases, table \(e)/aliases.db missing
                    main.cf:4: alias_database: hash:\(e)/aliases: lmdb:\(e)/aliases or cdb:\(e)/aliases; source \(e)/aliases, table \(e)/aliases.db missing
                    main.cf:5: virtual_alias_maps: hash:\(e)/virtual: lmdb:\(e)/virtual or cdb:\(e)/virtual; source \(e)/virtual, table \(e)/virtual.db fresh
                    main.cf:5: virtual_alias_maps: proxy:btree:\(e)/virtual2: proxy:lmdb:\(e)/virtual2 or proxy:cdb:\(e)/virtual2; source \(e)/virtual2, table \(e)/virtual2.db missing
                    main.cf:8: my_transport: hash:\(e)/transport: lmdb:\(e)/transport or cdb:\(e)/transport; source \(e)/transport, table \(e)/transport.db stale (1 difference)
                    main.cf:9: smtpd_recipient_restrictions: hash:\(e)/access: lmdb:\(e)/access or cdb:\(e)/access; no source \(e)/access
                    main.cf:11: address_verify_map: btree:\(e)/verify_cache: lmdb:\(e)/verify_cache (a cache Postfix writes itself; no source)
                    master.cf:2 (submission): smtpd_sender_login_maps: hash:\(e)/senders: lmdb:\(e)/senders or cdb:\(e)/senders; source \(e)/senders, table \(e)/senders.db missing

                    """, "\(result)")
            #expect(result.err.contains("8 Berkeley DB reference(s) to 7 table(s)"), "\(result)")
            let json = try swiftpostmap(["--scan-config", "--json", "-c", e], in: dir)
            let objects = json.out.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(objects.count == 8)
            #expect(objects.filter { $0["state"] as? String == "missing" }.count == 4)
            #expect(objects.contains { $0["proxy"] as? Bool == true && $0["type"] as? String == "btree" })
            #expect(objects.contains { $0["service"] as? String == "submission" })
        }
    }

    @Test("--sync builds what is stale or missing, once; --dry-run only says so")
    func sync() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let etc = try makeConfiguration(in: dir)
            let e = etc.path
            let dry = try swiftpostmap(["--sync", "--dry-run", "-c", e], in: dir)
            #expect(dry.status == 1, "\(dry)")
            #expect(dry.out.contains("hash:\(e)/transport: would build (stale (1 difference))"), "\(dry)")
            #expect(dry.out.contains("hash:\(e)/virtual: fresh"), "\(dry)")
            #expect(!FileManager.default.fileExists(atPath: e + "/aliases.db"))
            let virtualBefore = try FileManager.default.attributesOfItem(atPath: e + "/virtual.db")

            let synced = try swiftpostmap(["--sync", "-c", e], in: dir)
            #expect(synced.status == 0, "\(synced)")
            #expect(synced.out.contains("btree:\(e)/virtual2: built (was missing)"), "\(synced)")
            #expect(synced.out.contains("hash:\(e)/access: skipped: no source"), "\(synced)")
            // The tables as the real Postfix tools read them.
            let aliases = try run(realPostalias, ["-c", e, "-q", "postmaster", "hash:\(e)/aliases"], in: dir)
            #expect(aliases.out == "root\n", "\(aliases)")
            let transport = try run(realPostmap, ["-c", e, "-q", "example.org", "hash:\(e)/transport"], in: dir)
            #expect(transport.out == "smtp:[relay2.example.net]\n", "\(transport)")
            let proxied = try run(realPostmap, ["-c", e, "-q", "SALES@example.com", "btree:\(e)/virtual2"], in: dir)
            #expect(proxied.out == "jane@example.net\n", "\(proxied)")
            #expect(try run(realPostmap, ["-c", e, "-q", "joe@example.com", "hash:\(e)/senders"], in: dir).status == 0)
            // The fresh table was not rewritten.
            let virtualAfter = try FileManager.default.attributesOfItem(atPath: e + "/virtual.db")
            #expect(virtualAfter[.systemFileNumber] as? Int == virtualBefore[.systemFileNumber] as? Int)
            #expect(virtualAfter[.modificationDate] as? Date == virtualBefore[.modificationDate] as? Date)

            // A second sync changes nothing; --dry-run now says everything is fresh.
            let transportBefore = try FileManager.default.attributesOfItem(atPath: e + "/transport.db")
            let again = try swiftpostmap(["--sync", "-c", e], in: dir)
            #expect(again.status == 0, "\(again)")
            #expect(!again.out.contains("built"), "\(again)")
            let transportAfter = try FileManager.default.attributesOfItem(atPath: e + "/transport.db")
            #expect(transportAfter[.systemFileNumber] as? Int == transportBefore[.systemFileNumber] as? Int)
            #expect(try swiftpostmap(["--sync", "--dry-run", "-c", e], in: dir).status == 0)
        }
    }

    @Test("--sync --to lmdb builds lmdb tables and prints the postconf commands that switch to them")
    func migrate() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let etc = try makeConfiguration(in: dir)
            let e = etc.path
            let result = try swiftpostmap(["--sync", "--to", "lmdb", "-c", e], in: dir)
            #expect(result.status == 0, "\(result)")
            for map in ["aliases", "virtual", "virtual2", "transport", "senders"] {
                #expect(FileManager.default.fileExists(atPath: "\(e)/\(map).lmdb"), "\(map).lmdb")
            }
            let aliases = try run(realPostalias, ["-c", e, "-q", "root", "lmdb:\(e)/aliases"], in: dir)
            #expect(aliases.out == "admin@example.com\n", "\(aliases)")
            let commands = result.out.split(separator: "\n").filter { $0.hasPrefix("postconf ") }
            // Six parameters switch; smtpd_recipient_restrictions names `access`, which has no
            // source and so no lmdb table: it is left as it is, with a warning.
            #expect(commands.count == 6, "\(result)")
            #expect(result.err.contains("not switching smtpd_recipient_restrictions"), "\(result)")
            // Each command as the real postconf runs it, against this configuration.
            for command in commands {
                let line = String(command)
                let option = line.hasPrefix("postconf -P") ? "-P" : "-e"
                let setting = String(line.dropFirst("postconf -X '".count).dropLast())
                let applied = try run("/usr/sbin/postconf", ["-c", e, option, setting], in: dir)
                #expect(applied.status == 0, "\(line): \(applied)")
            }
            let main = try String(contentsOfFile: e + "/main.cf", encoding: .utf8)
            #expect(main.contains("lmdb:$config_directory/virtual"), "\(main)")
            #expect(main.contains("proxy:lmdb:$config_directory/virtual2"), "\(main)")
            #expect(main.contains("address_verify_map = lmdb:$config_directory/verify_cache"), "\(main)")
            let master = try String(contentsOfFile: e + "/master.cf", encoding: .utf8)
            #expect(master.contains("smtpd_sender_login_maps=lmdb:$config_directory/senders"), "\(master)")
            // The one Berkeley DB reference left is the table without a source; the rest is fresh.
            let scan = try swiftpostmap(["--scan-config", "-c", e], in: dir)
            #expect(scan.status == 1, "\(scan)")
            #expect(scan.out.split(separator: "\n").count == 1, "\(scan)")
            #expect(scan.out.hasPrefix("main.cf:8: smtpd_recipient_restrictions: hash:\(e)/access:"), "\(scan)")
            let dry = try swiftpostmap(["--sync", "--dry-run", "-c", e], in: dir)
            #expect(dry.status == 0, "\(dry)")
        }
    }

    /// Review findings: aliases named through another parameter are still built with
    /// postalias; `--to` does not switch a parameter whose table it could not build.
    @Test("aliases through a $parameter, and --to with a table that has no source")
    func aliasesThroughAParameterAndMissingSources() throws {
        #expect(oracleInstalled, "the real postmap must be installed under CI")
        guard oracleInstalled else { return }
        try withTemporaryDirectory { dir in
            let etc = dir.appendingPathComponent("etc")
            try FileManager.default.createDirectory(at: etc, withIntermediateDirectories: true)
            let main = """
                compatibility_level = 3.6
                myhostname = mx.example.com
                my_aliases = hash:$config_directory/aliases
                alias_maps = $my_aliases
                alias_database = $my_aliases
                virtual_alias_maps = hash:$config_directory/gone

                """
            let file = try write(main, to: "main.cf", in: etc)
            try FileManager.default.setAttributes(
                [.modificationDate: Date(timeIntervalSinceNow: -120)], ofItemAtPath: file.path)
            try write("root: admin@example.com\n", to: "aliases", in: etc)
            let e = etc.path
            let synced = try swiftpostmap(["--sync", "--to", "cdb", "-c", e], in: dir)
            #expect(synced.status == 0, "\(synced)")
            let root = try run(realPostalias, ["-c", e, "-q", "root", "cdb:\(e)/aliases"], in: dir)
            #expect(root.out == "admin@example.com\n", "\(root)")
            #expect(synced.out.contains("postconf -e 'my_aliases = cdb:$config_directory/aliases'"), "\(synced)")
            #expect(!synced.out.contains("virtual_alias_maps"), "\(synced)")
            #expect(synced.err.contains("not switching virtual_alias_maps"), "\(synced)")
        }
    }
}
