import FaxgateCore
import Foundation
@testable import SQLiteStorage
import TestSupport
import XCTest

/// The web's journal and inbox pages stay fast with a full journal: 100,000 calls, pages read as index ranges.
/// (Measured by hand with 1,000,000 calls: every page query below 2 ms; a rare text search scans, ~0.3 s.)
final class CallListPerformanceTests: XCTestCase {
    func testCallPages_withOneHundredThousandCalls_areIndexRanges() async throws {
        let dir = try TemporaryDirectory("call-pages")
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        try await storage.migrate()
        let t0 = Date(timeIntervalSince1970: 1_700_000_000)
        let extensions = ["Empfang", "Labor", "Keller", "Praxis", "Verwaltung"]
        try await storage.pool.write { db in
            let insert = try db.makeStatement(sql: """
                INSERT INTO call (direction, kind, state, startedAt, callingNumber, calledNumber, extensionName, remoteStationID, pages)
                VALUES ('incoming', ?, 'mailed', ?, ?, '100', ?, ?, 1)
                """)
            for i in 0..<100_000 {
                try insert.execute(arguments: [i % 10 == 0 ? "voice" : "fax", t0.addingTimeInterval(Double(i) * 300), "30\(1_000_000 + i)",
                                               i % 20 == 0 ? nil : extensions[i % extensions.count], "+49 30 \(i)"])
            }
        }
        let newest = try await storage.searchCalls(CallQuery(limit: 1)).first?.id
        let middle = try XCTUnwrap(newest) / 2
        let year = (from: t0.addingTimeInterval(30 * 86_400), to: t0.addingTimeInterval(330 * 86_400))
        let day = (from: t0.addingTimeInterval(100 * 86_400), to: t0.addingTimeInterval(101 * 86_400))
        let cases: [(String, CallQuery)] = [
            ("admin first page", CallQuery(limit: 51)),
            ("admin deep page", CallQuery(beforeID: middle, limit: 51)),
            ("admin a year", CallQuery(from: year.from, to: year.to, limit: 51)),
            ("admin a day, deep", CallQuery(from: day.from, to: day.to, beforeID: middle, limit: 51)),
            ("user inbox", CallQuery(extensions: ["Empfang", "Labor"], direction: .incoming, limit: 51)),
            ("user voicemails, deep", CallQuery(extensions: ["Empfang"], kinds: [.voice], beforeID: middle, limit: 51)),
            ("user a day", CallQuery(extensions: ["Empfang", "Keller"], from: day.from, to: day.to, limit: 51)),
        ]
        for (label, query) in cases {
            let plan = try await storage.callPagePlan(query)
            if query.extensions == nil {
                XCTAssertTrue(plan.contains { $0.contains("USING INDEX call_on_startedAt") }, "\(label): \(plan)")
                XCTAssertFalse(plan.contains { $0.contains("TEMP B-TREE") }, "\(label) sorts: \(plan)")
            } else {
                // One index range per extension; only the merge of at most extensions × limit ids is sorted.
                XCTAssertEqual(plan.filter { $0.contains("USING COVERING INDEX call_on_extensionName_startedAt") || $0.contains("USING INDEX call_on_extensionName_startedAt") }.count,
                               query.extensions!.count, "\(label): \(plan)")
            }
            XCTAssertFalse(plan.contains { $0.hasPrefix("SCAN call") && !$0.contains("INDEX") }, "\(label) scans the table: \(plan)")
            let start = Date()
            let page = try await storage.searchCalls(query)
            let ms = Date().timeIntervalSince(start) * 1000
            print(String(format: "%@: %d calls in %.1f ms", label, page.count, ms))
            XCTAssertFalse(page.isEmpty, label)
            // No time is asserted (CI machines vary): the plan checks above are the contract, `faxgate bench web` measures.
        }
    }
}
