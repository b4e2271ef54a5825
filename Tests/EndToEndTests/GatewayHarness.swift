import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// Real parts around one `faxgate serve` process: Dovecot + Postfix (contrib/testservers.sh), the rcapi
/// simulator in this process, reached by the gateway through Debian's libcapi20, and a config in a temp dir.
final class GatewayHarness: @unchecked Sendable {
    let mail: MailServers
    let simulator: CapiSimulator
    let dir: TemporaryDirectory
    var configPath: String { dir.path + "/faxgate.yaml" }
    var spool: String { dir.path + "/spool" }
    var logPath: String { dir.path + "/faxgate.log" }
    private(set) var process: Process?

    /// Where `faxgate serve` keeps its state: the embedded SQLite file in the spool, or a fresh database of its
    /// own in the test run's PostgreSQL cluster (TestSupport.PostgresServer).
    enum StorageBackend: Sendable, Equatable { case sqlite, postgres }

    /// The backend a harness takes when its options do not say: the *Postgres*EndToEndTests re-run existing
    /// suites' tests unchanged inside `$defaultStorage.withValue(.postgres) { … }`.
    @TaskLocal static var defaultStorage: StorageBackend = .sqlite

    /// What a PostgreSQL harness left behind, taken by `shutdown()` before its database is dropped: the re-run
    /// suites cannot see their harness, so this is how a wrapper proves the run really stored into PostgreSQL.
    final class StorageObservation: @unchecked Sendable {
        private let lock = NSLock()
        private var _rows: [String: Int] = [:]
        private var _sqliteFiles: [String] = []
        /// Rows per table (lower-cased names), summed over every harness of the run.
        var rows: [String: Int] { lock.lock(); defer { lock.unlock() }; return _rows }
        /// SQLite files found in a spool (there must be none with driver postgres).
        var sqliteFiles: [String] { lock.lock(); defer { lock.unlock() }; return _sqliteFiles }
        var harnesses: Int { lock.lock(); defer { lock.unlock() }; return _harnesses }
        private var _harnesses = 0
        func record(rows: [String: Int], sqliteFiles: [String]) {
            lock.lock(); defer { lock.unlock() }
            _harnesses += 1
            _rows.merge(rows, uniquingKeysWith: +)
            _sqliteFiles += sqliteFiles
        }
        /// Rows in the tables whose name contains `part` (case-insensitive).
        func rows(containing part: String) -> Int {
            rows.filter { $0.key.contains(part.lowercased()) }.map(\.value).reduce(0, +)
        }
    }
    @TaskLocal static var storageObservation: StorageObservation?

    struct Options {
        /// `storage:` of the config (see `StorageBackend`).
        var storage: StorageBackend = GatewayHarness.defaultStorage
        var smtpSecurity = "starttls"
        var formats = ["pdf"]
        var language = "de"
        var retryInitialSeconds = 1
        var catchAll: String? = nil
        /// Mail → fax: watch the fax@example.test mailbox and allow these senders through extension "Empfang".
        var mailToFax = false
        var allowedSenders = ["alice@example.test"]
        var requireAuthentication = "none"
        var outgoingExtra = ""
        var maxPagesPerDay = 500
        /// `voicemail:` section of extension "Empfang" (keys and values, one per line, unindented).
        var voicemail: String? = nil
        /// `voicemail:` section of extension "Labor" (number 200, mails to the second test user).
        var laborVoicemail: String? = nil
        /// Run `faxgate serve` as this unprivileged user (via setpriv), as the systemd unit does.
        var runAsUser: String? = nil
        /// `reception:` section (keys and values, one per line, unindented), e.g. "max_pages: 1".
        var reception: String? = nil
        /// With `runAsUser`: run under contrib/faxgate.service's restrictions, these keys overridden
        /// (e.g. ["RestrictNamespaces=yes"]); nil = plain setpriv.
        var unitOverrides: [String]? = nil
        /// `outgoing.line` (a YAML flow mapping) when mail → fax is off: how incoming numbers are written.
        var numberLine: String? = nil
        /// `pdf_page_size` of extension "Empfang"; nil = the default (a4).
        var pdfPageSize: String? = nil
        /// `poll_seconds` of the watched mailbox (also the longest IDLE before a re-check).
        var pollSeconds = 5
        /// `mail.admin_address` (refusal digests, MTA alerts).
        var adminAddress: String? = nil
        /// `outgoing.replies` (a YAML flow mapping), e.g. "{max_per_recipient_per_hour: 2}".
        var replies: String? = nil
        /// `web:` section (keys and values, one per line, unindented), e.g. "listen: 127.0.0.1:18025".
        var web: String? = nil
        /// `outgoing.retry` (a YAML flow mapping); the default retries after a second.
        var outgoingRetry = "{busy_seconds: 1, no_answer_seconds: 1, protocol_error_seconds: 1, network_failure_seconds: 1, max_tries: 4, max_protocol_errors: 2}"
        /// The simulator's TCP protocol; `capi.driver` follows it (rcapi or fritzbox).
        var capiWire: CapiWire = .rcapi
        /// What the simulator's GET_PROFILE reports; nil = the wire's default (fritzbox: transparent only).
        var controllerProfile: ControllerProfile? = nil
        /// More `capi:` keys (one per line, unindented), e.g. "fax_engine: auto".
        var capi: String? = nil
        /// The simulator's port (0 = a free one) and whether `capi.port` names it (false: the driver's default applies).
        var simulatorPort: UInt16 = 0
        var capiPortInConfig = true
    }
    let options: Options
    /// Extra environment for the next `startGateway()` (e.g. the test-only FAXGATE_TEST_CRASH_AFTER).
    var environment: [String: String] = [:]
    /// The port of the gateway's web pages (`web.listen: 127.0.0.1:<webPort>`, free when the harness was made),
    /// unless `options.web` names its own `listen`.
    let webPort: Int
    var webURL: String { "http://127.0.0.1:\(webPort)" }
    /// With `.postgres`: the cluster and this harness's database (dropped by `shutdown()`).
    let postgres: PostgresServer?
    let postgresDatabase: String?

    /// `web:` with a free loopback port, plus `options.web`'s lines.
    var webSection: String {
        var lines = options.web.map { $0.split(separator: "\n").map(String.init) } ?? []
        if !lines.contains(where: { $0.hasPrefix("listen:") }) { lines.insert("listen: 127.0.0.1:\(webPort)", at: 0) }
        return "web:\n" + lines.map { "  " + $0 }.joined(separator: "\n")
    }

    init(_ options: Options = Options()) throws {
        self.options = options
        webPort = try FreePort.loopbackTCP()
        dir = try TemporaryDirectory("faxgate-e2e")
        if options.storage == .postgres {
            let server = try PostgresServer.shared()
            postgres = server
            postgresDatabase = try server.createDatabase("e2e")
        } else {
            postgres = nil
            postgresDatabase = nil
        }
        mail = try MailServers.start()
        simulator = CapiSimulator(port: options.simulatorPort, wire: options.capiWire, profile: options.controllerProfile)
        try simulator.start()
        try writeConfig()
    }

    /// `storage:` for PostgreSQL as a production node reaches it: the password role (SCRAM over TLS only, its
    /// password in a 0600 file) and verify-full against the cluster's CA; empty for SQLite (the default file).
    func storageSection() throws -> String {
        guard let server = postgres, let database = postgresDatabase else { return "" }
        let passwordFile = try server.writePasswordFile(in: dir.path)
        return """
        storage:
          driver: postgres
          postgres:
            host: localhost
            port: \(server.port)
            database: \(database)
            user: \(server.passwordRole)
            password_file: \(passwordFile)
            tls: verify-full
            ca_file: \(server.caFile)
            max_connections: 4
        """
    }

    /// SQL as the superuser in this harness's PostgreSQL database (what the gateway really stored).
    @discardableResult
    func psql(_ sql: String) throws -> String {
        guard let server = postgres, let database = postgresDatabase else { throw ToolError(description: "not on PostgreSQL") }
        return try server.psql(sql, database: database)
    }

    func writeConfig() throws {
        try (mail.password + "\n").write(toFile: dir.path + "/smtp-password", atomically: true, encoding: .utf8)
        let storage = try storageSection()
        let port = options.smtpSecurity == "tls" ? mail.smtpsPort : mail.smtpStartTLSPort
        let yaml = """
        spool_directory: \(spool)
        hostname: faxgate.e2e.test
        \(storage)
        log:
          level: debug
          redact_from: info
        capi:
          driver: \(options.capiWire.driver)
          host: 127.0.0.1
        \(options.capiPortInConfig ? "  port: \(simulator.port)" : "")
        \(options.capi.map { $0.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") } ?? "")
        smtp:
          host: localhost
          port: \(port)
          security: \(options.smtpSecurity)
          username: \(mail.user)
          password_file: \(dir.path)/smtp-password
          ca_file: \(mail.caFile)
          timeout_seconds: 10
          retry_initial_seconds: \(options.retryInitialSeconds)
          retry_max_seconds: 2
        mail:
          from: "Faxgate Test <\(mail.user)>"
        \(options.adminAddress.map { "  admin_address: \($0)" } ?? "")
        \(options.catchAll.map { "catch_all: \($0)" } ?? "")
        \(webSection)
        \(options.reception.map { "reception:\n" + $0.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") } ?? "")
        extensions:
          - name: Empfang
            numbers: ["100", "120-129"]
            email: [\(mail.user)]
            formats: [\(options.formats.joined(separator: ", "))]
            language: \(options.language)
            station_id: "+49 30 9999100"
            headline: "Faxgate Test"
        \(options.pdfPageSize.map { "    pdf_page_size: \($0)" } ?? "")
            senders:
              allow: [\(options.allowedSenders.joined(separator: ", "))]
              require_authentication: \(options.requireAuthentication)
              trusted_authserv_id: mx.example.test
              calling_number: "100"
        \(options.voicemail.map { "    voicemail:\n" + $0.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n") } ?? "")
          - name: Labor
            numbers: ["200"]
            email: [\(mail.users[1])]
            language: en
        \(options.laborVoicemail.map { "    voicemail:\n" + $0.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n") } ?? "")
        """
        let outgoing = options.mailToFax ? """

        outgoing:
          fax_domains: [fax.example.test]
          subject_addresses: [fax@example.test]
          line: {country_code: "49", area_code: "30"}
          policy: {max_pages_per_sender_per_day: \(options.maxPagesPerDay)}
          retry: \(options.outgoingRetry)
          render_timeout_seconds: 10
          max_message_bytes: 10485760
          mailboxes:
            - name: faxin
              host: 127.0.0.1
              port: \(mail.imapsPort)
              security: tls
              username: \(mail.user)
              password_file: \(dir.path)/smtp-password
              ca_file: \(mail.caFile)
              poll_seconds: \(options.pollSeconds)
          # The test Postfix (contrib/testservers.sh): entry mx.example.test, verdict hop, Dovecot's LMTP.
          trusted_mta: {authserv_id: mx.example.test, entry_hosts: [mx.example.test], internal_hosts: [verdict.example.test, store.example.test]}
        \(options.replies.map { "  replies: \($0)" } ?? "")
        \(options.outgoingExtra)
        """ : options.numberLine.map { "\noutgoing:\n  line: \($0)\n" } ?? ""
        try (yaml + outgoing).write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    static var faxgateBinary: String {
        // Lets a test run against another build, e.g. the old code, to show that a regression test fails there.
        if let other = ProcessInfo.processInfo.environment["FAXGATE_E2E_BINARY"], !other.isEmpty { return other }
        let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("faxgate").path
        if FileManager.default.isExecutableFile(atPath: beside) { return beside }
        return packageRoot.appendingPathComponent(".build/debug/faxgate").path
    }

    /// Starts `faxgate serve` and waits until it listens on the simulated controller.
    func startGateway() async throws {
        let p = Process()
        if let user = options.runAsUser {
            // The daemon's files belong to its user; it needs nothing else from root.
            try runTool("chown", ["-R", "\(user):", dir.path])
            try runTool("chmod", ["755", dir.path])
            if let overrides = options.unitOverrides {
                // As contrib/faxgate.service runs it: its user and its seccomp restrictions (Tests/Scripts/unit_exec.py).
                let unit = dir.path + "/faxgate.service"
                try? FileManager.default.removeItem(atPath: unit)
                try FileManager.default.copyItem(atPath: packageRoot.appendingPathComponent("contrib/faxgate.service").path, toPath: unit)
                try runTool("chmod", ["644", unit])
                p.executableURL = URL(fileURLWithPath: MailServers.python3)
                p.arguments = [packageRoot.appendingPathComponent("Tests/Scripts/unit_exec.py").path, unit]
                    + overrides.flatMap { ["--set", $0] } + ["--", Self.faxgateBinary, "serve", "-c", configPath]
            } else {
                p.executableURL = URL(fileURLWithPath: try resolveExecutable("setpriv"))
                p.arguments = ["--reuid=\(user)", "--regid=\(user)", "--clear-groups", "--no-new-privs", "--",
                               Self.faxgateBinary, "serve", "-c", configPath]
            }
        } else {
            p.executableURL = URL(fileURLWithPath: Self.faxgateBinary)
            p.arguments = ["serve", "-c", configPath]
        }
        if !FileManager.default.fileExists(atPath: logPath) { FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        try p.run()
        process = p
        // A gateway that exits at once (a refused config, an unreachable database) fails here, not after 30 s.
        let deadline = Date().addingTimeInterval(30)
        while !simulator.isListening {
            if !p.isRunning {
                throw ToolError(description: "gateway exited (status \(p.terminationStatus)) before LISTEN\n\(gatewayLog())")
            }
            guard Date() < deadline else { throw ToolError(description: "gateway did not LISTEN within 30 s\n\(gatewayLog())") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// SIGTERM and wait; returns the exit status.
    @discardableResult
    func stopGateway(signal: Int32 = SIGTERM, timeout: TimeInterval = 60) -> Int32 {
        guard let p = process, p.isRunning else { return process?.terminationStatus ?? 0 }
        kill(p.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(50_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        process = nil
        return p.terminationStatus
    }

    func gatewayLog() -> String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    func shutdown() {
        stopGateway()
        simulator.stop()
        mail.stop()
        if let server = postgres, let database = postgresDatabase {
            if let observation = Self.storageObservation { observe(into: observation) }
            server.dropDatabase(database)
        }
    }

    /// Exact row counts of every table in the harness's database, and any *.sqlite* file in the spool.
    private func observe(into observation: StorageObservation) {
        var rows: [String: Int] = [:]
        let sql = """
            SELECT lower(table_name), (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I',
                   table_schema, table_name), false, true, '')))[1]::text
            FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
            """
        for line in ((try? psql(sql)) ?? "").split(separator: "\n") {
            let parts = line.split(separator: "|")
            if parts.count == 2, let n = Int(parts[1]) { rows[String(parts[0]), default: 0] += n }
        }
        let files = (FileManager.default.enumerator(atPath: spool)?.allObjects as? [String] ?? []).filter { $0.contains(".sqlite") }
        observation.record(rows: rows, sqliteFiles: files)
    }

    /// The journal as the admin sees it, through the CLI.
    func journal() throws -> [CallRecord] {
        let out = try runTool(Self.faxgateBinary, ["journal", "--json", "-c", configPath])
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try out.stdoutText.split(separator: "\n").map { try decoder.decode(CallRecord.self, from: Data($0.utf8)) }
    }

    /// Polls the journal until `condition` holds.
    func waitForJournal(timeout: TimeInterval = 30, _ condition: ([CallRecord]) -> Bool) async throws -> [CallRecord] {
        try await poll("journal", timeout: timeout, read: journal, condition)
    }

    /// Reads `read` every 200 ms until `condition` holds; fails with the last value and the gateway log.
    func poll<T>(_ what: String, timeout: TimeInterval, read: () throws -> [T], _ condition: ([T]) -> Bool) async throws -> [T] {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [T] = []
        while Date() < deadline {
            last = (try? read()) ?? []
            if condition(last) { return last }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw ToolError(description: "\(what) condition not met; \(what): \(last)\n--- gateway log:\n\(gatewayLog())")
    }

    /// Submits a message to the real Postfix (plain port, from 127.0.0.1) with Python's smtplib.
    func submit(_ message: [UInt8]) throws {
        let file = dir.path + "/submit-\(UUID().uuidString.prefix(6)).eml"
        try Data(message).write(to: URL(fileURLWithPath: file))
        try runTool(MailServers.python3, ["-c", """
            import smtplib, sys, email, email.policy, email.utils
            raw = open(sys.argv[1], 'rb').read()
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            s = smtplib.SMTP('127.0.0.1', int(sys.argv[2]), timeout=30)
            s.sendmail(msg['From'] and email.utils.parseaddr(msg['From'])[1] or '', [a for _, a in email.utils.getaddresses(msg.get_all('To', []) + msg.get_all('Cc', []))], raw)
            s.quit()
            """, file, String(mail.smtpPlainPort)])
    }

    /// The outgoing jobs as `faxgate queue --json` lists them.
    func queue() throws -> [FaxJob] {
        let out = try runTool(Self.faxgateBinary, ["queue", "--json", "-c", configPath])
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try out.stdoutText.split(separator: "\n").map { try decoder.decode(FaxJob.self, from: Data($0.utf8)) }
    }

    func waitForQueue(timeout: TimeInterval = 40, _ condition: ([FaxJob]) -> Bool) async throws -> [FaxJob] {
        try await poll("queue", timeout: timeout, read: queue, condition)
    }

    /// CPU seconds (user + system) the gateway process has used so far, from /proc.
    func gatewayCPUSeconds() throws -> Double {
        guard let pid = process?.processIdentifier else { throw ToolError(description: "gateway not running") }
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        // After the command name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
        let utime = Double(fields[11])!, stime = Double(fields[12])!
        return (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// A received mail taken apart by Python's email package.
struct ParsedMail {
    var headers: [String: String]
    var rawHeaders: String
    var body: String
    var attachments: [(filename: String, contentType: String, path: String)]

    init(_ raw: [UInt8], in dir: TemporaryDirectory) throws {
        let eml = dir.path + "/msg-\(UUID().uuidString.prefix(6)).eml"
        try Data(raw).write(to: URL(fileURLWithPath: eml))
        let out = try runTool(MailServers.python3, [packageRoot.appendingPathComponent("Tests/Scripts/mail_parts.py").path, eml, dir.path])
        let json = try JSONSerialization.jsonObject(with: out.stdout) as! [String: Any]
        headers = json["headers"] as! [String: String]
        rawHeaders = json["raw_headers"] as! String
        body = json["body"] as! String
        attachments = (json["attachments"] as! [[String: Any]]).map {
            ($0["filename"] as! String, $0["content_type"] as! String, $0["path"] as! String)
        }
    }
}
