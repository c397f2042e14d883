import Foundation
import Testing

/// Run the live oracle when Postfix can be started here, and always under CI (where a missing
/// Postfix is then a failure, not a skip).
let liveOracleAvailable = LivePostfix.isAvailable || runningUnderCI

private let liveFixtures = packageRoot.appendingPathComponent("Fixtures/live")

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
        let run = try LivePostfix.with(try liveFixtureConfiguration()) { postfix in
            scratch = postfix.scratch
            master = postfix.masterPID
            return try postfix.probe(file.cases.map(\.address))
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

        // Stopped and cleaned up.
        let directory = try #require(scratch)
        #expect(!FileManager.default.fileExists(atPath: directory.path))
        #expect(master.map { !LivePostfix.isRunning($0) } ?? false)
        #expect(LivePostfix.processes(workingIn: directory).isEmpty)
    }
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
