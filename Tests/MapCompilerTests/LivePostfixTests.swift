import Foundation
import Testing

/// Run the live oracle when Postfix can be started here, and always under CI (where a missing
/// Postfix is then a failure, not a skip).
let liveOracleAvailable = LivePostfix.isAvailable || runningUnderCI

let liveFixtures = packageRoot.appendingPathComponent("Fixtures/live")

/// The oracle's configuration: Fixtures/live, compiled with the real postmap and postalias.
func liveFixtureConfiguration(compiler: LiveMapCompiler = .realPostfix) throws -> LivePostfixConfiguration {
    try .fixture(
        in: liveFixtures, maps: ["routing", "vmailbox", "transport"], aliases: ["aliases"], compiler: compiler)
}

/// Every probe of Fixtures/live/cases against a real Postfix 3.7 on 127.0.0.1: what it did
/// must be what the case file records. With LIVE_POSTFIX_OBSERVED=FILE the observations are
/// also written to FILE in the case-file form.
@Suite("Live Postfix oracle", .serialized, .enabled(if: liveOracleAvailable, "Postfix is not installed, or not root"))
struct LivePostfixTests {
    @Test func caseSetMatchesTheRecordedOutcomes() throws {
        let file = try LiveCaseFile(contentsOf: liveFixtures.appendingPathComponent("cases"))
        try #require(!file.cases.isEmpty)
        var scratch: URL?
        var master: Int32?
        var ours: OfflineVerdicts?
        let run = try LivePostfix.with(try liveFixtureConfiguration()) { postfix in
            scratch = postfix.scratch
            master = postfix.masterPID
            let run = try postfix.probe(file.cases.map(\.address))
            // What swiftpostmap says offline, from the same configuration directory.
            ours = try OfflineVerdicts(configDirectory: postfix.configDirectory, addresses: file.cases.map(\.address))
            return run
        }
        if let path = ProcessInfo.processInfo.environment["LIVE_POSTFIX_OBSERVED"], !path.isEmpty {
            try LiveCaseFile.render(file.cases, run).write(toFile: path, atomically: true, encoding: .utf8)
        }

        try #require(run.probes.count == file.cases.count)
        for (item, probe) in zip(file.cases, run.probes) {
            #expect(
                probe.outcome == item.expected,
                """
                cases:\(item.line) \(item.label) \(item.address)
                observed: \(probe.outcome)
                log:
                \(probe.logLines.joined(separator: "\n"))
                """)
            #expect(probe.warnings.map(\.description) == item.warnings, "cases:\(item.line) \(item.label) warnings")
        }
        #expect(run.globalWarnings.map(\.description) == file.globalWarnings)

        // --resolve names the outcome Postfix produced, and --lint reports an error at the
        // entry of every probe whose mail was not delivered, and none about a delivered one.
        let verdicts = try #require(ours)
        #expect(verdicts.lintExitStatus == 1)
        for (item, probe) in zip(file.cases, run.probes) {
            let resolution = try #require(
                verdicts.resolutions[item.address.lowercased()], "no --resolve for \(item.address)")
            let caseName = "cases:\(item.line) \(item.label) \(item.address)"
            if OfflineVerdicts.beyondTheModel[item.label] == nil {
                #expect(
                    OfflineVerdicts.outcome(probe.outcome) == resolution.outcome,
                    "\(caseName): Postfix \(probe.outcome); --resolve \(resolution.raw)")
            }
            guard let line = resolution.entryLine else { continue }
            let errors = verdicts.lintErrors.filter { $0.line == line }
            if OfflineVerdicts.delivered(probe.outcome) {
                // A finding is about the mail it starts with ("mail to X …", "X → …", "X: …").
                let probe = item.address.lowercased()
                let aboutThis = errors.filter {
                    let text = $0.message.lowercased()
                    return ["mail to \(probe) ", "\(probe) ", "\(probe):"].contains { text.hasPrefix($0) }
                }
                #expect(aboutThis.isEmpty, "\(caseName): delivered by Postfix, but lint says \(aboutThis)")
            } else if OfflineVerdicts.beyondTheModel[item.label] == nil {
                #expect(!errors.isEmpty, "\(caseName): not delivered by Postfix, but no lint error at routing:\(line)")
            }
        }
        // Every lint error is at an entry that takes part in mail Postfix did not deliver.
        let undeliveredLines = Set(
            zip(file.cases, run.probes).compactMap { item, probe in
                OfflineVerdicts.delivered(probe.outcome) ? nil : verdicts.resolutions[item.address.lowercased()]
            }.flatMap(\.virtualLines))
        for error in verdicts.lintErrors where error.file.hasSuffix("/routing") {
            #expect(
                undeliveredLines.contains(error.line) || error.message.contains("no-such-user"),
                "lint error at routing:\(error.line) for mail Postfix delivered: \(error.message)")
        }

        // Stopped and cleaned up.
        let directory = try #require(scratch)
        #expect(!FileManager.default.fileExists(atPath: directory.path))
        #expect(master.map { !LivePostfix.isRunning($0) } ?? false)
        #expect(LivePostfix.processes(workingIn: directory).isEmpty)
    }
}

/// The same case set with every table written by swiftpostmap: a running Postfix must not
/// be able to tell them from postmap's, so every probe ends exactly as recorded.
@Suite(
    "Live Postfix reads swiftpostmap's tables", .serialized,
    .enabled(if: liveOracleAvailable, "Postfix is not installed, or not root"))
struct LivePostfixOurTablesTests {
    @Test func caseSetMatchesWithOurTables() throws {
        let file = try LiveCaseFile(contentsOf: liveFixtures.appendingPathComponent("cases"))
        try #require(!file.cases.isEmpty)
        let run = try LivePostfix.with(try liveFixtureConfiguration(compiler: .swiftpostmap())) { postfix in
            try postfix.probe(file.cases.map(\.address))
        }
        try #require(run.probes.count == file.cases.count)
        for (item, probe) in zip(file.cases, run.probes) {
            #expect(
                probe.outcome == item.expected, "cases:\(item.line) \(item.label) \(item.address): \(probe.outcome)")
        }
    }
}

/// The same case set with every table an lmdb or a cdb table written by swiftpostmap, and
/// main.cf naming them so (Debian's postfix-lmdb and postfix-cdb read them): Postfix must
/// deliver exactly as with postmap's hash tables.
@Suite(
    "Live Postfix reads swiftpostmap's lmdb and cdb tables", .serialized,
    .enabled(if: liveOracleAvailable, "Postfix is not installed, or not root"))
struct LivePostfixOtherTypesTests {
    @Test(arguments: ["lmdb", "cdb"])
    func caseSetMatchesWithTablesOfType(_ type: String) throws {
        let file = try LiveCaseFile(contentsOf: liveFixtures.appendingPathComponent("cases"))
        try #require(!file.cases.isEmpty)
        var configuration = try liveFixtureConfiguration(compiler: .swiftpostmap())
        try #require(configuration.mainCF.contains("hash:"))
        configuration.mainCF = configuration.mainCF.replacingOccurrences(of: "hash:", with: "\(type):")
        configuration.maps = configuration.maps.map { map in
            var map = map
            map.type = type
            return map
        }
        let run = try LivePostfix.with(configuration) { postfix in try postfix.probe(file.cases.map(\.address)) }
        try expectRecordedOutcomes(file, run, label: type)
    }
}

/// Every probe of `run` had the outcome `file` records for it, and Postfix logged the global
/// warnings it records; `label` names the variant in failures.
func expectRecordedOutcomes(_ file: LiveCaseFile, _ run: LiveRun, label: String) throws {
    try #require(run.probes.count == file.cases.count)
    for (item, probe) in zip(file.cases, run.probes) {
        #expect(
            probe.outcome == item.expected,
            "\(label): cases:\(item.line) \(item.label) \(item.address): \(probe.outcome)")
    }
    #expect(run.globalWarnings.map(\.description) == file.globalWarnings, "\(label): global warnings")
}

/// The case-file format, without Postfix.
@Suite("Live Postfix case file")
struct LiveCaseFileTests {
    @Test func everyOutcomeReadsBackAsWritten() throws {
        let file = try LiveCaseFile(contentsOf: liveFixtures.appendingPathComponent("cases"))
        #expect(!file.cases.isEmpty)
        #expect(Set(file.cases.map(\.label)).count == file.cases.count, "labels are unique")
        for item in file.cases {
            #expect(LiveOutcome(parsing: item.expected.description) == item.expected, "cases:\(item.line)")
        }
        let outcomes: [LiveOutcome] = [
            .refusedAtSMTP(stage: .rcpt, code: 550, text: "5.1.1 <a@b.test>: Recipient address rejected: x"),
            .accepted([
                LiveDelivery(recipient: "a@b.test", fate: .deliveredToMailbox(path: "a/")),
                LiveDelivery(recipient: "b@b.test", fate: .deliveredLocally(mailbox: "nobody")),
                LiveDelivery(recipient: "c@c.test", fate: .relayed(transport: "smtp", nexthop: "[gw.test]:25")),
                LiveDelivery(
                    recipient: "d@b.test", fate: .bounced(agent: "virtual", dsn: "5.1.1", text: "unknown user")),
                LiveDelivery(recipient: "e@b.test", fate: .deferred(agent: "virtual", dsn: "4.2.0", text: "x: y")),
                LiveDelivery(recipient: "f@b.test", fate: .discarded(text: "b.test")),
                LiveDelivery(recipient: "g@b.test", fate: .delivered(agent: "pipe", text: "delivered via pipe")),
                LiveDelivery(recipient: "h@b.test", fate: .expired(text: "returned to sender")),
            ]),
            .accepted([]), .incomplete([]),
            .incomplete([LiveDelivery(recipient: "a@b.test", fate: .deliveredToMailbox(path: "mbox"))]),
        ]
        for outcome in outcomes { #expect(LiveOutcome(parsing: outcome.description) == outcome) }
    }

    @Test func logLinesAreParsed() throws {
        let line = try #require(
            LiveLogLine(
                "Dec 03 07:23:29 mx postfix/virtual[4080]: 51F99F781B8: to=<bad@mbox.test>, orig_to=<list@ex.test>, "
                    + "relay=virtual, delay=0.05, delays=0.05/0/0/0, dsn=5.1.1, status=bounced (unknown user: \"bad@mbox.test\")"
            ))
        #expect(line.queueID == "51F99F781B8")
        #expect(
            line.status
                == LiveStatusLine(
                    recipient: "bad@mbox.test", originalRecipient: "list@ex.test", relay: "virtual", dsn: "5.1.1",
                    status: "bounced", text: "unknown user: \"bad@mbox.test\"", agent: "virtual", relayTransport: nil))
        let relayed = try #require(
            LiveLogLine(
                "Dec 03 07:23:38 mx postfix/would-relay-via-smtp/discard[4141]: 2309BF781CD: to=<someone@gateway.test>, "
                    + "relay=none, delay=0.01, delays=0.01/0/0/0, dsn=2.0.0, status=sent ([gw.gateway.test]:2525)"))
        #expect(relayed.status?.relayTransport == "smtp")
        #expect(relayed.status?.text == "[gw.gateway.test]:2525")
        let warning = try #require(
            LiveLogLine(
                "Dec 03 07:21:15 mx postfix/cleanup[3588]: warning: 7712EF78146: unreasonable virtual_alias_maps map "
                    + "nesting for a@loop.test -- message not accepted, try again later"))
        #expect(warning.isWarning && warning.queueID == "7712EF78146" && warning.agent == "cleanup")
        #expect(warning.body.hasPrefix("unreasonable virtual_alias_maps map nesting"))
        #expect(LiveLog.clientPort("connect from unknown[127.0.0.1]:42790") == 42790)
    }
}

/// swiftpostmap's offline answers for a configuration directory: `--lint -c DIR` (every map
/// main.cf refers to) and `--resolve --json -c DIR` for every probe address.
struct OfflineVerdicts {
    struct Finding: CustomStringConvertible {
        var file: String
        var line: Int
        var message: String
        var description: String { "\(file):\(line): \(message)" }
    }

    struct Resolved {
        /// The comparable outcome (see ``OfflineVerdicts/outcome(_:)``).
        var outcome: [String]
        /// The routing line of the first virtual alias entry that matched, and every one used.
        var entryLine: Int?
        var virtualLines: [Int]
        var raw: String
    }

    /// Cases whose outcome depends on what no map or main.cf says: the server's file system.
    static let beyondTheModel: [String: String] = [
        "06c-mbox-missing-directory": "virtual(8) defers because the mbox file's directory does not exist"
    ]

    var lintErrors: [Finding] = []
    var lintExitStatus: Int32 = 0
    var resolutions: [String: Resolved] = [:]

    init(configDirectory: URL, addresses: [String]) throws {
        let lint = try withTemporaryDirectory { dir in
            try swiftpostmap(["--lint", "--json", "-c", configDirectory.path], in: dir)
        }
        lintExitStatus = lint.status
        for line in lint.out.split(separator: "\n") {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                object["severity"] as? String == "error"
            else { continue }
            lintErrors.append(
                Finding(
                    file: object["file"] as? String ?? "", line: object["line"] as? Int ?? 0,
                    message: object["message"] as? String ?? ""))
        }
        // The routing source's lines by key (Postfix reads the table, which has no lines).
        var keyLines: [String: Int] = [:]
        let routing = try String(contentsOf: configDirectory.appendingPathComponent("routing"), encoding: .utf8)
        for (index, text) in routing.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard let key = text.split(separator: " ").first, !key.hasPrefix("#") else { continue }
            keyLines[key.lowercased()] = index + 1
        }
        let resolve = try withTemporaryDirectory { dir in
            try swiftpostmap(["--resolve", "--json", "--passwd", "-c", configDirectory.path] + addresses, in: dir)
        }
        for line in resolve.out.split(separator: "\n") {
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let address = object["address"] as? String
            else { continue }
            let steps = (object["steps"] as? [[String: Any]] ?? []).filter {
                $0["stage"] as? String == "virtual" && $0["matched"] as? Bool == true
            }
            let lines = steps.compactMap { ($0["query"] as? String).flatMap { keyLines[$0.lowercased()] } }
            resolutions[address.lowercased()] = Resolved(
                outcome: Self.outcome(object), entryLine: lines.first, virtualLines: lines, raw: String(line))
        }
    }

    /// Postfix's outcome in comparable words: `refused STAGE CODE TEXT`, or one word per final
    /// recipient, sorted: `ADDRESS mailbox PATH`, `ADDRESS local`, `ADDRESS relay TRANSPORT
    /// NEXTHOP`, `ADDRESS bounced`, `ADDRESS deferred`.
    static func outcome(_ outcome: LiveOutcome) -> [String] {
        switch outcome {
        case .refusedAtSMTP(let stage, let code, let text):
            return ["refused \(stage.rawValue) \(code) \(text)"]
        case .accepted(let deliveries), .incomplete(let deliveries):
            return deliveries.map { delivery in
                let address = delivery.recipient.lowercased()
                switch delivery.fate {
                case .deliveredToMailbox(let path): return "\(address) mailbox \(path)"
                case .deliveredLocally: return "\(address) local"
                case .relayed(let transport, let nexthop): return "\(address) relay \(transport) \(nexthop)"
                case .bounced: return "\(address) bounced"
                case .deferred: return "\(address) deferred"
                case .discarded, .delivered, .expired: return "\(address) \(delivery.fate)"
                }
            }.sorted()
        }
    }

    /// The same words from a `--resolve --json` object.
    static func outcome(_ object: [String: Any]) -> [String] {
        if let smtp = object["smtp"] as? [String: Any], let stage = smtp["stage"] as? String,
            let code = smtp["code"] as? Int
        {
            return ["refused \(stage) \(code) \(smtp["status"] as? String ?? "") \(smtp["text"] as? String ?? "")"]
        }
        return (object["recipients"] as? [[String: Any]] ?? []).map { recipient in
            let address = (recipient["address"] as? String ?? "").lowercased()
            switch recipient["result"] as? String ?? "" {
            case "mailbox": return "\(address) mailbox \(recipient["mailbox"] as? String ?? "")"
            case "local": return "\(address) local"
            case "relay", "remote", "transport":
                return
                    "\(address) relay \(recipient["transport"] as? String ?? "") \(recipient["nexthop"] as? String ?? "")"
            case let other: return "\(address) \(other)"
            }
        }.sorted()
    }

    /// Whether every recipient got the mail (or it left for its next hop).
    static func delivered(_ outcome: LiveOutcome) -> Bool {
        guard case .accepted(let deliveries) = outcome else { return false }
        return deliveries.allSatisfy {
            switch $0.fate {
            case .bounced, .deferred, .expired: return false
            default: return true
            }
        }
    }
}
