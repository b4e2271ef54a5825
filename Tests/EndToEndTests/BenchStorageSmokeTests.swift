import Foundation
import TestSupport
import XCTest

/// `faxgate bench storage` with small sizes on the real test cluster: every figure line parses, both claimers
/// together claimed each queued job exactly once, and the journal queries return what was loaded. No time asserted.
final class BenchStorageSmokeTests: XCTestCase {
    func testBenchStorage_smallSizes_printsParsableFiguresWithRightCounts() throws {
        let server = try PostgresServer.shared()
        let out = try runTool(GatewayHarness.faxgateBinary, ["bench", "storage", "--pg-port", String(server.port),
                                                             "--jobs", "200", "--calls", "3000", "--repeats", "1"], check: false)
        let text = out.stdoutText
        XCTAssertEqual(out.status, 0, text + out.stderrText)
        let lines = text.split(separator: "\n").map(String.init)
        for backend in ["sqlite", "postgres"] {
            // claimed, duplicates, jobs/s, p50 ms, p99 ms
            let claims = try XCTUnwrap(lines.first { $0.hasPrefix(backend) && $0.split(separator: " ").count == 6 }, text)
            let n = claims.split(separator: " ").dropFirst().compactMap { Double($0) }
            XCTAssertEqual(n.count, 5, claims)
            guard n.count == 5 else { continue }
            XCTAssertEqual(n[0], 200, claims)
            XCTAssertEqual(n[1], 0, claims)
            XCTAssertTrue(n[2] > 0 && n[3] <= n[4], claims)
            let journal = lines.filter { $0.hasPrefix(backend) && $0.contains("Calls") }
            XCTAssertEqual(journal.count, 4, text)
            for line in journal {
                let rows = Int(line.split(separator: " ").last ?? "")
                if line.contains("countCalls") { XCTAssertEqual(rows, 3000, line) } else { XCTAssertEqual(rows, 50, line) }
            }
        }
    }
}
