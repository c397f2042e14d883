import Foundation
import Testing

@testable import MapCompiler

/// The parts of `pgsql:` maps that need no server: the pgsql_table(5) file, the `%`
/// expansions of `query` and `result_format`, the names `--export` chooses.
@Suite("pgsql_table(5) files and expansions")
struct PgsqlConfigurationTests {
    private func expanded(_ template: String, key: String, value: String? = nil) throws -> String? {
        try expand(Array(template.utf8), key: KeyParts(Array(key.utf8)), value: value.map { Array($0.utf8) }) {
            bytes throws(FatalError) in Array("<".utf8) + bytes + Array(">".utf8)
        }.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("query expansions: %s %u %d %1-%9 %%, and the queries Postfix suppresses")
    func queryExpansions() throws {
        let query = "SELECT v FROM t WHERE k='%s' AND u='%u' AND d='%d' AND tld='%1' AND l2='%2' AND p='%%'"
        #expect(
            try expanded(query, key: "joe@mail.example.com")
                == "SELECT v FROM t WHERE k='<joe@mail.example.com>' AND u='<joe>' AND d='<mail.example.com>' "
                + "AND tld='<com>' AND l2='<example>' AND p='%'")
        // No domain: %d suppresses the query; %u is then the whole key.
        #expect(try expanded("x %d", key: "joe") == nil)
        #expect(try expanded("x %u", key: "joe") == "x <joe>")
        // An empty local part suppresses %u; too few labels suppress %3.
        #expect(try expanded("x %u", key: "@example.com") == nil)
        #expect(try expanded("x %3", key: "joe@example.com") == nil)
        // Unknown escapes stay as they are.
        #expect(try expanded("50%x %s", key: "k") == "50%x <k>")
    }

    @Test("result_format: lower case takes the result, upper case the key")
    func resultFormat() throws {
        #expect(try expanded("smtp:[%s]", key: "k@example.com", value: "mx.example.net") == "smtp:[<mx.example.net>]")
        #expect(try expanded("%u+%D", key: "k@example.com", value: "box@store.test") == "<box>+<example.com>")
        #expect(try expanded("%d", key: "k@example.com", value: "unqualified") == nil)
    }

    @Test("the file: main.cf syntax, hosts in every form, the obsolete query settings, the export markers")
    func configurationFile() throws {
        try withTemporaryDirectory { root in
            let file = try write(
                """
                # comment
                # swiftpostmap: table "virtual"
                # swiftpostmap: source /etc/postfix/virtual
                hosts = inet:db1.test:5433 unix:/run/postgresql,
                    db2.test postgresql://u@db3.test/mail
                user = postfix
                password = it's\\secret
                dbname = mail
                select_field = value
                table = aliases
                where_field = key
                additional_conditions = AND active
                domain = Example.COM, example.net
                expansion_limit = 2

                """, to: "pg.cf", in: root)
            let configuration = try PgsqlConfiguration.load(path: file.path)
            #expect(
                configuration.hosts == [
                    "inet:db1.test:5433", "unix:/run/postgresql", "db2.test", "postgresql://u@db3.test/mail",
                ])
            #expect(configuration.query == "SELECT value FROM aliases WHERE key = '%s' AND active")
            #expect(configuration.domains == ["example.com", "example.net"])
            #expect(configuration.expansionLimit == 2)
            #expect(configuration.encoding == "LATIN1")
            #expect(configuration.exportedTable == "\"virtual\"")
            #expect(configuration.exportedSource == "/etc/postfix/virtual")
            let credentials = "dbname='mail' user='postfix' password='it\\'s\\\\secret'"
            #expect(
                configuration.connectionStrings == [
                    "host='db1.test' port='5433' " + credentials, "host='/run/postgresql' " + credentials,
                    "host='db2.test' " + credentials, "postgresql://u@db3.test/mail",
                ])
            #expect(
                PgsqlConfiguration(
                    path: "x", hosts: ["inet:::1:5433", "::1", "[::1]"], query: "q", resultFormat: "%s", domains: [],
                    expansionLimit: 0
                ).connectionStrings == ["host='::1' port='5433'", "host='::1'", "host='[::1]'"])
            for format in ["%s %", "%x", ""] {
                let bad = try write(
                    "dbname = mail\nquery = SELECT 1\nresult_format = \(format)\n", to: "format.cf", in: root)
                #expect(throws: FatalError.self, "\(format)") { try PgsqlConfiguration.load(path: bad.path) }
            }
            // Postfix's own words for the settings it insists on, in its order (checked
            // against postmap -q … pgsql:FILE).
            for (text, missing) in [
                ("hosts = x\nquery = SELECT 1\n", "dbname"), ("dbname = mail\n", "table"),
                ("dbname = mail\ntable = t\n", "select_field"),
                ("dbname = mail\ntable = t\nselect_field = v\n", "where_field"),
            ] {
                let file = try write(text, to: "bad.cf", in: root)
                #expect(throws: FatalError("\(file.path): bad string length 0 < 1: \(missing) = ")) {
                    try PgsqlConfiguration.load(path: file.path)
                }
            }
        }
    }

    @Test("the names --export chooses")
    func exportNames() {
        #expect(defaultExportTable(forSource: "/etc/postfix/virtual") == "virtual")
        #expect(defaultExportTable(forSource: "pgsql-Virtual.map") == "pgsql_virtual_map")
        #expect(defaultExportTable(forSource: "2024-aliases") == "map_2024_aliases")
        #expect(defaultExportTable(forSource: String(repeating: "x", count: 90)).count == maximumExportTableLength)
        #expect(hostsSetting(host: "127.0.0.1", port: "5433") == "inet:127.0.0.1:5433")
        #expect(hostsSetting(host: "/run/postgresql", port: "5432") == "unix:/run/postgresql")
        #expect(
            hostsSetting(host: "/tmp/pg", port: "6000", user: "post fix", database: "mail")
                == "postgresql://post%20fix@%2Ftmp%2Fpg:6000/mail")
        #expect(
            hostsSetting(host: "/tmp/pg", port: "6000", user: "u", database: "mail", password: "p@ss w")
                == "postgresql://u:p%40ss%20w@%2Ftmp%2Fpg:6000/mail")
        #expect(isPlainTableName("virtual_2") && isPlainTableName("Virtual"))
        #expect(!isPlainTableName("%s") && !isPlainTableName("2x") && !isPlainTableName("a-b") && !isPlainTableName(""))
    }
}
