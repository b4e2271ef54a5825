// Our FaxEngine against a second spandsp instance on a virtual line: whole T.30 sessions in milliseconds.
import FaxDocument
import Foundation
import SoftFax
import TestSupport
import XCTest

final class FaxEngineTests: XCTestCase {
    /// Two A4 text pages rendered by Ghostscript (an independent renderer), once per run.
    nonisolated(unsafe) static var textPagesCache: [Bool: [FaxPage]] = [:]

    static func textPages(fine: Bool) throws -> [FaxPage] {
        if let pages = textPagesCache[fine] { return pages }
        let dir = try TemporaryDirectory("softfax-gs")
        let sff = try ghostscriptSFF(faxTestPostScript, fine: fine, in: dir)
        let pages = Array(try SFFReader.read(sff).pages.prefix(2))
        textPagesCache[fine] = pages
        return pages
    }

    func options(calling: Bool, ecm: Bool = true, modems: Set<FaxModem> = Set(FaxModem.allCases)) -> FaxEngineOptions {
        FaxEngineOptions(calling: calling, localIdent: calling ? "+49 30 1234567" : "+49 40 7654321", ecm: ecm, modems: modems)
    }

    func testTextPagesOverLinearAudioWithECM() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = try Self.textPages(fine: true)
        let outcome = try BackToBack.run(pages: pages, sender: options(calling: true), receiver: options(calling: false),
                                         workDirectory: dir.path)
        XCTAssertEqual(outcome.sender.kind, .success, outcome.sender.text)
        XCTAssertEqual(outcome.receiver.kind, .success, outcome.receiver.text)
        XCTAssertEqual(outcome.receiver.pages, 2)
        XCTAssertEqual(outcome.receivedPages.count, 2)
        XCTAssertEqual(outcome.receivedPages, pages)
        XCTAssertEqual(outcome.receiver.remoteIdent, "+49 30 1234567")
        XCTAssertEqual(outcome.sender.remoteIdent, "+49 40 7654321")
        print("line \(outcome.lineSeconds) s, cpu \(outcome.engineCPUSeconds) s, events \(outcome.senderEvents) \(outcome.receiverEvents.map { if case .page(let r, _) = $0 { "\(r)" } else { "\($0)" } })")
    }
}
