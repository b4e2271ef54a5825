import FaxDocument
import FaxgateCore
import Foundation
import Logging
import MailOut
import ServiceLifecycle
import SQLiteStorage
import TestSupport
import XCTest

/// The checks that run again after a fax was accepted (right before dialling, on resend), per-domain daily
/// limits, and the drop directory's file checks — with the real SQLite storage and the real queue.
final class DialRulesTests: XCTestCase {
    func config(deny: [String] = ["+49900"], outsideLine: String = "", allow: [String] = ["alice@example.test", "@praxis.example"],
                maxJobs: Int = 50) throws -> Configuration {
        try ConfigLoader.parse("""
        spool_directory: /tmp/x
        smtp: {host: mail.example.test, port: 587}
        mail: {from: fax@example.test}
        extensions:
          - name: Front
            numbers: ["100"]
            email: [front@example.test]
            senders:
              allow: [\(allow.map { "\"\($0)\"" }.joined(separator: ", "))]
              require_authentication: none
        outgoing:
          fax_domains: [fax.example.test]
          line: {country_code: "49", area_code: "30", outside_line_prefix: "\(outsideLine)"}
          policy: {deny_prefixes: [\(deny.map { "\"\($0)\"" }.joined(separator: ", "))], max_jobs_per_sender_per_day: \(maxJobs)}
        """)
    }

    func parts(_ dir: TemporaryDirectory) async throws -> (SQLiteStorage, Outbox) {
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: RecordingSender(),
                                settings: .init(retryInitial: .seconds(1), retryMax: .seconds(1), giveUpAfter: .seconds(60)), logger: Logger(label: "t"))
        return (storage, outbox)
    }

    func job(_ storage: SQLiteStorage, dir: TemporaryDirectory, number: String, dial: String, sender: String = "alice@example.test",
             state: FaxJob.State = .ready, limitKey: String? = nil) async throws -> FaxJob {
        let sff = dir.path + "/doc.sff"
        if !FileManager.default.fileExists(atPath: sff) {
            let page = FaxPage(bitmap: [UInt8](repeating: 0, count: 216 * 50), width: 1728, height: 50, resolution: .fine)
            try Data(SFFWriter.write([page])).write(to: URL(fileURLWithPath: sff))
        }
        var j = FaxJob(state: state, intakeID: nil, sender: sender, senderName: nil, extensionName: "Front", language: "en", number: number,
                       dialString: dial, subject: "Befund", pages: 1, fine: true, sffPath: sff, requestMessageID: nil)
        j.limitKey = limitKey
        return try await storage.insertJobs([j], intake: nil, event: "test").first!
    }

    func queue(_ storage: SQLiteStorage, _ outbox: Outbox, _ transport: ScriptedTransport, rules: DialRules) -> SendQueue {
        SendQueue(settings: .init(from: MailAddress("fax@example.test"), hostname: "gw.test", retry: RetryConfig(), notifyEachRetry: false,
                                  callingNumbers: [:], stationIDs: [:], rules: rules),
                  storage: storage, transport: transport, outbox: outbox, logger: Logger(label: "test"))
    }

    func run(_ queue: SendQueue, until condition: @escaping () async -> Bool) async throws {
        let group = ServiceGroup(services: [queue], logger: Logger(label: "test"))
        let task = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !(await condition()) { try await Task.sleep(for: .milliseconds(100)) }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// Queued under yesterday's configuration, dialled under today's: a prefix blocked in between is honoured
    /// (in E.164 and in the dial string's form), the dial string follows today's outside-line prefix, and a
    /// number that is not ASCII is never handed to the transport.
    func testBeforeDialling_theCurrentPolicyDecides() async throws {
        let dir = try TemporaryDirectory("rules")
        let (storage, outbox) = try await parts(dir)
        let blocked = try await job(storage, dir: dir, number: "+49301234567", dial: "0301234567")
        let stale = try await job(storage, dir: dir, number: "+49307654321", dial: "0307654321")
        let unicode = try await job(storage, dir: dir, number: "+4930\u{0663}1234567", dial: "030\u{0663}1234567")
        let premiumDial = try await job(storage, dir: dir, number: "+49401111111", dial: "09001111111")
        let transport = ScriptedTransport(lines: 4, script: [:])
        let rules = DialRules(try config(deny: ["+49900", "+4930123"], outsideLine: "0"))
        let q = queue(storage, outbox, transport, rules: rules)
        try await run(q) {
            await [blocked, stale, unicode, premiumDial].asyncMap { (try? await storage.job(id: $0.id!))?.state.isFinal == true }.allSatisfy { $0 }
        }
        let calls = transport.calls.withLock { $0.map { $0.number } }
        XCTAssertEqual(calls, ["00307654321", "00401111111"], "only allowed numbers, with today's outside-line prefix")
        for j in [blocked, unicode] {
            let now = try await storage.job(id: j.id!)!
            XCTAssertEqual(now.state, .failed)
            XCTAssertEqual(now.lastCause, SendOutcome.Cause.blockedByPolicy.rawValue, "\(now)")
            let outboxNow7 = await outbox.isKnown("job-\(j.id!)-failed")
            XCTAssertTrue(outboxNow7, "the sender hears why")
        }
        let staleNow = try await storage.job(id: stale.id!), premiumNow = try await storage.job(id: premiumDial.id!)
        XCTAssertEqual(staleNow?.dialString, "00307654321", "the dialled string is recorded")
        XCTAssertEqual(premiumNow?.dialString, "00401111111",
                       "a stored dial string is never dialled as such: it is made again from the E.164 number")
    }

    func testResend_goesThroughSenderListDialPolicyAndLimits() async throws {
        let dir = try TemporaryDirectory("resend")
        let (storage, outbox) = try await parts(dir)
        let done = try await job(storage, dir: dir, number: "+49301234567", dial: "0301234567", state: .done, limitKey: "alice@example.test")
        let transport = ScriptedTransport(lines: 1, script: [:])

        let blocked = queue(storage, outbox, transport, rules: DialRules(try config(deny: ["+4930"])))
        var answer = try await blocked.resend(jobID: done.id!)
        XCTAssertTrue(answer.hasPrefix("refused: "), answer)
        XCTAssertTrue(answer.contains("+4930"), answer)

        let noSender = queue(storage, outbox, transport, rules: DialRules(try config(allow: ["bob@example.test"])))
        answer = try await noSender.resend(jobID: done.id!)
        XCTAssertEqual(answer, "refused: resend of job #\(done.id!): alice@example.test is no longer on the sender list of the extension Front")

        let limited = queue(storage, outbox, transport, rules: DialRules(try config(maxJobs: 1)))
        answer = try await limited.resend(jobID: done.id!)
        XCTAssertTrue(answer.hasPrefix("refused: ") && answer.contains("limit of 1"), answer)
        let count = try await storage.recentJobs(limit: 10).count
        XCTAssertEqual(count, 1, "no refused resend made a job")

        let fine = queue(storage, outbox, transport, rules: DialRules(try config(maxJobs: 2)))
        answer = try await fine.resend(jobID: done.id!)
        XCTAssertTrue(answer.contains("(resend of #\(done.id!))"), answer)
        let again = try await storage.recentJobs(limit: 1).first!
        XCTAssertEqual(again.limitKey, "alice@example.test", "the resend counts against the same limit")
        let used = try await storage.usage(limitKey: "alice@example.test", since: Date().addingTimeInterval(-3600))
        XCTAssertEqual(used.jobs, 2)
    }

    /// "@praxis.example" on the allow list: every sender of that domain shares one daily limit.
    func testDomainEntry_sendersShareOneDailyLimit() async throws {
        let dir = try TemporaryDirectory("domainlimit")
        let (storage, outbox) = try await parts(dir)
        var cfg = try config(maxJobs: 2)
        cfg.spoolDirectory = dir.path + "/spool"
        let processor = try SubmissionProcessor(settings: .init(spoolDirectory: cfg.spoolDirectory, from: MailAddress("fax@example.test"),
                                                                hostname: "gw.test"),
                                                config: cfg, storage: storage, outbox: outbox, logger: Logger(label: "t"), jobsAdded: {})
        var results: [IntakeRecord.State] = []
        for (n, sender) in ["dr.a@praxis.example", "dr.b@praxis.example", "dr.c@praxis.example", "alice@example.test"].enumerated() {
            let mail = IncomingMail(fromAddress: sender, to: ["030123456\(n)@fax.example.test"], subject: "Befund \(n)",
                                    messageID: "<m\(n)@x>", textBody: "Bitte faxen.")
            let (record, _) = try await storage.recordIntake(IntakeRecord(source: "test", uidValidity: 1, uid: Int64(n + 1), messageID: "<m\(n)@x>",
                                                                         rawPath: dir.path + "/m\(n).eml"))
            results.append(try await processor.process(mail, intake: record).state)
        }
        XCTAssertEqual(results, [.accepted, .accepted, .rejected, .accepted], "the third of the domain is over its shared limit; alice has her own")
        let jobs = try await storage.recentJobs(limit: 10)
        XCTAssertEqual(Set(jobs.compactMap(\.limitKey)), ["@praxis.example", "alice@example.test"])
        let shared = try await storage.usage(limitKey: "@praxis.example", since: Date().addingTimeInterval(-3600))
        XCTAssertEqual(shared.jobs, 2)
    }

    func testUsageByLimitKey_ignoresCanceledAndOlderJobs() async throws {
        let dir = try TemporaryDirectory("usage")
        let (storage, _) = try await parts(dir)
        _ = try await job(storage, dir: dir, number: "+49301", dial: "0301", limitKey: "@praxis.example")
        _ = try await job(storage, dir: dir, number: "+49302", dial: "0302", state: .canceled, limitKey: "@praxis.example")
        _ = try await job(storage, dir: dir, number: "+49303", dial: "0303", sender: "Bob@Example.test")
        let domain = try await storage.usage(limitKey: "@praxis.example", since: Date().addingTimeInterval(-60))
        let bob = try await storage.usage(limitKey: "bob@example.test", since: Date().addingTimeInterval(-60))
        let later = try await storage.usage(limitKey: "@praxis.example", since: Date().addingTimeInterval(60))
        XCTAssertEqual(domain.jobs, 1)
        XCTAssertEqual(bob.jobs, 1, "a job stored without a key counts under its sender")
        XCTAssertEqual(later.jobs, 0)
    }

    /// lstat + O_NOFOLLOW + fstat: links and other users' files are never read.
    func testDropFiles_symlinksHardLinksAndOtherOwnersAreNotRead() throws {
        let dir = try TemporaryDirectory("dropfiles")
        let secret = dir.path + "/secret.pdf"
        try Data("%PDF-secret".utf8).write(to: URL(fileURLWithPath: secret))
        let mine = dir.path + "/r.0"
        try Data("%PDF-mine".utf8).write(to: URL(fileURLWithPath: mine))
        XCTAssertEqual(symlink(secret, dir.path + "/r.1"), 0)
        XCTAssertEqual(link(secret, dir.path + "/r.2"), 0)
        XCTAssertEqual(mkfifo(dir.path + "/r.3", 0o600), 0)
        let other = dir.path + "/r.4"
        try Data("%PDF-other".utf8).write(to: URL(fileURLWithPath: other))
        XCTAssertEqual(chown(other, 65534, 65534), 0, "tests run as root")
        let me = getuid()

        guard case .success(let read) = DropDirectoryIntake.readOwnedFile(mine, owner: me, maxBytes: 100) else { return XCTFail() }
        XCTAssertEqual(read.bytes, Array("%PDF-mine".utf8))
        XCTAssertEqual(read.owner, me)
        func problem(_ path: String, max: Int = 100) -> DropDirectoryIntake.FileProblem? {
            if case .failure(let p) = DropDirectoryIntake.readOwnedFile(path, owner: me, maxBytes: max) { return p }
            return nil
        }
        XCTAssertEqual(problem(dir.path + "/r.1"), .symbolicLink)
        XCTAssertEqual(problem(dir.path + "/r.2"), .hardLinked)
        XCTAssertEqual(problem(dir.path + "/r.3"), .notRegular)
        XCTAssertEqual(problem(other), .wrongOwner(owner: 65534, expected: me))
        XCTAssertEqual(problem(mine, max: 3), .tooLarge(limit: 3))
    }
}
