import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import SQLiteStorage
import TestSupport
import XCTest

/// The claim/lease contract of `Storage` (claimJobs, renewLeases, expireLeases; issue 11), run on every plugin with
/// two handles on one database, as two gateway nodes would have.
final class StorageClaimConformanceTests: XCTestCase {
    func testSQLiteStorage_keepsTheClaimContract() async throws {
        let dir = try TemporaryDirectory("claims")
        let path = dir.path + "/db.sqlite"
        try await Self.checkClaimContract { try SQLiteStorage(path: path) }
    }

    func testPostgresStorage_keepsTheClaimContract() async throws {
        let server = try PostgresServer.shared()
        let db = try server.createDatabase()
        defer { server.dropDatabase(db) }
        let handles = Handles()
        defer { handles.closeAll() }
        try await Self.checkClaimContract {
            var settings = PostgresSettings()
            settings.host = "127.0.0.1"; settings.port = server.port; settings.database = db; settings.user = "postgres"
            settings.tls = "disable"  // trusted loopback: TLS is not the point here
            let storage = PostgresStorage(connection: try PostgresConnectionSettings(settings), node: "n\(handles.count + 1)",
                                          spoolDirectory: NSTemporaryDirectory(), logger: Logger(label: "claims"))
            handles.add(storage)
            return storage
        }
    }

    /// Keeps the PostgreSQL handles so the test closes their pools.
    final class Handles: @unchecked Sendable {
        private var list: [PostgresStorage] = []
        var count: Int { list.count }
        func add(_ s: PostgresStorage) { list.append(s) }
        func closeAll() { list.forEach { $0.close() } }
    }

    // A fixed clock far from the wall clock: claims and expiry take `now` as a parameter, so nothing depends on timing.
    // Whole seconds: storage keeps dates to the millisecond.
    static let t0 = Date(timeIntervalSince1970: 1_900_000_000)

    static func job(_ number: String, sendAt: TimeInterval, state: FaxJob.State = .ready, nextAttemptAt: TimeInterval? = nil,
                    tries: Int = 0, tag: String = "") -> FaxJob {
        var j = FaxJob(state: state, createdAt: t0.addingTimeInterval(-1000), sendAt: t0.addingTimeInterval(sendAt), intakeID: nil,
                       sender: "claims@praxis.example", senderName: nil, extensionName: "Front", language: "de", number: number,
                       dialString: "0" + number.dropFirst(3), subject: "claims \(tag)", pages: 1, fine: true, sffPath: "/nonexistent",
                       requestMessageID: nil)
        if let nextAttemptAt { j.nextAttemptAt = t0.addingTimeInterval(nextAttemptAt) }
        j.tries = tries
        return j
    }

    /// `make` returns a new handle on one fresh, empty database each time it is called (called twice).
    static func checkClaimContract(make: () async throws -> any Storage, file: StaticString = #filePath, line: UInt = #line) async throws {
        let a = try await make()
        let b = try await make()
        try await a.migrate()
        try await b.migrate()
        try await checkDueOrderAndLeases(a, b, file: file, line: line)
        try await checkConcurrentRounds(a, b, file: file, line: line)
    }

    /// Due-ness, oldest due first, limit, per-number exclusion, the claimed fields, renew and both kinds of expiry.
    static func checkDueOrderAndLeases(_ a: any Storage, _ b: any Storage, file: StaticString, line: UInt) async throws {
        let t = t0
        let inserted = try await a.insertJobs([
            job("+49301000001", sendAt: -300, tag: "j1"),                                        // 0: due T-300
            job("+49301000002", sendAt: -200, tag: "j2"),                                        // 1: due T-200
            job("+49301000003", sendAt: 100, tag: "j3"),                                         // 2: send-at in the future
            job("+49301000004", sendAt: -400, state: .deferred, nextAttemptAt: 50, tries: 1, tag: "j4"),   // 3: retry later
            job("+49301000005", sendAt: -500, state: .deferred, nextAttemptAt: -100, tries: 1, tag: "j5"), // 4: retry due
            job("+49301000006", sendAt: -600, state: .canceled, tag: "j6"),                      // 5: never
            job("+49301000001", sendAt: -250, tag: "j7"),                                        // 6: same number as j1
            job("+49301000008", sendAt: -700, state: .done, tag: "j8"),                          // 7: never
        ], intake: nil, event: "queued")
        XCTAssertEqual(inserted.count, 8, file: file, line: line)
        let id = inserted.map { $0.id! }

        // Limit 2: the two oldest due; j7 (due before j2) is skipped because j1 has its number in the same claim.
        let first = try await a.claimJobs(node: "n1", limit: 2, now: t, leaseUntil: t.addingTimeInterval(60))
        XCTAssertEqual(Set(first.compactMap(\.id)), [id[0], id[1]], "oldest due first, one job per number", file: file, line: line)
        for claimed in first {
            XCTAssertEqual(claimed.state, .active, file: file, line: line)
            XCTAssertEqual(claimed.tries, 1, file: file, line: line)
            XCTAssertEqual(claimed.dialedAt, t, file: file, line: line)
            XCTAssertEqual(claimed.leaseOwner, "n1", file: file, line: line)
            XCTAssertEqual(claimed.leaseUntil, t.addingTimeInterval(60), file: file, line: line)
            let stored = try await b.job(id: claimed.id!)
            XCTAssertEqual(stored, claimed, "returned as stored, seen by the other handle", file: file, line: line)
            let events = try await b.jobEvents(jobID: claimed.id!)
            XCTAssertEqual(events.map(\.text), ["queued", "dialling \(claimed.dialString) (try 1) on n1"], file: file, line: line)
        }

        // The other node: j7's number is active on n1, so only the due retry (its second try).
        let second = try await b.claimJobs(node: "n2", limit: 10, now: t, leaseUntil: t.addingTimeInterval(60))
        XCTAssertEqual(second.compactMap(\.id), [id[4]], "due retry only; not-due, final and busy-number jobs stay", file: file, line: line)
        XCTAssertEqual(second.first?.tries, 2, file: file, line: line)
        XCTAssertEqual(second.first?.leaseOwner, "n2", file: file, line: line)
        let retryEvents = try await a.jobEvents(jobID: id[4])
        XCTAssertEqual(retryEvents.last?.text, "dialling 0301000005 (try 2) on n2", file: file, line: line)
        let nothing = try await a.claimJobs(node: "n1", limit: 10, now: t, leaseUntil: t.addingTimeInterval(60))
        XCTAssertEqual(nothing, [], "nothing else is due", file: file, line: line)

        // Later, send-at and the retry time have come: j3 and j4; j7 still waits for j1's number.
        let later = try await b.claimJobs(node: "n2", limit: 10, now: t.addingTimeInterval(100), leaseUntil: t.addingTimeInterval(400))
        XCTAssertEqual(Set(later.compactMap(\.id)), [id[2], id[3]], file: file, line: line)
        XCTAssertEqual(later.first { $0.id == id[3] }?.tries, 2, file: file, line: line)
        for untouched in [5, 7] {
            let stored = try await a.job(id: id[untouched])
            XCTAssertEqual(stored, inserted[untouched], "final jobs are never claimed", file: file, line: line)
        }

        // Heartbeats: only the node's own active jobs are renewed.
        let renewed = try await a.renewLeases(node: "n1", jobIDs: [id[0], id[1], id[4]], until: t.addingTimeInterval(120))
        XCTAssertEqual(renewed, [id[0], id[1]], "another node's job is not renewed", file: file, line: line)
        let othersLease = try await a.job(id: id[4])
        XCTAssertEqual(othersLease?.leaseUntil, t.addingTimeInterval(60), "n2's lease untouched", file: file, line: line)
        let loaded1 = try await b.job(id: id[0])
        XCTAssertEqual(loaded1?.leaseUntil, t.addingTimeInterval(120), file: file, line: line)
        let loaded2 = try await b.job(id: id[1])
        var canceled = try XCTUnwrap(loaded2, file: file, line: line)
        canceled.state = .canceled
        try await b.updateJob(canceled, expecting: .active, event: "canceled by the admin")
        let afterCancel = try await a.renewLeases(node: "n1", jobIDs: [id[0], id[1]], until: t.addingTimeInterval(130))
        XCTAssertEqual(afterCancel, [id[0]], "a canceled job is no longer the node's", file: file, line: line)
        let none = try await a.renewLeases(node: "n1", jobIDs: [], until: t.addingTimeInterval(130))
        XCTAssertEqual(none, [], file: file, line: line)

        // Expiry of ended leases (node nil): only j5 (until T+60); j1 (T+130), j3/j4 (T+400) still hold.
        let expired = try await a.expireLeases(now: t.addingTimeInterval(90), node: nil, event: "lease of n2 ended")
        XCTAssertEqual(expired.compactMap(\.id), [id[4]], "only leases that ended", file: file, line: line)
        XCTAssertEqual(expired.first?.state, .uncertain, file: file, line: line)
        XCTAssertNil(expired.first?.leaseOwner, file: file, line: line)
        XCTAssertNil(expired.first?.leaseUntil, file: file, line: line)
        let loaded3 = try await b.job(id: id[4])
        XCTAssertEqual(loaded3, expired.first, "returned as stored", file: file, line: line)
        let expiredEvents = try await b.jobEvents(jobID: id[4])
        XCTAssertEqual(expiredEvents.last?.text, "lease of n2 ended", file: file, line: line)
        let notAgain = try await b.expireLeases(now: t.addingTimeInterval(90), node: nil, event: "again")
        XCTAssertEqual(notAgain, [], file: file, line: line)

        // The node whose lease was lost learns it: no renewal, and its result conflicts.
        let lost = try await b.renewLeases(node: "n2", jobIDs: [id[4]], until: t.addingTimeInterval(200))
        XCTAssertEqual(lost, [], "an expired job is no longer the node's", file: file, line: line)
        var late = try XCTUnwrap(second.first, file: file, line: line)
        late.state = .done
        do {
            try await b.updateJob(late, expecting: .active, event: "sent")
            XCTFail("a result after expiry must not overwrite the uncertain state", file: file, line: line)
        } catch let conflict as JobStateConflict {
            XCTAssertEqual(conflict.jobID, id[4], file: file, line: line)
            XCTAssertEqual(conflict.actual, .uncertain, file: file, line: line)
        }
        let loaded4 = try await a.job(id: id[4])
        XCTAssertEqual(loaded4?.state, .uncertain, file: file, line: line)

        // A node's restart: all its active jobs become uncertain, whatever their lease; other nodes' stay.
        let restarted = try await b.expireLeases(now: t.addingTimeInterval(90), node: "n2", event: "n2 restarted while dialling")
        XCTAssertEqual(Set(restarted.compactMap(\.id)), [id[2], id[3]], file: file, line: line)
        XCTAssertTrue(restarted.allSatisfy { $0.state == .uncertain && $0.leaseOwner == nil && $0.leaseUntil == nil }, file: file, line: line)
        let restartEvents = try await a.jobEvents(jobID: id[2])
        XCTAssertEqual(restartEvents.last?.text, "n2 restarted while dialling", file: file, line: line)
        let loaded5 = try await a.job(id: id[0])
        XCTAssertEqual(loaded5?.state, .active, "n1's job untouched", file: file, line: line)
        let loaded6 = try await a.job(id: id[0])
        XCTAssertEqual(loaded6?.leaseOwner, "n1", file: file, line: line)

        // Uncertain jobs are never claimed again by themselves; j7 still waits for its number.
        let afterExpiry = try await b.claimJobs(node: "n2", limit: 10, now: t.addingTimeInterval(1000), leaseUntil: t.addingTimeInterval(1060))
        XCTAssertEqual(afterExpiry, [], "uncertain jobs wait for a decision", file: file, line: line)

        // n1 finishes j1: its number is free, and j7 is claimable (its first try).
        let loaded7 = try await a.job(id: id[0])
        var finished = try XCTUnwrap(loaded7, file: file, line: line)
        finished.state = .done
        finished.leaseOwner = nil
        finished.leaseUntil = nil
        try await a.updateJob(finished, expecting: .active, event: "sent")
        let freed = try await b.claimJobs(node: "n2", limit: 10, now: t.addingTimeInterval(1000), leaseUntil: t.addingTimeInterval(1060))
        XCTAssertEqual(freed.compactMap(\.id), [id[6]], file: file, line: line)
        XCTAssertEqual(freed.first?.tries, 1, file: file, line: line)
        XCTAssertEqual(freed.first?.dialedAt, t.addingTimeInterval(1000), file: file, line: line)
        // Tidy up so the next check starts without active jobs.
        var j7 = try XCTUnwrap(freed.first, file: file, line: line)
        j7.state = .done
        try await b.updateJob(j7, expecting: .active, event: "sent")
    }

    /// Two handles claim concurrently in many rounds: no job twice, never two active jobs for one number, and in the
    /// end every due job claimed exactly once while the not-due ones stay.
    static func checkConcurrentRounds(_ a: any Storage, _ b: any Storage, file: StaticString, line: UInt) async throws {
        let t = t0.addingTimeInterval(10_000)
        var jobs: [FaxJob] = []
        for i in 0..<36 {
            // 12 numbers, three jobs each: the per-number exclusion is exercised in every round.
            let number = "+4940200000" + String(format: "%02d", i % 12)
            jobs.append(job(number, sendAt: 10_000 - 100 + Double(i), tag: "c\(i)"))
        }
        jobs.append(job("+49402000099", sendAt: 10_000 + 500, tag: "future"))
        let inserted = try await a.insertJobs(jobs, intake: nil, event: "queued")
        let due = Set(inserted.dropLast().compactMap(\.id))
        let future = try XCTUnwrap(inserted.last?.id, file: file, line: line)

        var claimedOnce: Set<Int64> = []
        var rounds = 0
        while rounds < 50 {
            rounds += 1
            async let fromA = a.claimJobs(node: "n1", limit: 4, now: t, leaseUntil: t.addingTimeInterval(60))
            async let fromB = b.claimJobs(node: "n2", limit: 4, now: t, leaseUntil: t.addingTimeInterval(60))
            let (ca, cb) = try await (fromA, fromB)
            XCTAssertTrue(ca.allSatisfy { $0.leaseOwner == "n1" }, file: file, line: line)
            XCTAssertTrue(cb.allSatisfy { $0.leaseOwner == "n2" }, file: file, line: line)
            let round = ca + cb
            if round.isEmpty { break }
            let ids = round.compactMap(\.id)
            XCTAssertEqual(Set(ids).count, ids.count, "round \(rounds): a job claimed by both nodes", file: file, line: line)
            XCTAssertTrue(claimedOnce.isDisjoint(with: ids), "round \(rounds): a job claimed a second time", file: file, line: line)
            XCTAssertEqual(Set(round.map(\.number)).count, round.count, "round \(rounds): one number active twice", file: file, line: line)
            XCTAssertFalse(ids.contains(future), "a job before its send-at", file: file, line: line)
            claimedOnce.formUnion(ids)
            // Each node finishes its own jobs concurrently, so numbers free up for the next round.
            async let doneA: Void = finish(ca, on: a)
            async let doneB: Void = finish(cb, on: b)
            _ = try await (doneA, doneB)
        }
        XCTAssertEqual(claimedOnce, due, "every due job claimed exactly once (\(rounds) rounds)", file: file, line: line)
        let loaded8 = try await b.job(id: future)
        XCTAssertEqual(loaded8?.state, .ready, file: file, line: line)
        let loaded9 = try await a.jobs(in: [.active])
        XCTAssertEqual(loaded9, [], file: file, line: line)
    }

    private static func finish(_ jobs: [FaxJob], on storage: any Storage) async throws {
        for var j in jobs {
            j.state = .done
            j.leaseOwner = nil
            j.leaseUntil = nil
            try await storage.updateJob(j, expecting: .active, event: "sent")
        }
    }
}
