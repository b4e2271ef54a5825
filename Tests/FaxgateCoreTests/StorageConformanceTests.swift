import FaxgateCore
import Foundation
import SQLiteStorage
import TestSupport
import XCTest

/// The contract every storage plugin must keep. Each implementation runs the same body.
final class StorageConformanceTests: XCTestCase {
    func testSQLiteStorage_keepsTheContract() async throws {
        let dir = try TemporaryDirectory("storage")
        let path = dir.path + "/db.sqlite"
        let storage = try SQLiteStorage(path: path)
        try await Self.checkContract(storage)
        try await Self.checkVoiceRecordingContract(storage)
        // A second handle (the CLI's, read-only) sees the same rows while the writer is open.
        let reader = try SQLiteStorage(path: path, readOnly: true)
        let calls = try await reader.recentCalls(limit: 10)
        XCTAssertEqual(calls.count, 3)
        XCTAssertEqual(try runTool("sqlite3", [path, "select count(*) from call"]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "3")
    }

    /// A voicemail recording kept while a fax tone's fax is received (`voiceRecordingPath`) survives a restart,
    /// and clearing it sticks: the pipeline decides after the fax whether to mail or delete it. Adds one call.
    static func checkVoiceRecordingContract(_ storage: any Storage, file: StaticString = #filePath, line: UInt = #line) async throws {
        var call = CallRecord(kind: .voice, state: .receiving, startedAt: Date(timeIntervalSince1970: 1_800_000_200),
                              callingNumber: "+49301112223", calledNumber: "100", extensionName: "Front")
        call = try await storage.insertCall(call, event: "answering as voicemail")
        XCTAssertNil(call.voiceRecordingPath, file: file, line: line)
        call.kind = .fax
        call.voiceRecordingPath = "/var/spool/faxgate/incoming/\(call.id!).alaw"
        call.spoolPath = "/var/spool/faxgate/incoming/\(call.id!).sff"
        try await storage.updateCall(call, event: "switched to fax")
        let switched = try await storage.call(id: call.id!)
        XCTAssertEqual(switched, call, file: file, line: line)
        XCTAssertEqual(switched?.voiceRecordingPath, "/var/spool/faxgate/incoming/\(call.id!).alaw", file: file, line: line)
        call.voiceRecordingPath = nil
        try await storage.updateCall(call, event: "recording resolved")
        let cleared = try await storage.call(id: call.id!)
        XCTAssertNil(cleared?.voiceRecordingPath, file: file, line: line)
    }

    static func checkContract(_ storage: any Storage, file: StaticString = #filePath, line: UInt = #line) async throws {
        try await storage.migrate()
        try await storage.migrate()  // idempotent
        var record = CallRecord(state: .receiving, startedAt: Date(timeIntervalSince1970: 1_800_000_000),
                                callingNumber: "+49301234567", calledNumber: "100", extensionName: "Front")
        record = try await storage.insertCall(record, event: "answering")
        let id = try XCTUnwrap(record.id, file: file, line: line)
        record.state = .received
        record.pages = 3
        record.remoteStationID = "+49 30 7654321"
        record.fine = true
        record.reason = 0x3490
        record.endedAt = Date(timeIntervalSince1970: 1_800_000_042)
        try await storage.updateCall(record, event: "call ended")
        let loaded = try await storage.call(id: id)
        XCTAssertEqual(loaded, record, file: file, line: line)
        XCTAssertEqual(loaded?.durationSeconds, 42, file: file, line: line)
        let v1 = try await storage.events(callID: id)
        XCTAssertEqual(v1.map(\.text), ["answering", "call ended"], file: file, line: line)

        var rejected = CallRecord(state: .rejected, startedAt: Date(timeIntervalSince1970: 1_800_000_100), callingNumber: nil, calledNumber: "555")
        rejected.outcome = .rejected
        rejected = try await storage.insertCall(rejected, event: "rejected")
        let v2 = try await storage.recentCalls(limit: 10)
        XCTAssertEqual(v2.map(\.id), [rejected.id, id], file: file, line: line)
        let v3 = try await storage.calls(in: [.received])
        XCTAssertEqual(v3.map(\.id), [id], file: file, line: line)
        let v4 = try await storage.calls(in: [.receiving])
        XCTAssertEqual(v4.count, 0, file: file, line: line)

        let pdf = StoredDocument(callID: id, kind: "pdf", filename: "fax.pdf", bytes: Array("%PDF-1.4 test".utf8))
        try await storage.putDocument(pdf)
        let v5 = try await storage.documents(callID: id)
        XCTAssertEqual(v5, [pdf], file: file, line: line)

        var ghost = record
        ghost.id = 999_999
        do {
            try await storage.updateCall(ghost, event: "x")
            XCTFail("updating a call that does not exist must fail", file: file, line: line)
        } catch {}

        // Daily limits: counted per limit key (a domain shares one), canceled jobs not; a job without a key counts
        // under its lowercased sender.
        func job(_ sender: String, key: String?, state: FaxJob.State = .ready) -> FaxJob {
            var j = FaxJob(state: state, intakeID: nil, sender: sender, senderName: nil, extensionName: "Front", language: "de",
                           number: "+49301234567", dialString: "0301234567", subject: "s", pages: 2, fine: true, sffPath: "/nonexistent",
                           requestMessageID: nil)
            j.limitKey = key
            return j
        }
        let since = Date().addingTimeInterval(-60)
        let saved = try await storage.insertJobs([job("a@praxis.example", key: "@praxis.example"), job("b@praxis.example", key: "@praxis.example"),
                                                  job("c@praxis.example", key: "@praxis.example", state: .canceled),
                                                  job("Bob@Example.test", key: nil)], intake: nil, event: "test")
        XCTAssertEqual(saved.first?.limitKey, "@praxis.example", file: file, line: line)
        let domain = try await storage.usage(limitKey: "@praxis.example", since: since)
        XCTAssertEqual(domain.jobs, 2, file: file, line: line)
        XCTAssertEqual(domain.pages, 4, file: file, line: line)
        let bob = try await storage.usage(limitKey: "bob@example.test", since: since)
        XCTAssertEqual(bob.jobs, 1, file: file, line: line)
        try await checkRefusalReplies(storage, file: file, line: line)
    }

    /// What became of refusal replies: the per-recipient count and the admin digest's bookkeeping survive as rows.
    static func checkRefusalReplies(_ storage: any Storage, file: StaticString, line: UInt) async throws {
        func refused(_ uid: Int64, _ reply: IntakeRecord.ReplyDisposition?, to address: String, at: Date, alert: Bool = false) async throws -> IntakeRecord {
            var (r, _) = try await storage.recordIntake(IntakeRecord(source: "faxin", uidValidity: 9, uid: uid, messageID: nil, rawPath: "/x"))
            r.state = .rejected; r.reply = reply; r.replyAddress = address; r.decidedAt = at; r.adminAlert = alert
            try await storage.updateIntake(r)
            return r
        }
        let now = Date()
        _ = try await refused(101, .sent, to: "bob@example.test", at: now.addingTimeInterval(-7200))
        _ = try await refused(102, .sent, to: "bob@example.test", at: now.addingTimeInterval(-60))
        let quiet = try await refused(103, .suppressed, to: "mallory@evil.example", at: now)
        let limited = try await refused(104, .rateLimited, to: "bob@example.test", at: now)
        let alert = try await refused(105, nil, to: "eve@evil.example", at: now, alert: true)
        let sent = try await storage.repliesSent(to: "Bob@Example.test", since: now.addingTimeInterval(-3600))
        XCTAssertEqual(sent, 1, "sent ones within the hour", file: file, line: line)
        let pending = try await storage.undigestedRefusals().map(\.id)
        XCTAssertEqual(pending, [quiet.id, limited.id, alert.id], file: file, line: line)
        let before = try await storage.digestSent("admin-digest-1")
        XCTAssertFalse(before, file: file, line: line)
        try await storage.markDigested([quiet.id!, limited.id!], digestID: "admin-digest-1")
        let after = try await storage.digestSent("admin-digest-1")
        XCTAssertTrue(after, file: file, line: line)
        let left = try await storage.undigestedRefusals().map(\.id)
        XCTAssertEqual(left, [alert.id], file: file, line: line)
        let listed = try await storage.recentIntakes(limit: 2)
        XCTAssertEqual(listed.map(\.id), [alert.id, limited.id], "newest first", file: file, line: line)
        XCTAssertEqual(listed.last?.reply, .rateLimited, file: file, line: line)
        XCTAssertEqual(listed.first?.adminAlert, true, file: file, line: line)
    }
}

// MARK: Web accounts, sessions, audit, read marks, settings and the filtered lists (issue 9)

extension StorageConformanceTests {
    func testSQLiteStorage_keepsTheAccountContract() async throws {
        let dir = try TemporaryDirectory("storage-accounts")
        let path = dir.path + "/db.sqlite"
        let storage = try SQLiteStorage(path: path)
        // Retention deletes calls through its category, as `serve` does; the rows left are counted in the file itself.
        let retention = ReceivedFaxesCategory(storage: storage, spoolDirectory: dir.path, countryCode: "49")
        let hooks = AccountContractHooks(
            deleteCallAsRetentionDoes: { id in
                _ = try await retention.delete([RetentionItem(category: "received_faxes", id: "call-\(id)", createdAt: Date())])
            },
            readMarkRows: { callID in
                let out = try runTool("sqlite3", [path, "select count(*) from callRead where callID = \(callID)"]).stdoutText
                return Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            })
        try await Self.checkAccountContract(storage, hooks: hooks)
        // A second run on the same database: the checks do not depend on an empty store (a shared PostgreSQL).
        try await Self.checkAccountContract(storage, hooks: hooks)
    }

    /// What the account contract needs beyond `Storage`: how this plugin's retention deletes a call, and how many
    /// read-mark rows reference a call id in the backing store.
    struct AccountContractHooks: Sendable {
        var deleteCallAsRetentionDoes: @Sendable (Int64) async throws -> Void
        var readMarkRows: @Sendable (Int64) async throws -> Int
    }

    /// The account contract. Works on a store that already holds data: names, extensions, actors and dates are
    /// unique to the run.
    static func checkAccountContract(_ storage: any Storage, hooks: AccountContractHooks,
                                     file: StaticString = #filePath, line: UInt = #line) async throws {
        try await storage.migrate()
        let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        try await checkUsersAndSessions(storage, run: run, file: file, line: line)
        try await checkAudit(storage, run: run, file: file, line: line)
        try await checkSettings(storage, run: run, file: file, line: line)
        try await checkSearchCalls(storage, run: run, hooks: hooks, file: file, line: line)
        try await checkSearchJobs(storage, run: run, file: file, line: line)
    }

    static func checkUsersAndSessions(_ storage: any Storage, run: String, file: StaticString, line: UInt) async throws {
        // Whole seconds: storage keeps dates to the millisecond.
        let t = Date(timeIntervalSince1970: TimeInterval(Int(Date().timeIntervalSince1970)))
        let anna = WebUser(name: "anna-\(run)", role: .admin, extensions: ["sales-\(run)", "support-\(run)"], passwordHash: "$2b$12$x",
                           mustChangePassword: true, totpSecret: [1, 2, 3, 250], totpLastCounter: 42, recoveryCodeHashes: ["h1", "h2"],
                           disabled: false, failedLogins: 2, lockedUntil: t.addingTimeInterval(60), language: "de",
                           createdAt: t, passwordChangedAt: t.addingTimeInterval(-5))
        let saved = try await storage.insertUser(anna)
        let annaID = try XCTUnwrap(saved.id, file: file, line: line)
        var expected = anna
        expected.id = annaID
        XCTAssertEqual(saved, expected, file: file, line: line)
        let byID = try await storage.user(id: annaID)
        XCTAssertEqual(byID, expected, "every field survives the round trip", file: file, line: line)
        let byName = try await storage.user(name: "anna-\(run)")
        XCTAssertEqual(byName, expected, file: file, line: line)
        let nobody = try await storage.user(name: "nobody-\(run)")
        XCTAssertNil(nobody, file: file, line: line)

        var dup = anna
        dup.role = .user
        do {
            _ = try await storage.insertUser(dup)
            XCTFail("a second user with the same name must be refused", file: file, line: line)
        } catch let error as DuplicateUserName {
            XCTAssertEqual(error.name, "anna-\(run)", file: file, line: line)
        }
        let bert = try await storage.insertUser(WebUser(name: "bert-\(run)", role: .user, extensions: [], passwordHash: "$2b$12$y",
                                                        createdAt: t, passwordChangedAt: t))
        let bertID = try XCTUnwrap(bert.id, file: file, line: line)
        var renamed = bert
        renamed.name = "anna-\(run)"
        do {
            try await storage.updateUser(renamed)
            XCTFail("renaming onto a taken name must be refused", file: file, line: line)
        } catch is DuplicateUserName {}
        let listed = try await storage.users().map(\.name).filter { $0.hasSuffix("-\(run)") }
        XCTAssertEqual(listed, ["anna-\(run)", "bert-\(run)"], "ordered by name", file: file, line: line)

        var changed = expected
        changed.totpSecret = nil; changed.totpLastCounter = nil; changed.recoveryCodeHashes = []; changed.failedLogins = 0
        changed.lockedUntil = nil; changed.disabled = true; changed.extensions = ["sales-\(run)"]; changed.mustChangePassword = false
        try await storage.updateUser(changed)
        let reloaded = try await storage.user(id: annaID)
        XCTAssertEqual(reloaded, changed, "cleared fields stay cleared", file: file, line: line)
        var ghost = changed
        ghost.id = 9_000_000_000; ghost.name = "ghost-\(run)"
        do {
            try await storage.updateUser(ghost)
            XCTFail("updating a user that does not exist must fail", file: file, line: line)
        } catch {}

        // Sessions: idle and absolute timeouts purge, logout everywhere ends only that user's sessions.
        func session(_ tag: String, user: Int64, created: TimeInterval, seen: TimeInterval) -> WebSession {
            WebSession(idHash: "\(tag)-\(run)", userID: user, createdAt: t.addingTimeInterval(created), lastSeenAt: t.addingTimeInterval(seen),
                       secondFactorVerified: false, csrfToken: "csrf-\(tag)", clientAddress: "192.0.2.7")
        }
        let fresh = session("fresh", user: annaID, created: -36_000, seen: -60)
        let idle = session("idle", user: annaID, created: -3600, seen: -7200)
        let old = session("old", user: annaID, created: -30 * 86_400, seen: -60)
        let bertsOwn = session("bert", user: bertID, created: -60, seen: -60)
        for s in [idle, old, bertsOwn, fresh] { try await storage.insertSession(s) }
        let lastLogin = try await storage.user(id: annaID)?.lastLoginAt
        XCTAssertEqual(lastLogin, fresh.createdAt, "the newest session's start is the last login", file: file, line: line)
        var stale = changed
        stale.lastLoginAt = nil
        try await storage.updateUser(stale)
        let keptLogin = try await storage.user(id: annaID)?.lastLoginAt
        XCTAssertEqual(keptLogin, fresh.createdAt, "updateUser does not reset the last login", file: file, line: line)

        let back = try await storage.session(idHash: fresh.idHash)
        XCTAssertEqual(back, fresh, file: file, line: line)
        var verified = fresh
        verified.secondFactorVerified = true
        verified.lastSeenAt = t
        try await storage.updateSession(verified)
        let afterUpdate = try await storage.session(idHash: fresh.idHash)
        XCTAssertEqual(afterUpdate, verified, file: file, line: line)
        let purged = try await storage.purgeSessions(lastSeenBefore: t.addingTimeInterval(-1800), createdBefore: t.addingTimeInterval(-12 * 3600))
        XCTAssertGreaterThanOrEqual(purged, 2, file: file, line: line)
        for gone in [idle, old] {
            let s = try await storage.session(idHash: gone.idHash)
            XCTAssertNil(s, "\(gone.idHash) is past its idle or absolute timeout", file: file, line: line)
        }
        let survivor = try await storage.session(idHash: fresh.idHash)
        XCTAssertEqual(survivor, verified, "a session within both timeouts stays", file: file, line: line)

        try await storage.insertSession(session("second", user: annaID, created: -10, seen: -10))
        let ended = try await storage.deleteSessions(userID: annaID)
        XCTAssertEqual(ended, 2, "logout everywhere ends both of anna's sessions", file: file, line: line)
        let annaLeft = try await storage.session(idHash: fresh.idHash)
        XCTAssertNil(annaLeft, file: file, line: line)
        let bertLeft = try await storage.session(idHash: bertsOwn.idHash)
        XCTAssertEqual(bertLeft, bertsOwn, "another user's session is untouched", file: file, line: line)
        try await storage.deleteSession(idHash: bertsOwn.idHash)
        let bertGone = try await storage.session(idHash: bertsOwn.idHash)
        XCTAssertNil(bertGone, file: file, line: line)
        do {
            try await storage.updateSession(bertsOwn)
            XCTFail("updating an ended session must fail (it must not come back)", file: file, line: line)
        } catch {}

        // Removing a user ends their sessions too.
        try await storage.insertSession(session("last", user: bertID, created: -10, seen: -10))
        try await storage.deleteUser(id: bertID)
        let bertRemoved = try await storage.user(id: bertID)
        XCTAssertNil(bertRemoved, file: file, line: line)
        let lastGone = try await storage.session(idHash: "last-\(run)")
        XCTAssertNil(lastGone, "a removed user's sessions end with them", file: file, line: line)
        let sameNameAgain = try await storage.insertUser(WebUser(name: "bert-\(run)", role: .user, extensions: [], passwordHash: "$2b$12$z"))
        XCTAssertNotEqual(sameNameAgain.id, bertID, "a removed name may be used again, under a new id", file: file, line: line)
    }

    static func checkAudit(_ storage: any Storage, run: String, file: StaticString, line: UInt) async throws {
        let t = Date(timeIntervalSince1970: TimeInterval(Int(Date().timeIntervalSince1970)))
        let a = "anna-\(run)", b = "cli:root-\(run)"
        let entries = [
            AuditEntry(at: t, actor: a, clientAddress: "192.0.2.1", action: "login.failed", target: "user \(a)", detail: "wrong password"),
            AuditEntry(at: t, actor: a, clientAddress: "192.0.2.1", action: "login.ok", target: "user \(a)"),
            AuditEntry(at: t, actor: b, clientAddress: "local", action: "user.add", target: "user x", detail: "role admin"),
            AuditEntry(at: t, actor: a, clientAddress: "2001:db8::1", action: "job.cancel", target: "job 12"),
            AuditEntry(at: t, actor: a, clientAddress: "192.0.2.1", action: "loginx.other", target: "-"),
        ]
        for e in entries { try await storage.appendAudit(e) }
        let mine = try await storage.auditEntries(limit: 100, beforeID: nil, actor: a, action: nil)
        XCTAssertEqual(mine.map(\.action), ["loginx.other", "job.cancel", "login.ok", "login.failed"], "newest first, one actor", file: file, line: line)
        XCTAssertEqual(mine.last?.detail, "wrong password", file: file, line: line)
        XCTAssertEqual(mine[1].clientAddress, "2001:db8::1", file: file, line: line)
        XCTAssertEqual(mine.last?.at, t, file: file, line: line)
        let ids = mine.compactMap(\.id)
        XCTAssertEqual(ids, ids.sorted(by: >), file: file, line: line)
        // Paging: two pages of two, without overlap or gap.
        let page1 = try await storage.auditEntries(limit: 2, beforeID: nil, actor: a, action: nil)
        let page2 = try await storage.auditEntries(limit: 2, beforeID: page1.last?.id, actor: a, action: nil)
        let page3 = try await storage.auditEntries(limit: 2, beforeID: page2.last?.id, actor: a, action: nil)
        XCTAssertEqual((page1 + page2).map(\.id), mine.map(\.id), file: file, line: line)
        XCTAssertEqual(page3.count, 0, file: file, line: line)
        // The action filter is a prefix: "login." does not catch "loginx.".
        let logins = try await storage.auditEntries(limit: 100, beforeID: nil, actor: a, action: "login.")
        XCTAssertEqual(logins.map(\.action), ["login.ok", "login.failed"], file: file, line: line)
        let exact = try await storage.auditEntries(limit: 100, beforeID: nil, actor: nil, action: "user.add")
        XCTAssertTrue(exact.contains { $0.actor == b && $0.target == "user x" && $0.clientAddress == "local" }, file: file, line: line)
        XCTAssertTrue(exact.allSatisfy { $0.action == "user.add" }, file: file, line: line)
        // A LIKE wildcard in the prefix is literal.
        let wild = try await storage.auditEntries(limit: 100, beforeID: nil, actor: a, action: "login%")
        XCTAssertEqual(wild.count, 0, file: file, line: line)
        let all = try await storage.auditEntries(limit: 3, beforeID: nil, actor: nil, action: nil)
        XCTAssertEqual(all.count, 3, file: file, line: line)
    }

    static func checkSettings(_ storage: any Storage, run: String, file: StaticString, line: UInt) async throws {
        let key = "office-\(run)"
        let none = try await storage.setting(key)
        XCTAssertNil(none, file: file, line: line)
        let v1 = try await storage.putSetting(key, value: "{\"a\":1}", expectingVersion: nil, by: "anna")
        XCTAssertEqual(v1.version, 1, file: file, line: line)
        XCTAssertEqual(v1.updatedBy, "anna", file: file, line: line)
        do {
            try await storage.putSetting(key, value: "{\"a\":2}", expectingVersion: nil, by: "bert")
            XCTFail("creating an existing key must conflict", file: file, line: line)
        } catch let c as SettingVersionConflict {
            XCTAssertEqual(c.actual, 1, file: file, line: line)
        }
        let v2 = try await storage.putSetting(key, value: "{\"a\":3}", expectingVersion: 1, by: "bert")
        XCTAssertEqual(v2.version, 2, file: file, line: line)
        // Two admins read version 1; the second write must not overwrite the first.
        do {
            try await storage.putSetting(key, value: "{\"a\":4}", expectingVersion: 1, by: "anna")
            XCTFail("a write based on an old version must conflict", file: file, line: line)
        } catch let c as SettingVersionConflict {
            XCTAssertEqual(c.actual, 2, file: file, line: line)
            XCTAssertEqual(c.key, key, file: file, line: line)
        }
        let stored = try await storage.setting(key)
        XCTAssertEqual(stored?.value, "{\"a\":3}", file: file, line: line)
        XCTAssertEqual(stored?.version, 2, file: file, line: line)
        XCTAssertEqual(stored?.updatedBy, "bert", file: file, line: line)
        do {
            try await storage.putSetting("missing-\(run)", value: "x", expectingVersion: 1, by: "anna")
            XCTFail("updating a key that does not exist must conflict", file: file, line: line)
        } catch let c as SettingVersionConflict {
            XCTAssertNil(c.actual, file: file, line: line)
        }
        let missing = try await storage.setting("missing-\(run)")
        XCTAssertNil(missing, file: file, line: line)
    }

    static func checkSearchCalls(_ storage: any Storage, run: String, hooks: AccountContractHooks,
                                 file: StaticString, line: UInt) async throws {
        let sales = "sales-\(run)", support = "support-\(run)", other = "other-\(run)"
        // A day of this run's own, far from other data: 2031 plus a random day.
        let t0 = Date(timeIntervalSince1970: 1_925_000_000 + TimeInterval(Int.random(in: 0..<10_000) * 86_400))
        func call(_ ext: String?, _ kind: CallRecord.Kind = .fax, number: String?, station: String?, pages: Int?, at offset: TimeInterval,
                  state: CallRecord.State = .mailed) async throws -> Int64 {
            var r = CallRecord(direction: .incoming, kind: kind, state: state, startedAt: t0.addingTimeInterval(offset),
                               callingNumber: number, calledNumber: "100", extensionName: ext)
            r.remoteStationID = station; r.pages = pages
            let saved = try await storage.insertCall(r, event: "test")
            return try XCTUnwrap(saved.id)
        }
        let c1 = try await call(sales, number: "301234567", station: "ACME 100%", pages: 3, at: 0)
        let c2 = try await call(support, number: "4089998888", station: "Under_score", pages: 1, at: 3600)
        let c3 = try await call(sales, .voice, number: "301234567", station: nil, pages: nil, at: 7200)
        let c4 = try await call(other, number: "301239999", station: "ACME 100 percent", pages: 1, at: 10_800)
        let c5 = try await call(nil, number: "301234567", station: nil, pages: nil, at: 14_400, state: .rejected)
        var pagingCalls: [Int64] = []
        // Two at the same second: the order falls back to the id.
        for i in 0..<7 { pagingCalls.append(try await call(sales, number: "77700\(i)", station: "P\(i)", pages: 1, at: 20_000 + Double(min(i, 5)) * 60)) }
        // Stored last but started first (a call finished after a restart): lists go by time, not by id.
        let late = try await call(sales, number: "5550000", station: "LATE", pages: 1, at: -60)
        let day = (from: t0, to: t0.addingTimeInterval(86_400))
        let allMine: Set<String> = [sales, support, other]

        func search(_ q: CallQuery, _ what: String) async throws -> [Int64] {
            let found = try await storage.searchCalls(q)
            let ids = found.compactMap(\.id)
            let keys = found.map { ($0.startedAt, $0.id ?? 0) }
            XCTAssertTrue(zip(keys, keys.dropFirst()).allSatisfy { $0.0 > $1.0 || ($0.0 == $1.0 && $0.1 > $1.1) },
                          "\(what): newest first (time, then id)", file: file, line: line)
            var all = q
            all.beforeID = nil; all.limit = 10_000
            let count = try await storage.countCalls(all)
            let full = try await storage.searchCalls(all).count
            XCTAssertEqual(count, full, "\(what): countCalls agrees with searchCalls", file: file, line: line)
            return ids
        }

        // Extensions restrict: a user's query never returns another extension's call nor one without an extension.
        let salesOnly = try await search(CallQuery(extensions: [sales], limit: 100), "sales")
        XCTAssertEqual(salesOnly, pagingCalls.reversed() + [c3, c1, late], file: file, line: line)
        let two = try await search(CallQuery(extensions: [sales, support], limit: 100), "sales+support")
        XCTAssertEqual(two, pagingCalls.reversed() + [c3, c2, c1, late], file: file, line: line)
        let none = try await search(CallQuery(extensions: [], limit: 100), "no extensions")
        XCTAssertEqual(none, [], "an empty extension set sees nothing, not everything", file: file, line: line)
        let foreign = try await search(CallQuery(extensions: [support], text: "030 1234567", limit: 100), "support searching sales' caller")
        XCTAssertEqual(foreign, [], file: file, line: line)
        let admin = try await search(CallQuery(from: day.from, to: day.to, limit: 100), "admin day")
        XCTAssertEqual(admin, pagingCalls.reversed() + [c5, c4, c3, c2, c1], "admin (nil) sees all, also unrouted calls; `late` is before the day",
                       file: file, line: line)

        // Text: calling number digits (written as people write them) or station id; % and _ are literal.
        let byNumber = try await search(CallQuery(extensions: allMine, text: "030 123 4567", limit: 100), "number")
        XCTAssertEqual(byNumber, [c3, c1], file: file, line: line)
        let byNumberAdmin = try await search(CallQuery(text: "(030) 1234567", from: day.from, to: day.to, limit: 100), "number admin")
        XCTAssertEqual(byNumberAdmin, [c5, c3, c1], file: file, line: line)
        let percent = try await search(CallQuery(extensions: allMine, text: "100%", limit: 100), "percent")
        XCTAssertEqual(percent, [c1], "'100%' is literal: 'ACME 100 percent' does not match", file: file, line: line)
        let percentWild = try await search(CallQuery(extensions: allMine, text: "ACME%percent", limit: 100), "percent wildcard")
        XCTAssertEqual(percentWild, [], file: file, line: line)
        let underscore = try await search(CallQuery(extensions: allMine, text: "r_s", limit: 100), "underscore")
        XCTAssertEqual(underscore, [c2], file: file, line: line)
        let underscoreWild = try await search(CallQuery(extensions: allMine, text: "n_e", limit: 100), "underscore wildcard")
        XCTAssertEqual(underscoreWild, [], "'_' is no single-character wildcard ('Under' has 'nde')", file: file, line: line)
        let stationCase = try await search(CallQuery(extensions: allMine, text: "acme", limit: 100), "station any case")
        XCTAssertEqual(stationCase, [c4, c1], file: file, line: line)

        // Date range (half-open), kinds, states, pages.
        let range = try await search(CallQuery(extensions: allMine, from: t0.addingTimeInterval(3600), to: t0.addingTimeInterval(10_800), limit: 100), "range")
        XCTAssertEqual(range, [c3, c2], file: file, line: line)
        let voice = try await search(CallQuery(extensions: allMine, kinds: [.voice], limit: 100), "voice")
        XCTAssertEqual(voice, [c3], file: file, line: line)
        let faxes = try await search(CallQuery(extensions: [sales], kinds: [.fax], limit: 100), "faxes")
        XCTAssertEqual(faxes, pagingCalls.reversed() + [c1, late], file: file, line: line)
        let rejected = try await search(CallQuery(states: [.rejected], from: day.from, to: day.to, limit: 100), "rejected")
        XCTAssertEqual(rejected, [c5], file: file, line: line)
        let outgoing = try await search(CallQuery(extensions: allMine, direction: .outgoing, limit: 100), "outgoing")
        XCTAssertEqual(outgoing, [], file: file, line: line)
        let bigOnes = try await search(CallQuery(extensions: allMine, minPages: 2, limit: 100), "pages")
        XCTAssertEqual(bigOnes, [c1], file: file, line: line)

        // Keyset paging: pages of 3 without overlap or gap, for a user and for the admin.
        for (label, base) in [("user", CallQuery(extensions: [sales, support], limit: 3)), ("admin", CallQuery(from: day.from, to: day.to, limit: 3))] {
            var q = base
            var seen: [Int64] = []
            while true {
                let page = try await storage.searchCalls(q).compactMap(\.id)
                XCTAssertLessThanOrEqual(page.count, 3, file: file, line: line)
                if page.isEmpty { break }
                seen += page
                q.beforeID = page.last
            }
            var whole = base
            whole.limit = 1000
            let expected = try await storage.searchCalls(whole).compactMap(\.id)
            XCTAssertEqual(seen, expected, "\(label): pages joined are the whole list", file: file, line: line)
            XCTAssertEqual(Set(seen).count, seen.count, file: file, line: line)
        }

        // Read marks: per user, idempotent, removed with the call when retention deletes it.
        let reader = try await storage.insertUser(WebUser(name: "reader-\(run)", role: .user, extensions: [sales], passwordHash: "$2b$12$r"))
        let readerID = try XCTUnwrap(reader.id, file: file, line: line)
        let otherReader = try await storage.insertUser(WebUser(name: "reader2-\(run)", role: .user, extensions: [sales], passwordHash: "$2b$12$r"))
        try await storage.markRead(callID: c1, userID: readerID)
        try await storage.markRead(callID: c1, userID: readerID)
        try await storage.markRead(callID: c3, userID: readerID)
        let read = try await storage.readCallIDs(userID: readerID, among: [c1, c2, c3, c4])
        XCTAssertEqual(read, [c1, c3], file: file, line: line)
        let othersRead = try await storage.readCallIDs(userID: try XCTUnwrap(otherReader.id), among: [c1, c3])
        XCTAssertEqual(othersRead, [], "read marks are per user", file: file, line: line)
        let emptyAmong = try await storage.readCallIDs(userID: readerID, among: [])
        XCTAssertEqual(emptyAmong, [], file: file, line: line)
        try await storage.markRead(callID: c4, userID: try XCTUnwrap(otherReader.id))
        let before = try await hooks.readMarkRows(c1)
        XCTAssertEqual(before, 1, file: file, line: line)
        try await hooks.deleteCallAsRetentionDoes(c1)
        let gone = try await storage.call(id: c1)
        XCTAssertNil(gone, "retention deleted the call", file: file, line: line)
        let after = try await hooks.readMarkRows(c1)
        XCTAssertEqual(after, 0, "the read mark went with the call", file: file, line: line)
        let stillRead = try await storage.readCallIDs(userID: readerID, among: [c1, c3])
        XCTAssertEqual(stillRead, [c3], file: file, line: line)
        // A page that continues after a call retention removed meanwhile still works, within the extension.
        let afterGone = try await search(CallQuery(extensions: [sales], beforeID: c1, limit: 100), "after a deleted call")
        XCTAssertTrue(Set(afterGone).isSubset(of: Set(salesOnly)) && !afterGone.contains(c1), "\(afterGone)", file: file, line: line)
        // Removing a user takes their read marks along.
        try await storage.deleteUser(id: try XCTUnwrap(otherReader.id))
        let c4Marks = try await hooks.readMarkRows(c4)
        XCTAssertEqual(c4Marks, 0, file: file, line: line)
    }

    static func checkSearchJobs(_ storage: any Storage, run: String, file: StaticString, line: UInt) async throws {
        let sales = "sales-\(run)", support = "support-\(run)"
        let tj = Date(timeIntervalSince1970: 1_925_000_000 + TimeInterval(Int.random(in: 0..<10_000) * 86_400))
        var n = 0.0
        func job(_ ext: String, sender: String, number: String, dial: String, state: FaxJob.State = .ready) -> FaxJob {
            n += 60
            return FaxJob(state: state, createdAt: tj.addingTimeInterval(n), intakeID: nil, sender: sender, senderName: nil, extensionName: ext, language: "de", number: number,
                   dialString: dial, subject: "s", pages: 1, fine: true, sffPath: "/nonexistent", requestMessageID: nil)
        }
        let saved = try await storage.insertJobs([
            job(sales, sender: "anna_\(run)@praxis.example", number: "+49301234567", dial: "0301234567"),
            job(support, sender: "bert\(run)@praxis.example", number: "+49409998888", dial: "0409998888", state: .done),
            job(sales, sender: "carl\(run)@praxis.example", number: "+49891112222", dial: "0891112222", state: .failed),
            job(sales, sender: "dora\(run)@praxis.example", number: "+49301234567", dial: "0301234567", state: .canceled),
        ], intake: nil, event: "test")
        let ids = saved.compactMap(\.id)
        XCTAssertEqual(ids.count, 4, file: file, line: line)
        func search(_ q: JobQuery) async throws -> [Int64] { try await storage.searchJobs(q).compactMap(\.id) }
        let salesJobs = try await search(JobQuery(extensions: [sales]))
        XCTAssertEqual(salesJobs, [ids[3], ids[2], ids[0]], "newest first, only this extension", file: file, line: line)
        let noExtensions = try await search(JobQuery(extensions: []))
        XCTAssertEqual(noExtensions, [], file: file, line: line)
        let both = try await search(JobQuery(extensions: [sales, support], states: [.done, .failed]))
        XCTAssertEqual(both, [ids[2], ids[1]], file: file, line: line)
        let byNumber = try await search(JobQuery(extensions: [sales, support], text: "030 1234567"))
        XCTAssertEqual(byNumber, [ids[3], ids[0]], file: file, line: line)
        let bySender = try await search(JobQuery(extensions: [sales, support], text: "CARL\(run)@"))
        XCTAssertEqual(bySender, [ids[2]], "sender matches in any case", file: file, line: line)
        let literalUnderscore = try await search(JobQuery(extensions: [sales, support], text: "a_\(run)"))
        XCTAssertEqual(literalUnderscore, [ids[0]], "only 'anna_…': '_' is no wildcard (it would match 'rt…', 'rl…', 'ra…')", file: file, line: line)
        let foreign = try await search(JobQuery(extensions: [support], text: "030 1234567"))
        XCTAssertEqual(foreign, [], file: file, line: line)
        let page1 = try await search(JobQuery(extensions: [sales, support], limit: 2))
        let page2 = try await search(JobQuery(extensions: [sales, support], beforeID: page1.last, limit: 2))
        let page3 = try await search(JobQuery(extensions: [sales, support], beforeID: page2.last, limit: 2))
        XCTAssertEqual(page1 + page2, ids.reversed(), file: file, line: line)
        XCTAssertEqual(page3, [], file: file, line: line)
        let window = try await search(JobQuery(extensions: [sales, support], limit: 10, from: saved[1].createdAt, to: saved[3].createdAt))
        XCTAssertEqual(window, [ids[2], ids[1]], "from ≤ createdAt < to", file: file, line: line)
        let adminWindow = try await search(JobQuery(limit: 10, from: saved[1].createdAt, to: saved[3].createdAt))
        XCTAssertEqual(adminWindow, [ids[2], ids[1]], file: file, line: line)
        let adminAll = try await search(JobQuery(limit: 10_000))
        XCTAssertTrue(Set(ids).isSubset(of: Set(adminAll)), "admin (nil) sees every extension's jobs", file: file, line: line)
    }
}

// MARK: What the fax engine knows (issue 10): typed on calls and jobs, and a job's modem limits for its next try

extension StorageConformanceTests {
    func testSQLiteStorage_keepsTheEngineDetailContract() async throws {
        let dir = try TemporaryDirectory("storage-engine")
        let path = dir.path + "/db.sqlite"
        let storage = try SQLiteStorage(path: path)
        try await Self.checkEngineDetailContract(storage)
        // The columns are typed in the file itself, not one opaque blob: a report can ask SQL for them.
        let row = try runTool("sqlite3", [path, "select engine, compression, t30FailureKind, t30FailureBitRate, nextMaxBitRate, nextECM from job"])
        XCTAssertEqual(row.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines), "software|mmr|training_failed|9600|4800|0")
        // A value outside the typed set is refused by the database, not only by the mapping.
        let bad = try runTool("sqlite3", [path, "update call set t30FailureKind = 'made_up'"], check: false)
        XCTAssertNotEqual(bad.status, 0, "the kind column only takes known kinds")
        // Reopened (a restart): the job's limits for its next try are still there.
        let reopened = try SQLiteStorage(path: path)
        let jobs = try await reopened.recentJobs(limit: 1)
        XCTAssertEqual(jobs.first?.nextModem, ModemSettings(maxBitRate: 4800, ecm: false))
    }

    /// Round trip and update of every engine field on a call and a job. Works on a store that already holds data.
    static func checkEngineDetailContract(_ storage: any Storage, file: StaticString = #filePath, line: UInt = #line) async throws {
        try await storage.migrate()
        let pages = [
            FaxPageStatistics(page: 1, bitRate: 14400, compression: .mmr, fine: true, ecm: true, ecmRetransmittedFrames: 3, badRows: 0),
            FaxPageStatistics(page: 2, bitRate: 9600, compression: .mr, fine: false, ecm: false, ecmRetransmittedFrames: nil, badRows: 17),
        ]
        var call = CallRecord(state: .receiving, startedAt: Date(timeIntervalSince1970: 1_800_000_000), callingNumber: "+49301234567",
                              calledNumber: "100", extensionName: "Front")
        call = try await storage.insertCall(call, event: "answering")
        let callID = try XCTUnwrap(call.id, file: file, line: line)
        let plain = try await storage.call(id: callID)
        XCTAssertNil(plain?.engine, file: file, line: line)
        XCTAssertNil(plain?.t30Failure, file: file, line: line)
        XCTAssertEqual(plain?.pageStatistics, [], "no statistics stay none", file: file, line: line)

        call.engine = .software; call.compression = .mmr; call.ecm = true; call.ecmRetransmittedFrames = 3
        call.pageStatistics = pages
        call.t30Failure = T30Failure(kind: .pageRefused, code: 42, text: "Received RTN", bitRate: 9600)
        try await storage.updateCall(call, event: "call ended")
        let loaded = try await storage.call(id: call.id!)
        XCTAssertEqual(loaded, call, "every engine field survives the round trip", file: file, line: line)
        XCTAssertEqual(loaded?.pageStatistics, pages, file: file, line: line)

        // Updates replace, including back to nothing.
        call.engine = .controller; call.compression = nil; call.ecmRetransmittedFrames = 0; call.t30Failure = nil; call.pageStatistics = []
        try await storage.updateCall(call, event: "changed")
        let changed = try await storage.call(id: call.id!)
        XCTAssertEqual(changed, call, file: file, line: line)
        let listed = try await storage.recentCalls(limit: 50).first { $0.id == call.id }
        XCTAssertEqual(listed, call, "lists carry the same fields", file: file, line: line)

        // Whole seconds: storage keeps dates to the millisecond.
        let created = Date(timeIntervalSince1970: TimeInterval(Int(Date().timeIntervalSince1970)))
        var job = FaxJob(createdAt: created, intakeID: nil, sender: "a@praxis.example", senderName: nil, extensionName: "Front", language: "de",
                         number: "+49301234567", dialString: "0301234567", subject: "s", pages: 2, fine: true, sffPath: "/nonexistent",
                         requestMessageID: nil)
        let inserted = try await storage.insertJobs([job], intake: nil, event: "test")
        job = try XCTUnwrap(inserted.first, file: file, line: line)
        let fresh = try await storage.job(id: job.id!)
        XCTAssertEqual(fresh?.nextModem, .best, "a new job may use the best the modem has", file: file, line: line)
        XCTAssertNil(fresh?.t30Failure, file: file, line: line)

        var active = job
        active.state = .active
        try await storage.updateJob(active, expecting: .ready, event: "dialling")
        var tried = active
        tried.state = .deferred
        tried.engine = .software; tried.compression = .mmr; tried.ecm = true; tried.ecmRetransmittedFrames = 5; tried.pageStatistics = pages
        tried.t30Failure = T30Failure(kind: .trainingFailed, code: 7, text: "Training failed at 9600 bit/s", bitRate: 9600)
        tried.nextModem = ModemSettings(maxBitRate: 4800, ecm: false)
        try await storage.updateJob(tried, expecting: .active, event: "fax_protocol_error")
        let reloaded = try await storage.job(id: job.id!)
        XCTAssertEqual(reloaded, tried, "every engine field and the next try's limits survive", file: file, line: line)
        let queued = try await storage.jobs(in: [.deferred]).first { $0.id == job.id }
        XCTAssertEqual(queued?.nextModem, ModemSettings(maxBitRate: 4800, ecm: false), file: file, line: line)
    }
}
