import FaxgateCore
import Foundation
import Logging
@testable import PostgresStorage
import TestSupport
import XCTest

/// The account contract (users, sessions, audit, settings, the filtered journal) on a real PostgreSQL 15, plus what
/// only PostgreSQL can get wrong: locale collations, concurrent writers on several nodes, plans without indexes.
final class PostgresAccountConformanceTests: XCTestCase {
    private var server: PostgresServer!
    private var database = ""
    private var handles: [PostgresStorage] = []

    override func setUpWithError() throws {
        server = try PostgresServer.shared()
        database = try server.createDatabase("acct")
    }

    override func tearDown() {
        for h in handles { h.close() }
        handles = []
        server?.dropDatabase(database)
    }

    /// A handle on this test's database, like another node's (trusted loopback: TLS is not the point here).
    private func open() async throws -> PostgresStorage {
        var settings = PostgresSettings()
        settings.host = "127.0.0.1"; settings.port = server.port; settings.database = database; settings.user = "postgres"
        settings.tls = "disable"
        let storage = PostgresStorage(connection: try PostgresConnectionSettings(settings), node: "n1", spoolDirectory: NSTemporaryDirectory(),
                                      logger: Logger(label: "pg-accounts"))
        handles.append(storage)
        try await storage.migrate()
        return storage
    }

    func testKeepsTheAccountContract() async throws {
        let storage = try await open()
        let server = self.server!, database = self.database
        // Retention deletes calls through its own category, as `serve` does; read marks are counted in the table itself.
        let hooks = StorageConformanceTests.AccountContractHooks(
            deleteCallAsRetentionDoes: { id in
                let categories = storage.retentionCategories(spoolDirectory: NSTemporaryDirectory(), countryCode: "49")
                let received = try XCTUnwrap(categories.first { $0.name == "received_faxes" })
                _ = try await received.delete([RetentionItem(category: "received_faxes", id: "call-\(id)", createdAt: Date())])
            },
            readMarkRows: { callID in
                let out = try server.psql("SELECT count(*) FROM callRead WHERE callID = \(callID)", database: database)
                return Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
            })
        try await StorageConformanceTests.checkAccountContract(storage, hooks: hooks)
        // A second run on the same database: the checks do not depend on an empty store.
        try await StorageConformanceTests.checkAccountContract(storage, hooks: hooks)
    }

    /// SQLite's NOCASE made "Anna" and "anna" one login; PostgreSQL compares case-sensitively unless told.
    func testUserNamesAreOneLoginInAnyCase() async throws {
        let storage = try await open()
        let anna = try await storage.insertUser(WebUser(name: "anna", role: .user, extensions: [], passwordHash: "$2b$12$a"))
        do {
            _ = try await storage.insertUser(WebUser(name: "Anna", role: .admin, extensions: [], passwordHash: "$2b$12$b"))
            XCTFail("'Anna' is the login 'anna'")
        } catch let error as DuplicateUserName {
            XCTAssertEqual(error.name, "Anna")
        }
        let found = try await storage.user(name: "ANNA")
        XCTAssertEqual(found?.id, anna.id)
        XCTAssertEqual(found?.role, .user, "the refused insert changed nothing")
        // Ordered by name in any case, whatever the database's locale ('_' and '.' are not ignored).
        for name in ["Bert", "a_z", "a.z", "carl"] {
            _ = try await storage.insertUser(WebUser(name: name, role: .user, extensions: [], passwordHash: "$2b$12$c"))
        }
        let names = try await storage.users().map(\.name)
        XCTAssertEqual(names, ["a.z", "a_z", "anna", "Bert", "carl"])
    }

    /// Two nodes write the same settings document from the same version at once: exactly one wins, the other learns
    /// the version that won.
    func testConcurrentSettingWritesFromTwoNodesConflict() async throws {
        let first = try await open(), second = try await open()
        try await first.putSetting("office", value: "{\"v\":0}", expectingVersion: nil, by: "anna")
        for round in 1...5 {
            async let a = Self.attempt { try await first.putSetting("office", value: "{\"a\":\(round)}", expectingVersion: round, by: "anna") }
            async let b = Self.attempt { try await second.putSetting("office", value: "{\"b\":\(round)}", expectingVersion: round, by: "bert") }
            let results = await [a, b]
            let won = results.compactMap { try? $0.get() }
            XCTAssertEqual(won.count, 1, "round \(round): one write wins")
            XCTAssertEqual(won.first?.version, round + 1)
            for case .failure(let error) in results {
                let conflict = try XCTUnwrap(error as? SettingVersionConflict, "\(error)")
                XCTAssertEqual(conflict.actual, round + 1)
            }
            let stored = try await second.setting("office")
            XCTAssertEqual(stored?.value, won.first?.value)
        }
    }

    /// Sequential scans and sorts priced out: the plan shows what the indexes can serve.
    static let indexesOnly = ["enable_seqscan = off", "enable_sort = off"]

    private static func attempt(_ body: @Sendable () async throws -> StoredSetting) async -> Result<StoredSetting, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    /// The journal pages come from index ranges in (time, id) order: no sort of the matching rows, no table scan,
    /// for the admin's first and deep pages, a date range, and a user's extensions. (Timing is the bench's.)
    func testJournalPagesReadIndexRanges() async throws {
        let storage = try await open()
        var ids: [Int64] = []
        for i in 0..<6 {
            var r = CallRecord(direction: .incoming, kind: .fax, state: .mailed, startedAt: Date(timeIntervalSince1970: 1_900_000_000 + Double(i) * 60),
                               callingNumber: "30123456\(i)", calledNumber: "100", extensionName: i % 2 == 0 ? "sales" : "support")
            r.pages = 1
            let saved = try await storage.insertCall(r, event: "test")
            ids.append(try XCTUnwrap(saved.id))
        }
        let day = (from: Date(timeIntervalSince1970: 1_900_000_000), to: Date(timeIntervalSince1970: 1_900_000_000 + 86_400))
        let admin: [(String, CallQuery)] = [
            ("first page", CallQuery(limit: 50)),
            ("deep page", CallQuery(beforeID: ids[3], limit: 50)),
            ("date range", CallQuery(from: day.from, to: day.to, beforeID: ids[4], limit: 50)),
            ("states", CallQuery(states: [.mailed, .rejected], limit: 50)),
        ]
        for (label, q) in admin {
            let plan = try await storage.callPagePlan(q, settings: Self.indexesOnly).joined(separator: "\n")
            XCTAssertFalse(plan.contains("Sort"), "\(label): the index delivers the order\n\(plan)")
            XCTAssertFalse(plan.contains("Seq Scan"), "\(label)\n\(plan)")
            XCTAssertTrue(plan.contains("Index"), "\(label)\n\(plan)")
        }
        // A user's extensions: one index range per extension, the merge sorts at most extensions × limit rows.
        let user = try await storage.callPagePlan(CallQuery(extensions: ["sales", "support"], beforeID: ids[5], limit: 50), settings: Self.indexesOnly)
            .joined(separator: "\n")
        XCTAssertFalse(user.contains("Seq Scan on call"), user)
        XCTAssertTrue(user.contains("call_on_extensionname_startedat_id"), user)
        // A text search ("contains", any case, % and _ escaped) can be answered from the trigram index instead of
        // reading every call; with plain index scans off, that is the only index way left.
        for text in ["ACME 100%", "030 1234567"] {
            let plan = try await storage.callPagePlan(CallQuery(text: text, limit: 50), settings: ["enable_seqscan = off", "enable_indexscan = off"])
                .joined(separator: "\n")
            XCTAssertTrue(plan.contains("Bitmap Index Scan on call_on_text_trgm"), "\(text)\n\(plan)")
        }
        // And the page itself is right (the plan is not all this checks).
        let page = try await storage.searchCalls(CallQuery(extensions: ["sales", "support"], beforeID: ids[5], limit: 3)).compactMap(\.id)
        XCTAssertEqual(page, [ids[4], ids[3], ids[2]])
    }
}
