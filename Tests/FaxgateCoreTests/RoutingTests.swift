import FaxgateCore
import XCTest

final class RoutingTests: XCTestCase {
    let front = Extension(name: "Front", numbers: [NumberPattern("100")!, NumberPattern("120-129")!], recipients: ["f@x.test"])
    let lab = Extension(name: "Lab", numbers: [NumberPattern("0301234200")!], recipients: ["l@x.test"])

    func testRanges_matchOnlyEqualLengthNumbersInside() {
        let p = NumberPattern("120-129")!
        XCTAssertTrue(p.matches("120")); XCTAssertTrue(p.matches("129")); XCTAssertTrue(p.matches("125"))
        XCTAssertFalse(p.matches("130")); XCTAssertFalse(p.matches("1200")); XCTAssertFalse(p.matches("12"))
        XCTAssertNil(NumberPattern("129-120")); XCTAssertNil(NumberPattern("12-130")); XCTAssertNil(NumberPattern("1x"))
    }

    func testRoute_findsExactRangeAndDDISuffix() {
        let dir = ExtensionDirectory(extensions: [front, lab], catchAllName: nil)
        XCTAssertEqual(dir.route(calledNumber: "100"), .number(front))
        XCTAssertEqual(dir.route(calledNumber: "127"), .number(front))
        XCTAssertEqual(dir.route(calledNumber: "0301234200"), .number(lab))
        // The network signalled the full number; the extension claims only the DDI.
        XCTAssertEqual(dir.route(calledNumber: "030123456100"), .number(front))
        XCTAssertEqual(dir.route(calledNumber: "555"), .none)
    }

    func testUnknownNumber_goesToCatchAllWhenConfigured() {
        let dir = ExtensionDirectory(extensions: [front, lab], catchAllName: "Lab")
        XCTAssertEqual(dir.route(calledNumber: "555"), .catchAll(lab))
    }
}
