import Foundation

#if canImport(Glibc)
    import Glibc
#endif

// A real Postfix on 127.0.0.1 as an oracle: a private instance in a scratch directory, probe
// mails sent over SMTP with a null sender, and what Postfix did with every probe recipient, read
// back from its own log file and from the mailboxes it wrote.
//
//     let run = try LivePostfix.with(configuration) { postfix in try postfix.probe(addresses) }
//     run.probes[0].outcome      // .refusedAtSMTP, .accepted([deliveries]) or .incomplete
//
// Isolation. Everything lives in /tmp/swiftpostmap-live-PID-RANDOM (PID: the test process):
// etc/ (main.cf, master.cf, the maps), queue/ (queue_directory), data/ (data_directory),
// maillog (maillog_file, written by postlogd: no syslog), spool/ (mail_spool_directory for
// local(8)), vmail/ (virtual_mailbox_base for virtual(8), owned by nobody). The instance is
// started with `postfix -c DIR/etc start-fg` (the master runs as a child of postfix-script, so
// it is reaped, not left to init); as root Postfix needs no alternate_config_directories
// entry, so /etc/postfix is only read (multi_instance_directories), never written. smtpd
// listens on 127.0.0.1 on a free port in 20000..<30000. Nothing leaves the machine: master.cf
// has no smtp(8) or lmtp(8) client; the services `smtp`, `relay` and `lmtp` run discard(8)
// under `syslog_name = postfix/would-relay-via-SERVICE`, so default_transport, relay_transport
// and transport_maps keep their meaning and a relayed recipient is logged as
//
//     postfix/would-relay-via-smtp/discard[pid]: QID: to=<a@b.test>, relay=none, ..., status=sent (NEXTHOP)
//
// (discard(8) reports the next hop as its status text), read back as
// `.relayed(transport: "smtp", nexthop: NEXTHOP)`. DNS is off (smtpd_peername_lookup = no,
// smtp_dns_support_level = disabled; the smtp client does not run anyway). No bounce leaves
// either: the probes' sender is null.
//
// Clean-up. `stop()` (run by `with` on every exit path, and by deinit) runs `postfix stop`,
// waits for the master and every process whose working directory is inside the scratch
// directory to go, kills what is left, reaps the daemons that outlived the master (the test
// process is their subreaper meanwhile), and removes the directory. A watchdog shell in a
// process group of its own does the same if the test process dies without stopping (a
// crash): it checks the test process every second. At start, scratch directories of earlier
// runs whose test process is gone are cleaned the same way (their master is recognised by its
// pid file and its working directory); those of a live test process are left alone.
//
// Correlation. smtpd_client_port_logging = yes puts the client port into smtpd's `connect
// from`, `client=` and reject lines; each probe is one connection from a known port, so its
// session, queue ID (also for a message refused at end of DATA) and warnings are found in the
// log. A message is complete when qmgr logged `removed`, or when every queued recipient has a
// status line and one was deferred (a deferred message stays in the queue; the instance is
// thrown away).

// MARK: - Configuration

/// A map in the instance's config directory: the source is written there under `name` and
/// compiled in place.
struct LiveMap: Sendable {
    enum Kind: Sendable { case postmap, postalias }
    var name: String
    var source: String
    var kind: Kind = .postmap
    var type: String = "hash"
}

/// Compiles one map: (the map, its source file in the config directory, the config directory).
struct LiveMapCompiler: Sendable {
    var compile: @Sendable (_ map: LiveMap, _ source: URL, _ configDirectory: URL) throws -> Void

    /// Postfix's own postmap and postalias.
    static let realPostfix = LiveMapCompiler { map, source, config in
        let tool = map.kind == .postalias ? realPostalias : realPostmap
        let result = try run(tool, ["-c", config.path, "\(map.type):\(source.path)"], in: config)
        guard result.status == 0 else {
            throw LivePostfixError("\(tool) \(map.name) failed: \(result)")
        }
    }

    /// swiftpostmap (as postmap, or with --aliases as postalias).
    static func swiftpostmap(_ executable: String = swiftpostmapPath) -> LiveMapCompiler {
        LiveMapCompiler { map, source, config in
            let arguments =
                (map.kind == .postalias ? ["--aliases"] : []) + [
                    "-c", config.path, "\(map.type):\(source.path)",
                ]
            let result = try run(executable, arguments, in: config)
            guard result.status == 0 else {
                throw LivePostfixError("swiftpostmap \(map.name) failed: \(result)")
            }
        }
    }
}

/// What the scratch instance runs: the case's main.cf (the harness appends its isolation
/// block, whose parameters the case must not set), the maps, and how they are compiled.
struct LivePostfixConfiguration: Sendable {
    var mainCF: String
    var maps: [LiveMap]
    var compiler: LiveMapCompiler = .realPostfix
    /// Extra master.cf lines (services a case needs beyond the standard set).
    var extraMasterCF: String = ""
    /// How long `probe` waits in all for the log to show every probe's fate.
    var timeout: TimeInterval = 20

    /// The case set in `directory`: main.cf, aliases (postalias) and every other listed map (postmap).
    static func fixture(
        in directory: URL, maps: [String], aliases: [String] = [], compiler: LiveMapCompiler = .realPostfix
    ) throws -> LivePostfixConfiguration {
        func read(_ name: String) throws -> String {
            try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        }
        let tables =
            try maps.map { LiveMap(name: $0, source: try read($0)) }
            + aliases.map { LiveMap(name: $0, source: try read($0), kind: .postalias) }
        return LivePostfixConfiguration(mainCF: try read("main.cf"), maps: tables, compiler: compiler)
    }
}

struct LivePostfixError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Observations

/// An SMTP reply: the code and the text of every line (without the `NNN-`/`NNN ` prefix).
struct LiveSMTPReply: Equatable, Sendable, CustomStringConvertible {
    var code: Int
    var lines: [String]
    var text: String { lines.joined(separator: " ") }
    var isPositive: Bool { (200..<400).contains(code) }
    var description: String { "\(code) \(text)" }
}

/// What happened to one final recipient of an accepted probe.
enum LiveFate: Equatable, Sendable {
    /// virtual(8) delivered it; the mailbox as found under virtual_mailbox_base: `dir/` for a
    /// Maildir, `file` for an mbox file (the form of a virtual_mailbox_maps value).
    case deliveredToMailbox(path: String)
    /// local(8) delivered it: the mail_spool_directory mailbox (the user name), or `file:PATH`,
    /// `command:COMMAND`.
    case deliveredLocally(mailbox: String)
    /// It would have left the machine through TRANSPORT (smtp, relay, lmtp) to NEXTHOP.
    case relayed(transport: String, nexthop: String)
    /// discard(8) (a transport the case chose) threw it away.
    case discarded(text: String)
    /// Delivered by another agent (status=sent).
    case delivered(agent: String, text: String)
    case bounced(agent: String, dsn: String, text: String)
    case deferred(agent: String, dsn: String, text: String)
    case expired(text: String)
}

/// One final recipient and its fate.
struct LiveDelivery: Equatable, Sendable, CustomStringConvertible {
    var recipient: String
    var fate: LiveFate

    var description: String {
        switch fate {
        case .deliveredToMailbox(let path): "\(recipient) mailbox \(path)"
        case .deliveredLocally(let mailbox): "\(recipient) local \(mailbox)"
        case .relayed(let transport, let nexthop): "\(recipient) relayed \(transport) \(nexthop)"
        case .discarded(let text): "\(recipient) discarded \(text)"
        case .delivered(let agent, let text): "\(recipient) delivered \(agent) \(text)"
        case .bounced(let agent, let dsn, let text): "\(recipient) bounced \(agent) \(dsn) \(text)"
        case .deferred(let agent, let dsn, let text): "\(recipient) deferred \(agent) \(dsn) \(text)"
        case .expired(let text): "\(recipient) expired \(text)"
        }
    }

    /// Parses `description`.
    init?(parsing text: String) {
        guard let (head, rest) = splitFields(Substring(text), 2) else { return nil }
        recipient = head[0]
        switch head[1] {
        case "mailbox": fate = .deliveredToMailbox(path: rest)
        case "local": fate = .deliveredLocally(mailbox: rest)
        case "discarded": fate = .discarded(text: rest)
        case "expired": fate = .expired(text: rest)
        case "relayed":
            guard let (fields, nexthop) = splitFields(Substring(rest), 1) else { return nil }
            fate = .relayed(transport: fields[0], nexthop: nexthop)
        case "delivered":
            guard let (fields, text) = splitFields(Substring(rest), 1) else { return nil }
            fate = .delivered(agent: fields[0], text: text)
        case "bounced", "deferred":
            guard let (fields, text) = splitFields(Substring(rest), 2) else { return nil }
            fate =
                head[1] == "bounced"
                ? .bounced(agent: fields[0], dsn: fields[1], text: text)
                : .deferred(agent: fields[0], dsn: fields[1], text: text)
        default: return nil
        }
    }

    init(recipient: String, fate: LiveFate) {
        self.recipient = recipient
        self.fate = fate
    }
}

enum LiveSMTPStage: String, Sendable {
    case rcpt = "RCPT"
    case data = "DATA"
}

/// What Postfix did with one probe. Texts have the scratch directory replaced by `$SCRATCH`.
enum LiveOutcome: Equatable, Sendable, CustomStringConvertible {
    /// Refused at RCPT TO or at the end of DATA (4xx: temporary, 5xx: permanent).
    case refusedAtSMTP(stage: LiveSMTPStage, code: Int, text: String)
    /// Accepted; every final recipient's fate, sorted by recipient.
    case accepted([LiveDelivery])
    /// Accepted, but the log did not show every recipient's fate in time.
    case incomplete([LiveDelivery])

    var deliveries: [LiveDelivery] {
        switch self {
        case .refusedAtSMTP: []
        case .accepted(let list), .incomplete(let list): list
        }
    }

    /// The case-file form (see Fixtures/live/cases).
    var description: String {
        switch self {
        case .refusedAtSMTP(let stage, let code, let text): "refused \(stage.rawValue) \(code) \(text)"
        case .accepted(let list): list.isEmpty ? "accepted-without-delivery" : fateList(list)
        case .incomplete(let list): list.isEmpty ? "incomplete" : "incomplete " + fateList(list)
        }
    }

    private func fateList(_ list: [LiveDelivery]) -> String {
        list.map(\.description).joined(separator: " ; ")
    }

    /// Parses `description`.
    init?(parsing text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        if text.hasPrefix("refused ") {
            guard let (fields, rest) = splitFields(Substring(text), 3),
                let stage = LiveSMTPStage(rawValue: fields[1]), let code = Int(fields[2])
            else { return nil }
            self = .refusedAtSMTP(stage: stage, code: code, text: rest)
            return
        }
        if text == "accepted-without-delivery" {
            self = .accepted([])
            return
        }
        if text == "incomplete" {
            self = .incomplete([])
            return
        }
        var body = Substring(text)
        let incomplete = body.hasPrefix("incomplete ")
        if incomplete { body = body.dropFirst("incomplete ".count) }
        var list: [LiveDelivery] = []
        for item in body.components(separatedBy: " ; ") {
            guard let delivery = LiveDelivery(parsing: item) else { return nil }
            list.append(delivery)
        }
        self = incomplete ? .incomplete(list) : .accepted(list)
    }
}

/// A warning line: the logging program's short name (`cleanup`) and the text after `warning:`
/// (queue ID removed, scratch directory as `$SCRATCH`, client ports removed).
struct LiveWarning: Equatable, Hashable, Sendable, CustomStringConvertible {
    var agent: String
    var text: String
    var description: String { "\(agent): \(text)" }
}

/// One probe: what the SMTP dialogue said, what the log said, and the outcome.
struct LiveProbe: Sendable, CustomStringConvertible {
    var address: String
    var clientPort: UInt16
    var rcptReply: LiveSMTPReply
    var dataReply: LiveSMTPReply?
    var queueID: String?
    var outcome: LiveOutcome
    /// Warnings logged in the probe's SMTP session or for its queue ID.
    var warnings: [LiveWarning]
    /// The status lines (`to=<…>, …, status=…`) for its queue ID, as parsed.
    var statusLines: [LiveStatusLine]
    /// Every log line of its SMTP session and its queue IDs, verbatim.
    var logLines: [String]

    var description: String { "\(address)  \(outcome)" }
}

/// The result of `LivePostfix.probe`.
struct LiveRun: Sendable {
    var probes: [LiveProbe]
    /// Warnings not tied to any probe (e.g. trivial-rewrite's), each once, in log order.
    var globalWarnings: [LiveWarning]
    /// The mail log since the previous `probe` (the whole log for the first).
    var log: [String]
}

// MARK: - The instance

/// A private Postfix instance. Create it with `start` (or `with`), probe, `stop`.
final class LivePostfix {
    let scratch: URL
    let configDirectory: URL
    let queueDirectory: URL
    let logFile: URL
    let mailSpoolDirectory: URL
    let virtualMailboxBase: URL
    let port: UInt16
    private(set) var masterPID: Int32?
    private let configuration: LivePostfixConfiguration
    private var watchdog: LiveChildProcess?
    /// `postfix start-fg` (postfix-script), the master's parent.
    private var postfixProcess: LiveChildProcess?
    private var stopped = false
    private var subreaper = false
    private var probeCount = 0
    /// Log lines already reported by `probe`.
    private var logCursor = 0
    private let runID = String(UInt32.random(in: 0...UInt32.max), radix: 36)

    static let scratchRoot = URL(fileURLWithPath: "/tmp")
    static let scratchPrefix = "swiftpostmap-live-"
    static let postfixCommand = "/usr/sbin/postfix"
    static let masterProgram = "/usr/lib/postfix/sbin/master"

    /// Postfix is here and can be started (root).
    static var isAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: postfixCommand)
            && FileManager.default.isExecutableFile(atPath: masterProgram)
            && FileManager.default.isExecutableFile(atPath: realPostmap) && geteuid() == 0
    }

    /// main.cf parameters the harness sets itself; a case's main.cf must leave them alone.
    static let isolationParameters = [
        "queue_directory", "data_directory", "inet_interfaces", "inet_protocols", "mynetworks",
        "maillog_file", "maillog_file_prefixes", "smtpd_client_port_logging", "smtpd_peername_lookup",
        "smtp_dns_support_level", "lmtp_dns_support_level", "biff", "mail_spool_directory",
        "virtual_mailbox_base", "virtual_uid_maps", "virtual_gid_maps", "multi_instance_enable",
    ]

    /// Starts an instance, runs `body`, and stops it and removes its files whatever happens.
    static func with<T>(_ configuration: LivePostfixConfiguration, _ body: (LivePostfix) throws -> T) throws -> T {
        let postfix = try start(configuration)
        defer { postfix.stop() }
        return try body(postfix)
    }

    /// Cleans up after crashed runs, creates the scratch instance and starts it.
    static func start(_ configuration: LivePostfixConfiguration) throws -> LivePostfix {
        guard isAvailable else {
            throw LivePostfixError("Postfix is not installed (\(postfixCommand), \(masterProgram)) or not root")
        }
        for line in configuration.mainCF.split(separator: "\n") {
            let name = line.split(separator: "=", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces) ?? ""
            if !line.hasPrefix(" "), !line.hasPrefix("\t"), isolationParameters.contains(name) {
                throw LivePostfixError("the case's main.cf sets \(name), which the harness sets itself")
            }
        }
        cleanUpStaleInstances()
        var lastError: Error = LivePostfixError("no attempt")
        for _ in 0..<3 {  // a port taken between choosing and binding: try another one
            let postfix = try LivePostfix(configuration: configuration, port: try freePort())
            do {
                try postfix.setUpAndStart()
                return postfix
            } catch {
                postfix.stop()
                lastError = error
            }
        }
        throw lastError
    }

    private init(configuration: LivePostfixConfiguration, port: UInt16) throws {
        self.configuration = configuration
        self.port = port
        let name = "\(Self.scratchPrefix)\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 36))"
        scratch = Self.scratchRoot.appendingPathComponent(name)
        configDirectory = scratch.appendingPathComponent("etc")
        queueDirectory = scratch.appendingPathComponent("queue")
        logFile = scratch.appendingPathComponent("maillog")
        mailSpoolDirectory = scratch.appendingPathComponent("spool")
        virtualMailboxBase = scratch.appendingPathComponent("vmail")
        try FileManager.default.createDirectory(
            at: scratch, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        try "\(getpid()) \(Self.processStartTime(getpid()) ?? "?")\n".write(
            to: scratch.appendingPathComponent("owner"), atomically: true, encoding: .utf8)
    }

    deinit { stop() }

    private func setUpAndStart() throws {
        Self.setChildSubreaper(true)
        subreaper = true
        try startWatchdog()
        let fm = FileManager.default
        guard let nobody = getpwnam("nobody")?.pointee, let mailOwner = getpwnam("postfix")?.pointee else {
            throw LivePostfixError("no user nobody or postfix")
        }
        let data = scratch.appendingPathComponent("data")
        for (dir, mode) in [
            (configDirectory, 0o755), (queueDirectory, 0o755), (data, 0o700), (mailSpoolDirectory, 0o1777),
            (virtualMailboxBase, 0o755),
        ] {
            try fm.createDirectory(at: dir, withIntermediateDirectories: false, attributes: [.posixPermissions: mode])
        }
        guard chown(data.path, mailOwner.pw_uid, mailOwner.pw_gid) == 0,
            chown(virtualMailboxBase.path, nobody.pw_uid, nobody.pw_gid) == 0
        else { throw LivePostfixError("chown failed: \(String(cString: strerror(errno)))") }

        let isolation = """

            # ---- appended by LivePostfix (Tests/MapCompilerTests/LivePostfix.swift): isolation ----
            queue_directory = \(queueDirectory.path)
            data_directory = \(data.path)
            inet_interfaces = 127.0.0.1
            inet_protocols = ipv4
            mynetworks = 127.0.0.0/8
            maillog_file = \(logFile.path)
            maillog_file_prefixes = \(scratch.path)
            smtpd_client_port_logging = yes
            smtpd_peername_lookup = no
            smtp_dns_support_level = disabled
            lmtp_dns_support_level = disabled
            biff = no
            mail_spool_directory = \(mailSpoolDirectory.path)
            virtual_mailbox_base = \(virtualMailboxBase.path)
            virtual_uid_maps = static:\(nobody.pw_uid)
            virtual_gid_maps = static:\(nobody.pw_gid)

            """
        let mainCF = configDirectory.appendingPathComponent("main.cf")
        try (configuration.mainCF + isolation).write(to: mainCF, atomically: true, encoding: .utf8)
        let masterCF = configDirectory.appendingPathComponent("master.cf")
        try (Self.masterCF(port: port) + configuration.extraMasterCF).write(
            to: masterCF, atomically: true, encoding: .utf8)
        // Postfix programs pause when main.cf changed within the last second or so.
        for file in [mainCF, masterCF] {
            try fm.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -120)], ofItemAtPath: file.path)
        }
        for map in configuration.maps {
            let source = configDirectory.appendingPathComponent(map.name)
            try map.source.write(to: source, atomically: true, encoding: .utf8)
            try configuration.compiler.compile(map, source, configDirectory)
        }

        // `postfix start-fg`: postfix-script runs the master in the foreground as its child, so
        // the master is reaped by it (no zombie left to init) and the script by us.
        let output = scratch.appendingPathComponent("start-fg.out")
        let process = try LiveChildProcess(
            [Self.postfixCommand, "-c", configDirectory.path, "start-fg"], output: output.path)
        postfixProcess = process
        let pidFile = queueDirectory.appendingPathComponent("pid/master.pid")
        let ready = Self.waitUntil(timeout: 20) {
            !process.isRunning()
                || readLog().contains { $0.contains("postfix/master[") && $0.contains("daemon started") }
        }
        masterPID = (try? String(contentsOf: pidFile, encoding: .utf8)).flatMap {
            Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        guard ready, process.isRunning(), masterPID != nil else {
            let said = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
            throw LivePostfixError(
                "postfix start-fg failed (port \(port)): \(said)\nlog:\n\(readLog().joined(separator: "\n"))")
        }
    }

    /// The master.cf: nothing chrooted; smtp, relay and lmtp are discard(8) (see the top of this file).
    static func masterCF(port: UInt16) -> String {
        var lines = [
            "# Written by LivePostfix: the standard services, none chrooted; smtp, relay and lmtp",
            "# are discard(8), logging as postfix/would-relay-via-SERVICE, so no mail leaves the machine.",
            "127.0.0.1:\(port) inet n - n - - smtpd",
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "proxywrite unix - - n - 1 proxymap",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "local unix - n n - - local",
            "virtual unix - n n - - virtual",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ]
        for service in ["smtp", "relay", "lmtp"] {
            lines.append("\(service) unix - - n - - discard")
            lines.append("  -o syslog_name=postfix/would-relay-via-\(service)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    // MARK: Stopping

    /// Stops Postfix, makes sure none of its processes is left, and removes the scratch
    /// directory. Safe to call more than once.
    func stop() {
        guard !stopped else { return }
        stopped = true
        Self.stopInstance(in: scratch, masterPID: masterPID)
        if let process = postfixProcess, !process.reap(timeout: 3) {
            kill(process.pid, SIGKILL)
            _ = process.reap(timeout: 3)
        }
        stopWatchdog()
        try? FileManager.default.removeItem(at: scratch)
        if subreaper { Self.setChildSubreaper(false) }
    }

    /// `postfix stop`, then waits for the master and every process working inside `directory`;
    /// kills what is left. Postfix daemons that outlive the master are this process's children
    /// while it is their subreaper (see `start`): they are reaped here, so no zombie is left.
    private static func stopInstance(in directory: URL, masterPID: Int32?) {
        var daemons = Set(processes(workingIn: directory))  // a zombie's working directory is unreadable
        let config = directory.appendingPathComponent("etc")
        if let pid = masterPID, isRunning(pid),
            FileManager.default.fileExists(atPath: config.appendingPathComponent("main.cf").path)
        {
            _ = try? run(postfixCommand, ["-c", config.path, "stop"])
        }
        func leftovers() -> [Int32] {
            var pids = processes(workingIn: directory)
            daemons.formUnion(pids)
            if let pid = masterPID, isRunning(pid), !pids.contains(pid) { pids.append(pid) }
            return pids
        }
        func reapDaemons() -> Bool {
            daemons = daemons.filter { pid in
                var status: Int32 = 0
                let result = waitpid(pid, &status, WNOHANG)
                return result == 0  // still running; reaped (pid) or not our child (-1): done
            }
            return daemons.isEmpty
        }
        if !waitUntil(
            timeout: 6,
            {
                _ = reapDaemons(); return leftovers().isEmpty
            })
        {
            if let pid = masterPID { kill(-pid, SIGKILL) }
            for pid in leftovers() { kill(pid, SIGKILL) }
            _ = waitUntil(timeout: 3) { leftovers().isEmpty }
        }
        _ = waitUntil(timeout: 2, reapDaemons)
    }

    /// prctl(PR_SET_CHILD_SUBREAPER) while an instance runs: orphaned descendants (the Postfix
    /// daemons, once the master has gone) become this process's children instead of init's, so
    /// `stop` can reap them. prctl is variadic, which Swift cannot call: it is called through
    /// dlsym with its integer arguments.
    private static func setChildSubreaper(_ on: Bool) {
        subreaperUsers.lock.lock()
        defer { subreaperUsers.lock.unlock() }
        subreaperUsers.count += on ? 1 : -1
        guard subreaperUsers.count == (on ? 1 : 0) else { return }
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") else { return }
        let setChildSubreaper: Int32 = 36  // PR_SET_CHILD_SUBREAPER, <linux/prctl.h>
        _ = unsafeBitCast(symbol, to: Prctl.self)(setChildSubreaper, on ? 1 : 0, 0, 0, 0)
    }

    /// How many instances of this process want the subreaper on.
    private final class SubreaperUsers: @unchecked Sendable {  // count is guarded by lock
        let lock = NSLock()
        var count = 0
    }
    private static let subreaperUsers = SubreaperUsers()

    /// Stops instances of earlier runs whose test process is gone, and removes their directories.
    static func cleanUpStaleInstances() {
        guard
            let names = try? FileManager.default.contentsOfDirectory(atPath: scratchRoot.path).filter({
                $0.hasPrefix(scratchPrefix)
            })
        else { return }
        for name in names {
            let directory = scratchRoot.appendingPathComponent(name)
            let owner = (try? String(contentsOf: directory.appendingPathComponent("owner"), encoding: .utf8))?
                .split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
            let ownerPID =
                owner.flatMap { $0.first.flatMap { Int32($0) } }
                ?? Int32(name.dropFirst(scratchPrefix.count).split(separator: "-").first ?? "")
            if let ownerPID, isRunning(ownerPID),
                owner.map({ $0.count > 1 && $0[1] == processStartTime(ownerPID) }) ?? true
            {
                continue  // a live run (maybe another test process): leave it alone
            }
            if let text = try? String(
                contentsOf: directory.appendingPathComponent("watchdog.pid"), encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                commandLine(pid).contains(directory.path)
            {
                kill(-pid, SIGKILL)
                kill(pid, SIGKILL)
            }
            let pidFile = directory.appendingPathComponent("queue/pid/master.pid")
            var master: Int32?
            if let text = try? String(contentsOf: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                workingDirectory(pid)?.hasPrefix(directory.path) == true
            {
                master = pid
            }
            stopInstance(in: directory, masterPID: master)
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// A shell in a process group of its own that cleans up if this process dies without
    /// `stop()` (a crash): it checks every second that the test process is still there.
    private func startWatchdog() throws {
        let script = """
            trap '' HUP INT
            owner=$1 dir=$2
            echo $$ > "$dir/watchdog.pid"
            trap 'kill $nap 2>/dev/null; wait $nap; exit 0' TERM
            while kill -0 "$owner" 2>/dev/null && [ -d "$dir" ]; do sleep 1 & nap=$!; wait $nap; done
            [ -d "$dir" ] || exit 0
            [ -f "$dir/etc/main.cf" ] && \(Self.postfixCommand) -c "$dir/etc" stop >/dev/null 2>&1
            rm -rf "$dir"
            """
        watchdog = try LiveChildProcess(
            ["/bin/sh", "-c", script, "swiftpostmap-live-watchdog", "\(getpid())", scratch.path])
        let pidFile = scratch.appendingPathComponent("watchdog.pid")
        guard Self.waitUntil(timeout: 5, { FileManager.default.fileExists(atPath: pidFile.path) }) else {
            throw LivePostfixError("the watchdog did not start")
        }
    }

    private func stopWatchdog() {
        guard let watchdog else { return }
        kill(watchdog.pid, SIGTERM)  // the shell stops its sleep, reaps it and exits
        if !watchdog.reap(timeout: 3) {
            kill(-watchdog.pid, SIGKILL)
            _ = watchdog.reap(timeout: 3)
        }
        self.watchdog = nil
    }

    // MARK: Probing

    /// Sends one message per address (null sender), waits for the log to show each one's
    /// fate, and reports them.
    func probe(_ addresses: [String]) throws -> LiveRun {
        var sent: [LiveSentProbe] = []
        for address in addresses {
            probeCount += 1
            let token = "\(runID)-\(probeCount)"
            sent.append(try LiveSentProbe.send(to: address, port: port, token: token))
        }
        // The log since the previous call (the first call sees start-up warnings too).
        func newLog() -> LiveLog { LiveLog(lines: Array(readLog().dropFirst(logCursor))) }
        let deadline = Date(timeIntervalSinceNow: configuration.timeout)
        var log = newLog()
        while !sent.allSatisfy({ log.isComplete($0) }) && Date() < deadline {
            usleep(100_000)
            log = newLog()
        }
        usleep(300_000)  // a last look for stragglers (local(8) alias expansions)
        log = newLog()
        logCursor += log.rawLineCount
        return report(sent, log)
    }

    /// The mail log, line by line.
    func readLog() -> [String] {
        guard let data = try? Data(contentsOf: logFile) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    private func report(_ sent: [LiveSentProbe], _ log: LiveLog) -> LiveRun {
        var usedSessions = Set<Int>()
        var attributed = Set<Int>()  // log line indexes that belong to a probe
        var probes: [LiveProbe] = []
        let files = deliveredMessages()
        for probe in sent {
            let session = log.sessions.indices.first {
                !usedSessions.contains($0) && log.sessions[$0].port == probe.port
            }
            var lineIndexes: [Int] = []
            var queueID = probe.dataReply.flatMap(Self.queueID(in:))
            if let session {
                usedSessions.insert(session)
                lineIndexes += log.sessions[session].lines
                queueID = queueID ?? log.sessions[session].queueIDs.first
            }
            let family = queueID.map { log.family(of: $0) } ?? []
            for member in family { lineIndexes += log.byQueueID[member] ?? [] }
            lineIndexes = Array(Set(lineIndexes)).sorted()
            attributed.formUnion(lineIndexes)
            let lines = lineIndexes.map { log.lines[$0] }
            let statuses = lines.compactMap(\.status)
            let warnings = lines.filter(\.isWarning).map { warning($0) }

            let outcome: LiveOutcome
            if !probe.rcptReply.isPositive {
                outcome = .refusedAtSMTP(stage: .rcpt, code: probe.rcptReply.code, text: clean(probe.rcptReply.text))
            } else if let data = probe.dataReply, !data.isPositive {
                outcome = .refusedAtSMTP(stage: .data, code: data.code, text: clean(data.text))
            } else {
                var latest: [String: LiveStatusLine] = [:]  // per recipient, the last attempt
                var order: [String] = []
                for status in statuses where status.forwardedQueueID == nil {  // forwarded: its copy's fates
                    let key = "\(status.recipient)\u{0}\(status.originalRecipient ?? "")"
                    if latest[key] == nil { order.append(key) }
                    latest[key] = status
                }
                let deliveries = order.compactMap { latest[$0] }.map { status in
                    LiveDelivery(recipient: status.recipient, fate: fate(status, token: probe.token, files: files))
                }.sorted { ($0.recipient, $0.description) < ($1.recipient, $1.description) }
                outcome = log.isComplete(probe) ? .accepted(deliveries) : .incomplete(deliveries)
            }
            probes.append(
                LiveProbe(
                    address: probe.address, clientPort: probe.port, rcptReply: probe.rcptReply,
                    dataReply: probe.dataReply, queueID: queueID, outcome: outcome, warnings: warnings,
                    statusLines: statuses, logLines: lines.map(\.raw)))
        }
        var global: [LiveWarning] = []
        for (index, line) in log.lines.enumerated() where line.isWarning && !attributed.contains(index) {
            let item = warning(line)
            if !global.contains(item) { global.append(item) }
        }
        return LiveRun(probes: probes, globalWarnings: global, log: log.lines.map(\.raw))
    }

    static func queueID(in reply: LiveSMTPReply) -> String? {
        guard let range = reply.text.range(of: "queued as ") else { return nil }
        return String(reply.text[range.upperBound...].prefix { $0.isLetter || $0.isNumber })
    }

    /// Replaces the scratch directory by `$SCRATCH` and drops client ports.
    private func clean(_ text: String) -> String {
        var text = text.replacingOccurrences(of: scratch.path, with: "$SCRATCH")
        while let range = text.range(of: #"\[127\.0\.0\.1\]:[0-9]+"#, options: .regularExpression) {
            text.replaceSubrange(range, with: "[127.0.0.1]")
        }
        return text
    }

    private func warning(_ line: LiveLogLine) -> LiveWarning {
        LiveWarning(agent: line.agent, text: clean(line.body))
    }

    private func fate(_ status: LiveStatusLine, token: String, files: [DeliveredMessage]) -> LiveFate {
        let text = clean(status.text)
        switch status.status {
        case "sent":
            if let transport = status.relayTransport { return .relayed(transport: transport, nexthop: text) }
            let mine = files.filter { $0.token == token }
            switch status.agent {
            case "virtual":
                let match = mine.first {
                    $0.inVirtualBase && $0.deliveredTo?.lowercased() == status.recipient.lowercased()
                }
                return .deliveredToMailbox(path: match?.mailbox ?? "?")
            case "local":
                if text.hasPrefix("delivered to file: ") {
                    return .deliveredLocally(mailbox: "file:" + text.dropFirst("delivered to file: ".count))
                }
                if text.hasPrefix("delivered to command: ") {
                    return .deliveredLocally(mailbox: "command:" + text.dropFirst("delivered to command: ".count))
                }
                let user = status.recipient.split(separator: "@").first.map(String.init)?.lowercased() ?? ""
                let spool = mine.filter { !$0.inVirtualBase }
                let match = spool.first { $0.mailbox == user } ?? (spool.count == 1 ? spool.first : nil)
                return .deliveredLocally(mailbox: match?.mailbox ?? "?")
            case "discard": return .discarded(text: text)
            default: return .delivered(agent: status.agent, text: text)
            }
        case "bounced": return .bounced(agent: status.agent, dsn: status.dsn, text: text)
        case "expired": return .expired(text: text)
        default:
            return .deferred(
                agent: status.agent, dsn: status.dsn,
                text: status.status == "deferred" ? text : status.status + " " + text)
        }
    }

    /// A probe message found under virtual_mailbox_base or mail_spool_directory.
    private struct DeliveredMessage {
        var inVirtualBase: Bool
        /// Maildir `dir/` or mbox `file`, relative to its base (for the spool: the user name).
        var mailbox: String
        var token: String
        var deliveredTo: String?
    }

    private func deliveredMessages() -> [DeliveredMessage] {
        var result: [DeliveredMessage] = []
        let fm = FileManager.default
        for (base, isVirtual) in [(virtualMailboxBase, true), (mailSpoolDirectory, false)] {
            guard let walker = fm.enumerator(atPath: base.path) else { continue }
            while let relative = walker.nextObject() as? String {
                let url = base.appendingPathComponent(relative)
                var isDirectory: ObjCBool = false
                guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                    let data = try? Data(contentsOf: url)
                else { continue }
                let text = String(decoding: data, as: UTF8.self)
                let parts = relative.split(separator: "/").map(String.init)
                var mailbox = relative
                if parts.count >= 2, ["new", "cur"].contains(parts[parts.count - 2]) {
                    let root = parts.dropLast(2).joined(separator: "/")
                    let rootURL = base.appendingPathComponent(root)
                    if ["new", "cur", "tmp"].allSatisfy({
                        fm.fileExists(atPath: rootURL.appendingPathComponent($0).path)
                    }) {
                        mailbox = root + "/"
                    }
                }
                // A Maildir file is one message; an mbox file has one after each From_ line.
                let messages = mailbox.hasSuffix("/") ? [text] : ("\n" + text).components(separatedBy: "\nFrom ")
                for message in messages {
                    var token: String?
                    var deliveredTo: String?
                    for line in (message.components(separatedBy: "\n\n").first ?? "").split(separator: "\n") {
                        if line.hasPrefix("X-Live-Probe: ") { token = String(line.dropFirst("X-Live-Probe: ".count)) }
                        if deliveredTo == nil, line.lowercased().hasPrefix("delivered-to: ") {
                            deliveredTo = String(line.dropFirst("delivered-to: ".count))
                        }
                    }
                    if let token {
                        result.append(
                            DeliveredMessage(
                                inVirtualBase: isVirtual, mailbox: mailbox, token: token, deliveredTo: deliveredTo))
                    }
                }
            }
        }
        return result
    }

    // MARK: Processes and ports

    static func waitUntil(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while !condition() {
            if Date() >= deadline { return false }
            usleep(50_000)
        }
        return true
    }

    /// Alive and not a zombie.
    static func isRunning(_ pid: Int32) -> Bool {
        guard pid > 0, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.range(of: ") ", options: .backwards)
        else { return false }
        return !stat[close.upperBound...].hasPrefix("Z")
    }

    /// Field 22 of /proc/PID/stat: when the process started (tells a reused PID apart).
    static func processStartTime(_ pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.range(of: ") ", options: .backwards)
        else { return nil }
        let fields = stat[close.upperBound...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }

    static func workingDirectory(_ pid: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd")
    }

    static func commandLine(_ pid: Int32) -> String {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return "" }
        return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
    }

    /// Live processes whose working directory is `directory` or inside it (Postfix daemons
    /// work in queue_directory).
    static func processes(workingIn directory: URL) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let prefix = directory.path
        return entries.compactMap { Int32($0) }.filter { pid in
            guard let cwd = workingDirectory(pid), cwd == prefix || cwd.hasPrefix(prefix + "/") else { return false }
            return isRunning(pid)
        }
    }

    /// A port in 20000..<30000 that nothing is bound to on 127.0.0.1.
    static func freePort() throws -> UInt16 {
        for _ in 0..<100 {
            let port = UInt16.random(in: 20000..<30000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var address = loopback(port: port)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if bound == 0 { return port }
        }
        throw LivePostfixError("no free port in 20000..<30000")
    }
}

// MARK: - Spawning

/// A child process started with posix_spawn in a process group of its own, with no signal
/// blocked or ignored (the test process blocks many in its threads, and children inherit
/// that), standard input from /dev/null, output to `output` (default /dev/null), and no
/// other inherited descriptor.
final class LiveChildProcess {
    let pid: pid_t
    private var reaped = false

    init(_ arguments: [String], output: String = "/dev/null") throws {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
        }
        let environment: [String] = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"]
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var child: pid_t = 0
        let status = posix_spawn(&child, arguments[0], &actions, &attributes, argv, envp)
        guard status == 0 else {
            throw LivePostfixError("posix_spawn \(arguments[0]): \(String(cString: strerror(status)))")
        }
        pid = child
    }

    /// Not yet exited (reaps it if it has).
    func isRunning() -> Bool { !reap(timeout: 0) }

    /// Waits up to `timeout` seconds for it to exit and reaps it; true once it is gone.
    func reap(timeout: TimeInterval) -> Bool {
        LivePostfix.waitUntil(timeout: timeout) {
            if reaped { return true }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && errno == ECHILD) { reaped = true }
            return reaped
        }
    }
}

// MARK: - SMTP client

/// 127.0.0.1:port as a sockaddr_in.
private func loopback(port: UInt16) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr = in_addr(s_addr: inet_addr("127.0.0.1"))
    return address
}

/// A plain SMTP connection to 127.0.0.1.
final class LiveSMTPConnection {
    private let fd: Int32
    private var buffer: [UInt8] = []
    /// The client's port, as smtpd logs it.
    let localPort: UInt16

    init(port: UInt16, timeout: Int = 15) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LivePostfixError("socket: \(String(cString: strerror(errno)))") }
        var limit = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw LivePostfixError("connect to 127.0.0.1:\(port): \(message)")
        }
        var local = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        localPort = UInt16(bigEndian: local.sin_port)
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress.map { $0 + offset }, $0.count - offset, Int32(MSG_NOSIGNAL))
            }
            guard count > 0 else { throw LivePostfixError("send: \(String(cString: strerror(errno)))") }
            offset += count
        }
    }

    private func readLine() throws -> String {
        while true {
            if let newline = buffer.firstIndex(of: 0x0A) {
                var line = Array(buffer[..<newline])
                buffer.removeSubrange(...newline)
                if line.last == 0x0D { line.removeLast() }
                return String(decoding: line, as: UTF8.self)
            }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else {
                throw LivePostfixError(count == 0 ? "connection closed" : "recv: \(String(cString: strerror(errno)))")
            }
            buffer += chunk[..<count]
        }
    }

    func readReply() throws -> LiveSMTPReply {
        var lines: [String] = []
        while true {
            let line = try readLine()
            guard line.count >= 3, let code = Int(line.prefix(3)) else {
                throw LivePostfixError("not an SMTP reply: \(line.debugDescription)")
            }
            lines.append(String(line.dropFirst(4)))
            if line.count < 4 || line[line.index(line.startIndex, offsetBy: 3)] != "-" {
                return LiveSMTPReply(code: code, lines: lines)
            }
        }
    }

    func command(_ line: String) throws -> LiveSMTPReply {
        try send(line + "\r\n")
        return try readReply()
    }
}

/// One probe message as sent.
struct LiveSentProbe: Sendable {
    var address: String
    var token: String
    var port: UInt16
    var rcptReply: LiveSMTPReply
    var dataReply: LiveSMTPReply?

    /// EHLO, MAIL FROM:<>, RCPT TO:<address>, and DATA when RCPT was accepted, then QUIT.
    static func send(to address: String, port: UInt16, token: String) throws -> LiveSentProbe {
        var connection: LiveSMTPConnection?
        for attempt in 1...30 {  // the listener comes up with the master; allow it a moment
            do {
                connection = try LiveSMTPConnection(port: port)
                break
            } catch {
                if attempt == 30 { throw error }
                usleep(100_000)
            }
        }
        guard let smtp = connection else { throw LivePostfixError("no connection to 127.0.0.1:\(port)") }
        let greeting = try smtp.readReply()
        guard greeting.code == 220 else { throw LivePostfixError("greeting: \(greeting)") }
        let ehlo = try smtp.command("EHLO probe.test")
        guard ehlo.code == 250 else { throw LivePostfixError("EHLO: \(ehlo)") }
        let mail = try smtp.command("MAIL FROM:<>")
        guard mail.code == 250 else { throw LivePostfixError("MAIL FROM:<>: \(mail)") }
        let rcpt = try smtp.command("RCPT TO:<\(address)>")
        var dataReply: LiveSMTPReply?
        if rcpt.isPositive {
            let data = try smtp.command("DATA")
            guard data.code == 354 else { throw LivePostfixError("DATA: \(data)") }
            let message = [
                "From: <live-probe@probe.test>", "To: <\(address)>", "Subject: live probe \(token)",
                "X-Live-Probe: \(token)", "", "Probe \(token) for \(address).", ".",
            ]
            dataReply = try smtp.command(message.joined(separator: "\r\n"))
        }
        _ = try? smtp.command("QUIT")
        return LiveSentProbe(
            address: address, token: token, port: smtp.localPort, rcptReply: rcpt, dataReply: dataReply)
    }
}

// MARK: - The log

/// A delivery status line: `QID: to=<…>, orig_to=<…>, relay=…, delay=…, delays=…, dsn=…, status=… (…)`.
struct LiveStatusLine: Equatable, Sendable {
    var recipient: String
    var originalRecipient: String?
    var relay: String
    var dsn: String
    var status: String
    var text: String
    /// The logging program's last name component (virtual, local, error, discard, …).
    var agent: String
    /// For postfix/would-relay-via-SERVICE/discard: SERVICE.
    var relayTransport: String?

    /// local(8) forwarded the recipient in a new message (alias or .forward to another address).
    var forwardedQueueID: String? {
        guard status == "sent", text.hasPrefix("forwarded as ") else { return nil }
        return String(text.dropFirst("forwarded as ".count))
    }
}

/// One line of the mail log: `MMM DD HH:MM:SS HOST PROGRAM[PID]: MESSAGE`.
struct LiveLogLine: Sendable {
    var raw: String
    var program: String
    var pid: Int
    /// The message after `PROGRAM[PID]: `.
    var message: String
    var queueID: String?
    var isWarning: Bool
    /// The message without `warning: ` and the queue ID.
    var body: String
    var status: LiveStatusLine?

    var agent: String { program.split(separator: "/").last.map(String.init) ?? program }

    init?(_ raw: String) {
        self.raw = raw
        let fields = raw.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
        guard fields.count == 6, let open = fields[4].firstIndex(of: "["), fields[4].hasSuffix("]:") else {
            return nil
        }
        program = String(fields[4][..<open])
        pid = Int(fields[4][fields[4].index(after: open)...].dropLast(2)) ?? 0
        message = String(fields[5])
        var rest = Substring(message)
        isWarning = rest.hasPrefix("warning: ")
        if isWarning { rest = rest.dropFirst("warning: ".count) }
        if let colon = rest.range(of: ": "), colon.lowerBound > rest.startIndex,
            rest[..<colon.lowerBound].allSatisfy({ $0.isHexDigit && !$0.isLowercase }),
            rest.distance(from: rest.startIndex, to: colon.lowerBound) >= 6
        {
            queueID = String(rest[..<colon.lowerBound])
            rest = rest[colon.upperBound...]
        }
        body = String(rest)
        if queueID != nil, !isWarning, body.hasPrefix("to=<") { status = Self.parseStatus(body, program: program) }
    }

    private static func parseStatus(_ body: String, program: String) -> LiveStatusLine? {
        func angle(_ key: String, in text: Substring) -> (String, Substring)? {
            guard text.hasPrefix(key + "=<"), let end = text.range(of: ">, ") else { return nil }
            return (
                String(text[text.index(text.startIndex, offsetBy: key.count + 2)..<end.lowerBound]),
                text[end.upperBound...]
            )
        }
        guard let (recipient, afterTo) = angle("to", in: Substring(body)) else { return nil }
        var rest = afterTo
        var original: String?
        if let (value, after) = angle("orig_to", in: rest) {
            original = value
            rest = after
        }
        func field(_ key: String) -> String {
            guard let start = rest.range(of: key + "=") else { return "" }
            let value = rest[start.upperBound...]
            return String(value.prefix { $0 != "," && $0 != " " })
        }
        guard let statusRange = rest.range(of: "status=") else { return nil }
        let statusPart = rest[statusRange.upperBound...]
        let word = String(statusPart.prefix { $0.isLetter })
        var text = statusPart.dropFirst(word.count)
        if text.hasPrefix(" ("), text.hasSuffix(")") {
            text = text.dropFirst(2).dropLast()
        } else if text.hasPrefix(", ") {
            text = text.dropFirst(2)
        }
        let components = program.split(separator: "/")
        let relayTransport = components.first { $0.hasPrefix("would-relay-via-") }.map {
            String($0.dropFirst("would-relay-via-".count))
        }
        return LiveStatusLine(
            recipient: recipient, originalRecipient: original, relay: field("relay"), dsn: field("dsn"), status: word,
            text: String(text).trimmingCharacters(in: .whitespaces), agent: components.last.map(String.init) ?? program,
            relayTransport: relayTransport)
    }
}

/// The parsed log: smtpd sessions by client port, lines by queue ID, per-message progress.
struct LiveLog {
    struct Session {
        var port: UInt16
        var lines: [Int] = []
        var queueIDs: [String] = []
        var closed = false
    }

    var lines: [LiveLogLine]
    /// Lines read, parsed or not.
    var rawLineCount: Int
    var sessions: [Session] = []
    var byQueueID: [String: [Int]] = [:]
    var removed: Set<String> = []
    var recipientCount: [String: Int] = [:]

    init(lines raw: [String]) {
        rawLineCount = raw.count
        lines = raw.compactMap(LiveLogLine.init)
        var open: [Int: Int] = [:]  // smtpd pid -> session index
        for (index, line) in lines.enumerated() {
            if let queueID = line.queueID {
                byQueueID[queueID, default: []].append(index)
                if line.body == "removed" { removed.insert(queueID) }
                if let range = line.body.range(of: "nrcpt="),
                    let count = Int(line.body[range.upperBound...].prefix { $0.isNumber })
                {
                    recipientCount[queueID] = count
                }
            }
            guard line.agent == "smtpd" else { continue }
            if line.message.hasPrefix("connect from "), let port = Self.clientPort(line.message) {
                open[line.pid] = sessions.count
                sessions.append(Session(port: port, lines: [index]))
                continue
            }
            guard let session = open[line.pid] else { continue }
            sessions[session].lines.append(index)
            if let queueID = line.queueID, line.body.hasPrefix("client=") { sessions[session].queueIDs.append(queueID) }
            if line.message.hasPrefix("disconnect from ") {
                sessions[session].closed = true
                open[line.pid] = nil
            }
        }
    }

    /// `…[127.0.0.1]:PORT…` in an smtpd line.
    static func clientPort(_ message: String) -> UInt16? {
        guard let range = message.range(of: "]:") else { return nil }
        return UInt16(message[range.upperBound...].prefix { $0.isNumber })
    }

    /// The probe's session is over and, if its message was queued, every recipient of it (and
    /// of the messages local(8) forwarded it into) has a fate.
    func isComplete(_ probe: LiveSentProbe) -> Bool {
        guard sessions.contains(where: { $0.port == probe.port && $0.closed }) else { return false }
        guard probe.rcptReply.isPositive, let data = probe.dataReply, data.isPositive else { return true }
        guard let queueID = LivePostfix.queueID(in: data) else { return true }
        return family(of: queueID).allSatisfy(messageIsComplete)
    }

    func statuses(of queueID: String) -> [LiveStatusLine] {
        (byQueueID[queueID] ?? []).compactMap { lines[$0].status }
    }

    /// The message and those local(8) forwarded it into (`status=sent (forwarded as QID)`).
    func family(of queueID: String) -> [String] {
        var family = [queueID]
        var next = 0
        while next < family.count {
            for status in statuses(of: family[next]) {
                if let forwarded = status.forwardedQueueID, !family.contains(forwarded) { family.append(forwarded) }
            }
            next += 1
        }
        return family
    }

    /// qmgr removed it, or every queued recipient has a status line and one was deferred
    /// (a deferred message stays in the queue).
    func messageIsComplete(_ queueID: String) -> Bool {
        if removed.contains(queueID) { return true }
        let statuses = statuses(of: queueID)
        guard let count = recipientCount[queueID], statuses.contains(where: { $0.status == "deferred" }) else {
            return false
        }
        return Set(statuses.map { "\($0.recipient)\u{0}\($0.originalRecipient ?? "")" }).count >= count
    }
}

// MARK: - The case file

/// One probe of the case file: `LABEL ADDRESS OUTCOME`, then its warnings.
struct LiveCase: Sendable {
    var label: String
    var address: String
    var expected: LiveOutcome
    var warnings: [String]
    var line: Int
}

/// Fixtures/live/cases (the format is described at the top of that file).
struct LiveCaseFile: Sendable {
    var cases: [LiveCase] = []
    var globalWarnings: [String] = []

    init(contentsOf url: URL) throws {
        try self.init(parsing: String(contentsOf: url, encoding: .utf8), name: url.lastPathComponent)
    }

    init(parsing text: String, name: String = "cases") throws {
        for (offset, rawLine) in text.components(separatedBy: "\n").enumerated() {
            let number = offset + 1
            let trimmed = rawLine.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if rawLine.first == " " || rawLine.first == "\t" {
                guard trimmed.hasPrefix("warning "), !cases.isEmpty else {
                    throw LivePostfixError("\(name):\(number): a continuation line must be `warning AGENT: TEXT`")
                }
                cases[cases.count - 1].warnings.append(String(trimmed.dropFirst("warning ".count)))
                continue
            }
            if trimmed.hasPrefix("global-warning ") {
                globalWarnings.append(String(trimmed.dropFirst("global-warning ".count)))
                continue
            }
            guard let (fields, rest) = splitFields(Substring(trimmed), 2), let outcome = LiveOutcome(parsing: rest)
            else { throw LivePostfixError("\(name):\(number): cannot parse \(trimmed.debugDescription)") }
            cases.append(LiveCase(label: fields[0], address: fields[1], expected: outcome, warnings: [], line: number))
        }
    }

    /// The probe lines for observed probes, in the case-file form (labels from `cases`).
    static func render(_ cases: [LiveCase], _ run: LiveRun) -> String {
        var out: [String] = []
        for (item, probe) in zip(cases, run.probes) {
            out.append("\(item.label)  \(probe.address)  \(probe.outcome)")
            out += probe.warnings.map { "    warning \($0)" }
        }
        out += run.globalWarnings.map { "global-warning \($0)" }
        return out.joined(separator: "\n") + "\n"
    }
}

/// The first `count` space-separated fields of `text`, and the rest after one run of spaces
/// (verbatim); nil when there are fewer fields or no rest.
private func splitFields(_ text: Substring, _ count: Int) -> ([String], String)? {
    var fields: [String] = []
    var rest = text.drop { $0 == " " }
    while fields.count < count {
        guard let space = rest.firstIndex(of: " ") else { return nil }
        fields.append(String(rest[..<space]))
        rest = rest[space...].drop { $0 == " " }
    }
    return rest.isEmpty ? nil : (fields, String(rest))
}
