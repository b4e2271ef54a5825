import Foundation
import TestSupport
import XCTest

/// `faxgate bench softfax` runs with a one-page fax and prints its figures. Speed is not asserted; that every
/// mode negotiated its own rate and delivered the page is.
final class BenchSoftFaxSmokeTests: XCTestCase {
    func testBenchSoftFax_withOnePage_printsATableForEveryModem_andTheConcurrentFigure() throws {
        let out = try runTool(GatewayHarness.faxgateBinary, ["bench", "softfax", "--pages", "1", "--repeats", "2", "--threads", "2",
                                                              "--sessions-per-thread", "1"])
        let text = out.stdoutText
        let lines = text.split(separator: "\n").map(String.init)
        let expectedRates = ["V.17 14400 ECM linear": 14400, "V.17 14400 ECM A-law": 14400, "V.17 14400 A-law no ECM": 14400,
                             "V.29 9600 ECM linear": 9600, "V.29 9600 ECM A-law": 9600,
                             "V.27ter 4800 ECM linear": 4800, "V.27ter 4800 ECM A-law": 4800]
        for (label, rate) in expectedRates {
            let line = try XCTUnwrap(lines.first { $0.hasPrefix(label + " ") }, "no row for \(label):\n\(text)")
            // bit/s, line s, pages, RTF min/median/max, engine median, channels/core.
            let numbers = line.dropFirst(26).split(separator: " ").compactMap { Double($0) }
            XCTAssertEqual(numbers.count, 8, line)
            guard numbers.count == 8 else { continue }
            XCTAssertEqual(Int(numbers[0]), rate, "negotiated rate: \(line)")
            XCTAssertGreaterThan(numbers[1], 5, "a T.30 session takes seconds of line time: \(line)")
            XCTAssertEqual(numbers[2], 1, "the page went across: \(line)")
            XCTAssertTrue(numbers[3] > 0 && numbers[3] <= numbers[4] && numbers[4] <= numbers[5], line)
            XCTAssertGreaterThan(numbers[6], 0, line)
            XCTAssertGreaterThan(numbers[7], 0, line)
        }
        func figure(after prefix: String) throws -> Double {
            let line = try XCTUnwrap(lines.first { $0.hasPrefix(prefix) }, "no '\(prefix)' in:\n\(text)")
            return try XCTUnwrap(line.dropFirst(prefix.count).split(separator: " ").first.flatMap { Double($0) }, line)
        }
        XCTAssertGreaterThan(try figure(after: "one core carries"), 0)
        XCTAssertGreaterThan(try figure(after: "channels carried at once on 2 threads:"), 0)
        XCTAssertGreaterThan(try figure(after: "peak RSS:"), 0)
        XCTAssertTrue(text.contains("PRI (30 B-channels)"), text)
    }
}
