import FaxDocument
import Foundation
import TestSupport
import XCTest

@testable import FaxRender

/// The renderer's part in "what of the mail is faxed" and "one language per mail": quotes dropped from HTML
/// bodies, the cover page's message field, the report's thumbnail label, and renderer errors in German.
final class MailContentRenderTests: XCTestCase {
    func testHTMLBody_withoutQuotes_keepsTheSendersText_butHTMLDocumentsKeepTheirBlockquotes() {
        let html = "<p>Bitte faxen.</p><blockquote><p>Erika Mustermann</p></blockquote><p>Danke</p>"
        XCTAssertEqual(HTMLBodyText.text(html), "Bitte faxen.\n\nDanke\n")
        XCTAssertTrue(HTMLText.text(html).contains("Erika Mustermann"), "an HTML attachment is a document: nothing dropped")
        XCTAssertEqual(HTMLBodyText.text("<div>Hallo</div><div class=\"gmail_quote\">alt<blockquote>Mustermann</blockquote></div><p>nach dem Zitat</p>"),
                       "Hallo\n")
    }

    func testCommentFits_matchesWhatTheCoverPageShowsWhole() {
        XCTAssertTrue(CoverPage.commentFits("Bitte faxen."))
        let thirty = (1...30).map { "Zeile \($0)" }.joined(separator: "\n")
        let forty = (1...40).map { "Zeile \($0)" }.joined(separator: "\n")
        XCTAssertTrue(CoverPage.commentFits(thirty))
        XCTAssertFalse(CoverPage.commentFits(forty))
        // What fits is shown whole; what does not is cut with "...".
        let shown = CoverPage.postScript(sender: "a", recipient: "b", recipientNumber: "c", subject: "d", pages: 1, date: Date(),
                                         comment: thirty, language: "de", paper: .a4)
        XCTAssertTrue(shown.contains("(Zeile 30)"))
        XCTAssertFalse(shown.contains("(...)"))
        let cut = CoverPage.postScript(sender: "a", recipient: "b", recipientNumber: "c", subject: "d", pages: 1, date: Date(),
                                       comment: forty, language: "de", paper: .a4)
        XCTAssertTrue(cut.contains("(...)"))
    }

    func testSendReport_namesThePageItsThumbnailShows() {
        var facts = SendReportFacts(number: "1", remoteStationID: "", start: Date(), duration: 1, pagesSent: 3, pagesTotal: 3,
                                    resolution: .fine, bitRate: 14400, resultText: "gesendet", success: true, jobID: "1", sender: "s",
                                    language: "de")
        facts.documentPageNumber = 2
        let page = FaxPage(bitmap: [UInt8](repeating: 0, count: 216 * 8), width: 1728, height: 8, resolution: .fine)
        XCTAssertTrue(SendReport.postScript(facts, firstPage: page).contains("(Seite 2 \\(verkleinert\\))"))
        facts.language = "en"
        XCTAssertTrue(SendReport.postScript(facts, firstPage: page).contains("(Page 2 \\(reduced\\))"))
    }

    func testRenderErrors_haveGermanTexts_forEveryKind() {
        let kinds: [RenderError.Kind] = [.unsupported, .encrypted, .broken, .timeout, .tooLarge, .tooManyPages]
        for kind in kinds {
            let error = RenderError(kind, "the English text of \(kind)")
            XCTAssertEqual(error.text("en"), "the English text of \(kind)")
            let german = error.text("de")
            XCTAssertFalse(german.contains("English"), german)
            XCTAssertFalse(german.lowercased().split(separator: " ").contains { ["the", "is", "not", "of"].contains(String($0)) }, german)
        }
        XCTAssertEqual(RenderError(.broken, "x", german: "y").text("de"), "y")
    }
}
