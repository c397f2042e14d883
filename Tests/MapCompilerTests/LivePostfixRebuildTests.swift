import Foundation
import Testing

/// A real Postfix keeps delivering while swiftpostmap rebuilds the virtual alias table under
/// it, and the first message after a rebuild follows the new table.
///
/// The instance is the live oracle's (Fixtures/live), with a routing table of its own: one
/// probe address, `flip@ex.test`, that the two versions of the source send to different
/// virtual mailboxes, among 80,000 other entries (a source over 4 MB, so each rebuild is a
/// held-back, bucket-ordered build that takes a noticeable time). Postfix's daemons notice
/// a replaced table before they accept their next client and restart, so mail sent after a
/// rebuild has returned must go to the new mailbox; mail sent during one goes to either,
/// and never fails or waits ("table lookup failure").
@Suite(
    "Live Postfix: tables rebuilt while it delivers", .serialized,
    .enabled(if: liveOracleAvailable, "Postfix is not installed, or not root"))
struct LivePostfixRebuildTests {
    static let probeAddress = "flip@ex.test"
    static let mailboxes = ["box@mbox.test", "good@mbox.test"]

    /// The routing source whose `flip@ex.test` goes to `mailboxes[version]`.
    static func routing(_ version: Int) -> String {
        "\(probeAddress) \(mailboxes[version])\n"
            + (0..<80_000).map { "filler\($0)@ex.test good@mbox.test, box@mbox.test\n" }.joined()
    }

    /// The mailbox the probe reached, or a description of what happened instead.
    static func destination(_ probe: LiveProbe) -> String {
        guard case .accepted(let deliveries) = probe.outcome, deliveries.count == 1,
            case .deliveredToMailbox = deliveries[0].fate
        else { return "not delivered to one mailbox: \(probe.outcome)" }
        return deliveries[0].recipient
    }

    @Test func deliveryFollowsEachRebuild() throws {
        var configuration = try liveFixtureConfiguration(compiler: .swiftpostmap())
        let index = try #require(configuration.maps.firstIndex { $0.name == "routing" })
        configuration.maps[index].source = Self.routing(0)
        configuration.timeout = 60
        try LivePostfix.with(configuration) { postfix in
            let source = postfix.configDirectory.appendingPathComponent("routing")
            let config = postfix.configDirectory
            @Sendable func rebuild(_ version: Int) throws -> ProcessResult {
                try Self.routing(version).write(to: source, atomically: false, encoding: .utf8)
                return try run(swiftpostmapPath, ["-c", config.path, "hash:\(source.path)"], in: config)
            }
            let first = try postfix.probe([Self.probeAddress])
            #expect(first.probes.map(Self.destination) == [Self.mailboxes[0]])

            // Sequential: after each rebuild, the next message follows the new table.
            for round in 1...8 {
                let version = round % 2
                let built = try rebuild(version)
                #expect(built.status == 0, "rebuild \(round): \(built)")
                let run = try postfix.probe([Self.probeAddress])
                #expect(
                    run.probes.map(Self.destination) == [Self.mailboxes[version]],
                    "round \(round): \(run.probes.map(\.logLines))")
            }

            // Concurrent: rebuilds on another thread while probes go out; each probe is
            // delivered to one of the two mailboxes.
            let failures = LockedList()
            let rebuilds = DispatchGroup()
            DispatchQueue.global().async(group: rebuilds) {
                for round in 0..<10 {
                    do {
                        let built = try rebuild(round % 2)
                        if built.status != 0 { failures.append("concurrent rebuild \(round): \(built)") }
                    } catch {
                        failures.append("concurrent rebuild \(round): \(error)")
                    }
                }
            }
            var probes: [LiveProbe] = []
            repeat {
                probes += try postfix.probe(Array(repeating: Self.probeAddress, count: 4)).probes
            } while rebuilds.wait(timeout: .now()) == .timedOut
            #expect(failures.items.isEmpty, "\(failures.items)")
            #expect(probes.count >= 4)
            var reached: [String: Int] = [:]
            for probe in probes {
                let destination = Self.destination(probe)
                reached[destination, default: 0] += 1
                #expect(Self.mailboxes.contains(destination), "\(probe.logLines)")
            }
            // After the last rebuild (version 1), the next message goes to its mailbox.
            let last = try postfix.probe([Self.probeAddress])
            #expect(last.probes.map(Self.destination) == [Self.mailboxes[1]])
            #expect(
                !postfix.readLog().contains { $0.contains("table lookup failure") || $0.contains("fatal:") },
                "Postfix logged a lookup failure")
        }
    }
}

/// Strings appended from several threads.
private final class LockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ item: String) { lock.withLock { list.append(item) } }
    var items: [String] { lock.withLock { list } }
}
