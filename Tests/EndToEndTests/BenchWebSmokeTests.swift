import Foundation
import TestSupport
import XCTest

/// `faxgate bench web` runs end to end with a small journal and prints its figures. Speed is not asserted.
final class BenchWebSmokeTests: XCTestCase {
    func testBenchWeb_withASmallJournal_printsFiguresForTheJournalAndTheFloor() throws {
        let out = try runTool(GatewayHarness.faxgateBinary, ["bench", "web", "--calls", "2000", "--jobs", "50", "--requests", "20", "--connections", "2"])
        let text = out.stdoutText
        XCTAssertTrue(text.contains("storage: 2000 calls, 50 jobs"), text)
        for page in ["/admin/journal (first page)", "/admin/journal?dir=in&kind=fax", "/health/live (floor"] {
            let line = try XCTUnwrap(text.split(separator: "\n").first { $0.hasPrefix(page) }, "no figures for \(page):\n\(text)")
            // min, median, p99 (ms), req/s, bytes: five numbers, the latencies ordered, a page with a body.
            let numbers = line.dropFirst(40).split(separator: " ").compactMap { Double($0) }
            XCTAssertEqual(numbers.count, 5, String(line))
            guard numbers.count == 5 else { continue }
            XCTAssertTrue(numbers[0] > 0 && numbers[0] <= numbers[1] && numbers[1] <= numbers[2], String(line))
            XCTAssertGreaterThan(numbers[3], 0, String(line))
            XCTAssertGreaterThan(numbers[4], 0, String(line))
        }
    }
}
