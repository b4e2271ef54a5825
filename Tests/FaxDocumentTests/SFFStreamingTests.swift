// A transport appends pages one by one to a spool file; the result must read like a whole-document SFF,
// also for sfftobmp (a reader nobody here wrote).
import FaxDocument
import Foundation
import TestSupport
import XCTest

final class SFFStreamingTests: XCTestCase {
    func testStreamedPagesReadBackLikeAWholeDocument() throws {
        let dir = try TemporaryDirectory("sff-stream")
        let pages = try SFFReader.read(ghostscriptSFF(faxTestPostScript, fine: false, in: dir)).pages
        XCTAssertEqual(pages.count, 3)
        var spool = SFFWriter.documentHeader()
        for page in pages { spool += SFFWriter.pageBytes(page) }

        // Cut off before the end record (a call that ended abruptly): every complete page is still there.
        let open = try SFFReader.read(spool)
        XCTAssertEqual(open.pages, pages)

        spool += SFFWriter.documentEnd()
        let closed = try SFFReader.read(spool)
        XCTAssertEqual(closed.pages, pages)
        XCTAssertEqual(closed.problems, [])
        // Same page records as the one-shot writer; only the header's count and offsets differ.
        let whole = SFFWriter.write(pages)
        XCTAssertEqual(Array(spool[20...]), Array(whole[20...]))

        let decoded = try sfftobmpPages(spool, keepResolution: true, in: dir, label: "streamed")
        XCTAssertEqual(decoded.count, 3)
        for (page, image) in zip(pages, decoded) {
            XCTAssertEqual(compareImages(BilevelImage(page), image).differing, 0)
        }
    }
}
