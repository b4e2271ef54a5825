import FaxDocument
import FaxgateCore
import Foundation
import Logging
import MailOut
import ServiceLifecycle
import SQLiteStorage
import Synchronization
import TestSupport
import XCTest

/// Records every call with its document and lets a test hold a call on the line until it says so.
final class HoldingTransport: FaxSendingTransport {
    struct Call: Sendable { var jobID: Int64; var number: String; var pageHeights: [Int]; var start: Date; var end: Date }
    let name = "holding"
    let lines: Int
    let calls = Mutex<[Call]>([])
    /// Numbers whose calls are on the line now (the test waits for them).
    let onLine = Mutex<Set<String>>([])
    /// While set, a call stays on the line until `release()`.
    let hold = Mutex(false)
    let pagesConfirmed: Int?
    init(lines: Int, hold: Bool = false, pagesConfirmed: Int? = nil) {
        self.lines = lines; self.pagesConfirmed = pagesConfirmed; self.hold.withLock { $0 = hold }
    }
    var channels: Int { get async { lines } }
    func run() async throws { try await gracefulShutdown() }
    func release() { hold.withLock { $0 = false } }
    func send(_ fax: OutgoingFax) async -> SendOutcome {
        let start = Date()
        onLine.withLock { _ = $0.insert(fax.dialString.digits) }
        try? await Task.sleep(for: .milliseconds(30))
        while hold.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(20)) }
        let pages = (try? SFFReader.read(fax.sff))?.pages ?? []
        onLine.withLock { _ = $0.remove(fax.dialString.digits) }
        calls.withLock { $0.append(Call(jobID: fax.jobID, number: fax.dialString.digits, pageHeights: pages.map(\.height), start: start, end: Date())) }
        return SendOutcome(cause: .success, reason: 0x3490, reasonB3: 0, text: "sent",
                           session: FaxSessionInfo(bitRate: 14400, fine: fax.fine, pages: pages.count, remoteStationID: "+49 30 999"),
                           pagesSent: pagesConfirmed ?? pages.count, dialedAt: start, connectedAt: start, endedAt: Date())
    }
}

/// Jobs a stopped node left on the line (issue 11): they become uncertain and are never simply dialled again;
/// `outgoing.uncertain` or the administrator decides. Real SQLite files, real outbox, the queue's own loop.
final class UncertainJobTests: XCTestCase {
    struct Fixture {
        let dir: TemporaryDirectory
        let storage: SQLiteStorage
        let outbox: Outbox
    }

    func fixture() async throws -> Fixture {
        let dir = try TemporaryDirectory("uncertain")
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: RecordingSender(),
                                settings: .init(retryInitial: .seconds(1), retryMax: .seconds(1), giveUpAfter: .seconds(60)), logger: Logger(label: "t"))
        return Fixture(dir: dir, storage: storage, outbox: outbox)
    }

    /// Pages of different heights, so a test can tell which pages a call carried.
    static func document(pages heights: [Int]) -> [UInt8] {
        SFFWriter.write(heights.map { FaxPage(bitmap: [UInt8](repeating: 0, count: 216 * $0), width: 1728, height: $0, resolution: .fine) })
    }

    static func insertJob(_ f: Fixture, dial: String, heights: [Int] = [40, 50], pagesSent: Int = 0, name: String = "doc") async throws -> FaxJob {
        let sff = f.dir.path + "/\(name)-\(dial).sff"
        try Data(document(pages: heights)).write(to: URL(fileURLWithPath: sff))
        var job = FaxJob(intakeID: nil, sender: "alice@example.test", senderName: "Alice", extensionName: "Front", language: "en",
                         number: "+49" + dial.dropFirst(), dialString: dial, subject: "Befund", pages: heights.count, fine: true,
                         sffPath: sff, requestMessageID: "<req@example.test>")
        job.pagesSent = pagesSent
        return try await f.storage.insertJobs([job], intake: nil, event: "test").first!
    }

    static func settings(node: String, policy: UncertainConfig = UncertainConfig(), heartbeat: Int = 1) -> SendQueue.Settings {
        .init(from: MailAddress("fax@example.test"), hostname: "gw.test", retry: RetryConfig(), notifyEachRetry: false,
              callingNumbers: ["Front": ("100", false)], stationIDs: ["Front": ("+49 30 1", "Test")],
              node: node, leaseSeconds: 60, heartbeatSeconds: heartbeat, uncertain: policy)
    }

    /// Runs a queue until `condition` holds (or 30 s), then stops it gracefully (calls in flight finish first).
    static func run(_ queue: SendQueue, until condition: @escaping () async -> Bool) async throws {
        let group = ServiceGroup(services: [queue], logger: Logger(label: "test"))
        let task = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !(await condition()) { try await Task.sleep(for: .milliseconds(50)) }
        await group.triggerGracefulShutdown()
        try await task.value
    }

    /// The node "n1" took the job and stopped while it was on the line (what claimJobs leaves behind).
    static func leaveOnTheLine(_ f: Fixture, node: String = "n1") async throws -> FaxJob {
        let now = Date()
        let claimed = try await f.storage.claimJobs(node: node, limit: 1, now: now, leaseUntil: now.addingTimeInterval(60))
        return try XCTUnwrap(claimed.first)
    }

    func mail(_ f: Fixture, _ id: String) throws -> String {
        String(decoding: try Data(contentsOf: URL(fileURLWithPath: f.outbox.directory + "/\(id).eml")), as: UTF8.self)
    }

    func testRestartDuringACall_makesTheJobUncertain_neverRedialledUnderAdmin_andTheSenderIsTold() async throws {
        let f = try await fixture()
        let interrupted = try await Self.insertJob(f, dial: "0301234567")
        _ = try await Self.leaveOnTheLine(f)
        // Work that arrives after the restart: its call shows the queue ran and dialled while the other job waited.
        let fresh = try await Self.insertJob(f, dial: "0307654321")
        let transport = HoldingTransport(lines: 2)
        let queue = SendQueue(settings: Self.settings(node: "n1"), storage: f.storage, transport: transport, outbox: f.outbox, logger: Logger(label: "t"))
        try await Self.run(queue) {
            (try? await f.storage.job(id: fresh.id!))?.state == .done
        }
        let job = try await f.storage.job(id: interrupted.id!)!
        XCTAssertEqual(job.state, .uncertain)
        XCTAssertNil(job.leaseOwner)
        XCTAssertEqual(job.tries, 1, "not dialled again")
        XCTAssertEqual(transport.calls.withLock { $0.map(\.jobID) }, [fresh.id!], "only the new job was dialled")
        let events = try await f.storage.jobEvents(jobID: interrupted.id!).map(\.text)
        XCTAssertTrue(events.contains { $0.hasPrefix("found active at start of n1") }, "\(events)")
        XCTAssertFalse(events.contains { $0.contains("will retry") }, "\(events)")
        // The sender hears it may have been sent partly and that the administrator decides.
        let text = try mail(f, "job-\(interrupted.id!)-uncertain-1")
        XCTAssertTrue(text.contains("Subject: Fax to +49301234567: may have been sent partly"), String(text.prefix(800)))
        XCTAssertTrue(text.contains("the administrator decides"), text)

        // A second restart does not dial it either, and mails nothing again.
        let again = SendQueue(settings: Self.settings(node: "n1"), storage: f.storage, transport: transport, outbox: f.outbox, logger: Logger(label: "t"))
        let later = try await Self.insertJob(f, dial: "0305555555")
        try await Self.run(again) { (try? await f.storage.job(id: later.id!))?.state == .done }
        let after = try await f.storage.job(id: interrupted.id!)!
        XCTAssertEqual(after.state, .uncertain)
        XCTAssertFalse(transport.calls.withLock { $0.contains { $0.jobID == interrupted.id! } })
        let outboxNow10 = await f.outbox.pending().filter { $0.id.hasPrefix("job-\(interrupted.id!)-") }.count
        XCTAssertEqual(outboxNow10, 1)

        // The administrator decides: --resend dials it again (the same job, its second try).
        let resolver = SendQueue(settings: Self.settings(node: "n1"), storage: f.storage, transport: transport, outbox: f.outbox, logger: Logger(label: "t"))
        let answer = try await resolver.resolve(jobID: interrupted.id!, action: .resend, by: "test admin")
        XCTAssertEqual(answer, "job #\(interrupted.id!) is deferred now")
        let twice = try await resolver.resolve(jobID: interrupted.id!, action: .done, by: "test admin")
        XCTAssertEqual(twice, "not uncertain: job #\(interrupted.id!) is deferred", "a second decision does not act")
        try await Self.run(resolver) { (try? await f.storage.job(id: interrupted.id!))?.state == .done }
        let resent = try await f.storage.job(id: interrupted.id!)!
        XCTAssertEqual(resent.state, .done)
        XCTAssertEqual(resent.tries, 2)
    }

    func testResolveDoneAndFail_endTheJob_withTheirReport() async throws {
        let f = try await fixture()
        let a = try await Self.insertJob(f, dial: "0301000001")
        let b = try await Self.insertJob(f, dial: "0301000002")
        let now = Date()
        _ = try await f.storage.claimJobs(node: "n1", limit: 2, now: now, leaseUntil: now.addingTimeInterval(60))
        _ = try await f.storage.expireLeases(now: now, node: "n1", event: "n1 restarted")
        let queue = SendQueue(settings: Self.settings(node: "n1"), storage: f.storage, transport: HoldingTransport(lines: 1), outbox: f.outbox,
                              logger: Logger(label: "t"))
        let done = try await queue.resolveUncertain(jobID: a.id!, action: .done, by: "admin")
        let failed = try await queue.resolveUncertain(jobID: b.id!, action: .fail, by: "admin")
        guard case .resolved(let doneJob, nil) = done, case .resolved(let failedJob, nil) = failed else {
            return XCTFail("\(done) \(failed)")
        }
        XCTAssertEqual(doneJob.state, .done)
        XCTAssertEqual(failedJob.state, .failed)
        let storedA = try await f.storage.job(id: a.id!)
        let storedB = try await f.storage.job(id: b.id!)
        XCTAssertEqual(storedA?.state, .done)
        XCTAssertEqual(storedB?.state, .failed)
        let outboxNow11 = await f.outbox.isKnown("job-\(a.id!)-done")
        XCTAssertTrue(outboxNow11)
        let outboxNow12 = await f.outbox.isKnown("job-\(b.id!)-failed")
        XCTAssertTrue(outboxNow12)
        let missing = try await queue.resolve(jobID: 9999, action: .fail, by: "admin")
        XCTAssertTrue(missing.hasPrefix("not found"), missing)
    }

    func testResendAfter_redialsOnlyWhenTheMinutesHavePassed() async throws {
        let f = try await fixture()
        let interrupted = try await Self.insertJob(f, dial: "0301234567")
        _ = try await Self.leaveOnTheLine(f)
        let transport = HoldingTransport(lines: 1)
        let policy = UncertainConfig(policy: .resendAfter, minutes: 30)
        let before = Date()
        let queue = SendQueue(settings: Self.settings(node: "n1", policy: policy), storage: f.storage, transport: transport, outbox: f.outbox,
                              logger: Logger(label: "t"))
        try await Self.run(queue) {
            await f.outbox.isKnown("job-\(interrupted.id!)-uncertain-1")
        }
        let waiting = try await f.storage.job(id: interrupted.id!)!
        XCTAssertEqual(waiting.state, .uncertain, "not before its time")
        XCTAssertGreaterThanOrEqual(waiting.nextAttemptAt, before.addingTimeInterval(30 * 60))
        XCTAssertTrue(transport.calls.withLock { $0.isEmpty })
        let text = try mail(f, "job-\(interrupted.id!)-uncertain-1")
        XCTAssertTrue(text.contains("It will be sent again at"), text)

        // The 30 minutes have passed (the stored time says so): the sweep puts it back and it is dialled once.
        var due = waiting
        due.nextAttemptAt = Date().addingTimeInterval(-1)
        try await f.storage.updateJob(due, expecting: .uncertain, event: "test: 30 minutes later")
        let later = SendQueue(settings: Self.settings(node: "n1", policy: policy), storage: f.storage, transport: transport, outbox: f.outbox,
                              logger: Logger(label: "t"))
        try await Self.run(later) { (try? await f.storage.job(id: interrupted.id!))?.state == .done }
        let done = try await f.storage.job(id: interrupted.id!)!
        XCTAssertEqual(done.state, .done)
        XCTAssertEqual(done.tries, 2)
        XCTAssertEqual(transport.calls.withLock { $0.map(\.jobID) }, [interrupted.id!])
        let events = try await f.storage.jobEvents(jobID: interrupted.id!).map(\.text)
        XCTAssertTrue(events.contains { $0.hasPrefix("outgoing.uncertain resend_after: sent again after 30 minutes") }, "\(events)")
    }

    func testResendRemaining_sendsOnlyThePagesNotConfirmed() async throws {
        let f = try await fixture()
        // Three pages; the remote had confirmed the first one when the node stopped.
        let interrupted = try await Self.insertJob(f, dial: "0301234567", heights: [40, 50, 60], pagesSent: 1)
        _ = try await Self.leaveOnTheLine(f)
        let transport = HoldingTransport(lines: 1)
        let queue = SendQueue(settings: Self.settings(node: "n1", policy: UncertainConfig(policy: .resendRemaining)), storage: f.storage,
                              transport: transport, outbox: f.outbox, logger: Logger(label: "t"))
        try await Self.run(queue) {
            guard let jobs = try? await f.storage.recentJobs(limit: 10), jobs.count == 2 else { return false }
            return jobs.first?.state == .done
        }
        let old = try await f.storage.job(id: interrupted.id!)!
        XCTAssertEqual(old.state, .failed, "the uncertain job ends")
        XCTAssertEqual(old.lastCause, SendQueue.uncertainSplitCause)
        let all = try await f.storage.recentJobs(limit: 10)
        let new = try XCTUnwrap(all.first { $0.id != interrupted.id })
        XCTAssertEqual(new.pages, 2)
        XCTAssertEqual(new.number, old.number)
        XCTAssertNotEqual(new.sffPath, old.sffPath)
        // The new SFF holds pages 2 and 3 (told apart by their heights); the old document is unchanged.
        let newPages = try SFFReader.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: new.sffPath)))).pages
        XCTAssertEqual(newPages.map(\.height), [50, 60])
        let oldPages = try SFFReader.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: old.sffPath)))).pages
        XCTAssertEqual(oldPages.map(\.height), [40, 50, 60])
        // Only the remaining pages went on the line, once.
        let calls = transport.calls.withLock { $0 }
        XCTAssertEqual(calls.map(\.jobID), [new.id!])
        XCTAssertEqual(calls.first?.pageHeights, [50, 60])
        let text = try mail(f, "job-\(interrupted.id!)-uncertain-1")
        XCTAssertTrue(text.contains("The pages not confirmed will be sent again"), text)
        let outboxNow13 = await f.outbox.isKnown("job-\(interrupted.id!)-failed")
        XCTAssertFalse(outboxNow13, "the split job sends no failure report")
    }

    func testLostLease_theResultIsNotRecordedAsOurs() async throws {
        let f = try await fixture()
        let job = try await Self.insertJob(f, dial: "0301234567")
        let transport = HoldingTransport(lines: 1, hold: true)
        let queue = SendQueue(settings: Self.settings(node: "n1"), storage: f.storage, transport: transport, outbox: f.outbox,
                              logger: Logger(label: "t"))
        let group = ServiceGroup(services: [queue], logger: Logger(label: "test"))
        let task = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !transport.onLine.withLock({ $0.contains("0301234567") }) { try await Task.sleep(for: .milliseconds(20)) }
        XCTAssertTrue(transport.onLine.withLock { $0.contains("0301234567") }, "the call is on the line")
        // Another node (a second handle on the file) sweeps as if n1's lease had run out long ago.
        let other = try SQLiteStorage(path: f.dir.path + "/db.sqlite")
        let expired = try await other.expireLeases(now: Date().addingTimeInterval(3600), node: nil, event: "lease of n1 ran out")
        XCTAssertEqual(expired.compactMap(\.id), [job.id!])
        transport.release()
        // A graceful stop waits for the call in flight, so its result handling is over when run() returns.
        await group.triggerGracefulShutdown()
        try await task.value
        XCTAssertEqual(transport.calls.withLock { $0.count }, 1, "the call happened")
        let stored = try await f.storage.job(id: job.id!)!
        XCTAssertEqual(stored.state, .uncertain, "the success of a call whose lease was lost is not written")
        let events = try await f.storage.jobEvents(jobID: job.id!).map(\.text)
        XCTAssertFalse(events.contains { $0.hasPrefix("success") }, "\(events)")
        let outboxNow14 = await f.outbox.isKnown("job-\(job.id!)-done")
        XCTAssertFalse(outboxNow14, "no report as ours")
    }

    func testTwoQueuesOnTwoHandlesOfOneFile_neverDialTheSameJobTwice() async throws {
        let f = try await fixture()
        var ids: [Int64] = []
        for i in 0..<12 {
            // Four numbers, three jobs each: the per-number exclusion across both nodes is exercised.
            ids.append(try await Self.insertJob(f, dial: "030100000\(i % 4)", name: "j\(i)").id!)
        }
        let second = try SQLiteStorage(path: f.dir.path + "/db.sqlite")
        let outbox2 = try Outbox(directory: f.dir.path + "/outbox2", sender: RecordingSender(),
                                 settings: .init(retryInitial: .seconds(1), retryMax: .seconds(1), giveUpAfter: .seconds(60)), logger: Logger(label: "t"))
        let t1 = HoldingTransport(lines: 2)
        let t2 = HoldingTransport(lines: 2)
        let q1 = SendQueue(settings: Self.settings(node: "n1"), storage: f.storage, transport: t1, outbox: f.outbox, logger: Logger(label: "n1"))
        let q2 = SendQueue(settings: Self.settings(node: "n2"), storage: second, transport: t2, outbox: outbox2, logger: Logger(label: "n2"))
        let group = ServiceGroup(services: [q1, q2], logger: Logger(label: "test"))
        let task = Task { try await group.run() }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let states = try await f.storage.jobs(in: [.done])
            if states.count == ids.count { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        await group.triggerGracefulShutdown()
        try await task.value
        let calls = t1.calls.withLock { $0 } + t2.calls.withLock { $0 }
        XCTAssertEqual(calls.map(\.jobID).sorted(), ids.sorted(), "every job dialled exactly once")
        for number in Set(calls.map(\.number)) {
            let sameNumber = calls.filter { $0.number == number }.sorted { $0.start < $1.start }
            for (a, b) in zip(sameNumber, sameNumber.dropFirst()) {
                XCTAssertLessThanOrEqual(a.end, b.start, "two calls to \(number) at once")
            }
        }
        let owners = try await f.storage.recentJobs(limit: 20)
        XCTAssertTrue(owners.allSatisfy { $0.state == .done && $0.leaseOwner == nil }, "\(owners.map(\.state))")
        let events = try await f.storage.jobEvents(jobID: ids[0]).map(\.text)
        XCTAssertTrue(events.contains { $0.hasSuffix("on n1") || $0.hasSuffix("on n2") }, "\(events)")
    }

    func testUncertainPolicyConfig_isValidatedWithItsLine() {
        let yaml = """
        spool_directory: /var/spool/faxgate
        smtp:
          host: mail.example.com
          port: 587
          security: starttls
        mail:
          from: "Fax <fax@example.com>"
        capi:
          driver: rcapi
          host: 127.0.0.1
        extensions:
          - name: Front
            numbers: ["100-109"]
            email: [front@example.com]
        outgoing:
          uncertain:
            policy: resend_sometime
            minutes: 0

        """
        XCTAssertThrowsError(try ConfigLoader.parse(yaml)) { error in
            guard let issues = (error as? ConfigError)?.issues else { return XCTFail("\(error)") }
            let byPath = Dictionary(issues.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(byPath["outgoing.uncertain.policy"]?.line, 17, "\(issues)")
            XCTAssertTrue(byPath["outgoing.uncertain.policy"]?.message.contains("admin, resend_after, resend_remaining") == true, "\(issues)")
            XCTAssertEqual(byPath["outgoing.uncertain.minutes"]?.line, 18, "\(issues)")
        }
        let ok = try? ConfigLoader.parse(yaml.replacingOccurrences(of: "resend_sometime", with: "resend_remaining")
            .replacingOccurrences(of: "minutes: 0", with: "minutes: 15"))
        XCTAssertEqual(ok?.outgoing.uncertain.effectivePolicy, .resendRemaining)
        XCTAssertEqual(ok?.outgoing.uncertain.minutes, 15)
        XCTAssertEqual(Configuration.defaultOutgoingUncertainForTest, .admin)
    }
}

private extension Configuration {
    /// Without the key, the administrator decides.
    static var defaultOutgoingUncertainForTest: UncertainConfig.Policy { OutgoingConfig().uncertain.effectivePolicy }
}
