// Our FaxEngine against a second spandsp instance on a virtual line: whole T.30 sessions in milliseconds.
// Pages are compared pixel by pixel and, written as TIFF, by tiffcmp (a comparer nobody here wrote).
@testable import SoftFax
import CSpandsp
import FaxDocument
import Foundation
import TestSupport
import VoiceAudio
import XCTest

final class FaxEngineTests: XCTestCase {
    /// Ghostscript renderings of the shared test document (an independent renderer), once per run.
    nonisolated(unsafe) static var textPagesCache: [Bool: [FaxPage]] = [:]

    static func textPages(fine: Bool) throws -> [FaxPage] {
        if let pages = textPagesCache[fine] { return pages }
        let dir = try TemporaryDirectory("softfax-gs")
        let pages = try SFFReader.read(ghostscriptSFF(faxTestPostScript, fine: fine, in: dir)).pages
        textPagesCache[fine] = pages
        return pages
    }

    /// An A4 page with a photo: a smooth grey picture error-diffused (Floyd–Steinberg) to black and white,
    /// the hardest kind of page for T.4 compression, with a text line above it.
    static func photoPage(fine: Bool) throws -> FaxPage {
        let width = FaxPage.standardWidth, height = fine ? 2292 : 1146
        let rowBytes = width / 8
        var bits = [UInt8](repeating: 0, count: rowBytes * height)
        let text = try textPages(fine: fine)[0]
        // Top third: the test document's heading, so the page has text too.
        for y in 0..<(height / 4) { for i in 0..<rowBytes { bits[y * rowBytes + i] = text.bitmap[y * rowBytes + i] } }
        let top = height / 4, bottom = height * 3 / 5, left = 150, right = width - 150
        var error = [Double](repeating: 0, count: (right - left + 2) * 2)
        let stride = right - left + 2
        for y in top..<bottom {
            let cur = (y % 2) * stride, next = ((y + 1) % 2) * stride
            for i in 0..<stride { error[next + i] = 0 }
            for x in left..<right {
                let fx = Double(x - left) / Double(right - left), fy = Double(y - top) / Double(bottom - top)
                let grey = 0.5 + 0.25 * sin(fx * 9) * cos(fy * 7) + 0.2 * (fx - 0.5) + 0.05 * sin((fx + fy) * 60)
                let value = grey + error[cur + x - left + 1]
                let black = value < 0.5
                if black { bits[y * rowBytes + x / 8] |= 0x80 >> UInt8(x % 8) }
                let e = value - (black ? 0 : 1)
                error[cur + x - left + 2] += e * 7 / 16
                error[next + x - left] += e * 3 / 16
                error[next + x - left + 1] += e * 5 / 16
                error[next + x - left + 2] += e * 1 / 16
            }
        }
        return FaxPage(bitmap: bits, width: width, height: height, resolution: fine ? .fine : .normal)
    }

    func options(calling: Bool, ecm: Bool = true, modems: Set<FaxModem> = Set(FaxModem.allCases)) -> FaxEngineOptions {
        FaxEngineOptions(calling: calling, localIdent: calling ? "+49 30 1234567" : "+49 40 7654321", ecm: ecm, modems: modems)
    }

    func session(_ pages: [FaxPage], ecm: Bool = true, modems: Set<FaxModem> = Set(FaxModem.allCases),
                 receiver: FaxEngineOptions? = nil, line: BackToBackLine = BackToBackLine(), in dir: TemporaryDirectory) throws -> BackToBackOutcome {
        try BackToBack.run(pages: pages, sender: options(calling: true, ecm: ecm, modems: modems),
                           receiver: receiver ?? options(calling: false, ecm: ecm), line: line, workDirectory: dir.path)
    }

    /// Both ends succeeded and the received pages equal the sent ones, by our comparison and by tiffcmp.
    func assertDelivered(_ outcome: BackToBackOutcome, _ pages: [FaxPage], in dir: TemporaryDirectory,
                         file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(outcome.sender.kind, .success, outcome.sender.text, file: file, line: line)
        XCTAssertEqual(outcome.receiver.kind, .success, outcome.receiver.text, file: file, line: line)
        XCTAssertEqual(outcome.sender.pages, pages.count, file: file, line: line)
        XCTAssertEqual(outcome.receiver.pages, pages.count, file: file, line: line)
        XCTAssertEqual(outcome.receivedPages.count, pages.count, file: file, line: line)
        XCTAssertTrue(outcome.receivedPages == pages, "received pixels differ", file: file, line: line)
        let sent = dir.path + "/sent.tif", received = dir.path + "/received.tif"
        try TIFFWriter.write(pages, to: sent, compression: .g4)
        try TIFFWriter.write(outcome.receivedPages, to: received, compression: .g4)
        let result = try runTool(faxTool("tiffcmp"), [sent, received], check: false)
        XCTAssertEqual(result.status, 0, "tiffcmp: \(result.stdoutText.prefix(500))", file: file, line: line)
        // tiffcmp names each directory it compares and prints nothing else when they are identical.
        let differences = result.stdoutText.split(separator: "\n").filter { !$0.hasPrefix("Directory ") }
        XCTAssertEqual(differences, [], file: file, line: line)
    }

    func reports(_ events: [FaxEngineEvent]) -> [FaxPageReport] {
        events.compactMap { if case .page(let report, _) = $0 { report } else { nil } }
    }

    // MARK: - Delivery

    func testTwoFineTextPagesOverLinearAudioWithECM() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = Array(try Self.textPages(fine: true).prefix(2))
        let outcome = try session(pages, in: dir)
        try assertDelivered(outcome, pages, in: dir)
        XCTAssertEqual(outcome.receiver.remoteIdent, "+49 30 1234567")
        XCTAssertEqual(outcome.sender.remoteIdent, "+49 40 7654321")
        XCTAssertEqual(outcome.sender.bitRate, 14400)
        XCTAssertEqual(outcome.sender.ecm, true)
        // Both offered MMR with ECM, so that is what the line used.
        XCTAssertEqual(outcome.receiver.compression, .mmr)
        // Events in order: negotiated, one page event per page, finished.
        guard case .negotiated(let ident, let rate, let ecm, _, let fine) = outcome.receiverEvents.first else {
            return XCTFail("first receiver event: \(String(describing: outcome.receiverEvents.first))")
        }
        XCTAssertEqual(ident, "+49 30 1234567")
        XCTAssertEqual(rate, 14400)
        XCTAssertTrue(ecm)
        XCTAssertTrue(fine)
        XCTAssertEqual(reports(outcome.receiverEvents).map(\.page), [1, 2])
        XCTAssertEqual(reports(outcome.senderEvents).map(\.page), [1, 2])
        XCTAssertEqual(reports(outcome.receiverEvents).map(\.length), pages.map(\.height))
        guard case .finished = outcome.receiverEvents.last else { return XCTFail("last event is not .finished") }
    }

    func testPhotoPageOverALawWithoutECM() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = [try Self.photoPage(fine: false)]
        let outcome = try session(pages, ecm: false, line: BackToBackLine(codec: .alaw), in: dir)
        try assertDelivered(outcome, pages, in: dir)
        XCTAssertEqual(outcome.receiver.ecm, false)
        // Without ECM only MH or MR are possible.
        XCTAssertEqual(outcome.receiver.compression, .mr)
        XCTAssertEqual(reports(outcome.receiverEvents).first?.badRows, 0)
    }

    func testPhotoPageFineOverALawWithECM() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = [try Self.photoPage(fine: true)]
        try assertDelivered(try session(pages, line: BackToBackLine(codec: .alaw), in: dir), pages, in: dir)
    }

    /// Each modem family alone, ECM on and off, normal resolution, through A-law.
    func testEachModemWithAndWithoutECM() throws {
        let page = [try Self.textPages(fine: false)[1]]
        for modem in FaxModem.allCases {
            for ecm in [true, false] {
                let dir = try TemporaryDirectory("softfax")
                let outcome = try session(page, ecm: ecm, modems: [modem], line: BackToBackLine(codec: .alaw), in: dir)
                try assertDelivered(outcome, page, in: dir)
                XCTAssertEqual(outcome.receiver.bitRate, modem.maxBitRate, "\(modem) ecm \(ecm)")
                XCTAssertEqual(outcome.receiver.ecm, ecm, "\(modem)")
                XCTAssertEqual(reports(outcome.senderEvents).first?.bitRate, modem.maxBitRate)
                XCTAssertEqual(reports(outcome.receiverEvents).first?.fine, false)
            }
        }
    }

    func testOnlyMHWhenThatIsAllTheReceiverOffers() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = [try Self.textPages(fine: true)[2]]
        var receiver = options(calling: false)
        receiver.compressions = [.mh]
        let outcome = try session(pages, receiver: receiver, in: dir)
        try assertDelivered(outcome, pages, in: dir)
        XCTAssertEqual(outcome.receiver.compression, .mh)
        XCTAssertEqual(outcome.sender.compression, .mh)
    }

    /// The page header line spandsp prints goes above the image: the page grows by the header's rows, and
    /// everything below is the sent image, untouched.
    func testPageHeaderIsAddedAboveTheImage() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = Array(try Self.textPages(fine: true).prefix(2))
        var sender = options(calling: true)
        sender.pageHeader = "Faxgate\u{1B}[31m test"
        let outcome = try BackToBack.run(pages: pages, sender: sender, receiver: options(calling: false), workDirectory: dir.path)
        XCTAssertEqual(outcome.receiver.kind, .success, outcome.receiver.text)
        XCTAssertEqual(outcome.receivedPages.count, 2)
        for (sent, received) in zip(pages, outcome.receivedPages) {
            let extra = received.height - sent.height
            XCTAssertGreaterThan(extra, 0)
            XCTAssertLessThan(extra, 100)
            XCTAssertEqual(Array(received.bitmap.suffix(sent.bitmap.count)), sent.bitmap)
            XCTAssertGreaterThan(received.bitmap.prefix(extra * received.rowBytes).reduce(0) { $0 + $1.nonzeroBitCount }, 100)
        }
    }

    // MARK: - A bad line

    /// Dropped 20 ms frames (as a jitter buffer that conceals loss does), bit errors on the A-law bytes and
    /// 50 ppm clock drift: ECM repairs the pages by retransmission and the pixels arrive intact.
    static let badLine = BackToBackLine(codec: .alaw, frameLoss: 0.003, bitErrorRate: 2e-6, clockDriftPPM: 50, seed: 3)

    func testECMRecoversFromSeededLossBitErrorsAndDrift() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = Array(try Self.textPages(fine: true).prefix(2))
        let outcome = try session(pages, line: Self.badLine, in: dir)
        XCTAssertGreaterThan(outcome.framesLost, 0)
        XCTAssertGreaterThan(outcome.bitsFlipped, 0)
        try assertDelivered(outcome, pages, in: dir)
        XCTAssertGreaterThan(outcome.sender.ecmRetransmittedFrames, 0, "the loss hit no page data; choose another seed")
        XCTAssertEqual(outcome.sender.ecmRetransmittedFrames, reports(outcome.senderEvents).reduce(0) { $0 + $1.ecmRetransmittedFrames })
    }

    /// The same line without ECM: the pages arrive damaged, and the damage is reported (bad rows), not silent.
    func testWithoutECMTheSameLineDamagesPagesVisibly() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = Array(try Self.textPages(fine: true).prefix(2))
        let outcome = try session(pages, ecm: false, line: Self.badLine, in: dir)
        XCTAssertNotEqual(outcome.receivedPages, pages)
        if outcome.receiver.succeeded {
            XCTAssertGreaterThan(reports(outcome.receiverEvents).reduce(0) { $0 + $1.badRows }, 0)
        } else {
            XCTAssertNotEqual(outcome.receiver.kind, .other, outcome.receiver.text)
        }
    }

    /// Without ECM the same kind of line breaks pages; the session must end with a typed reason, not hang.
    func testWithoutECMLossEndsCleanlyWithAReason() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = Array(try Self.textPages(fine: true).prefix(2))
        let line = BackToBackLine(codec: .alaw, frameLoss: 0.02, lostFramesBecomeSilence: true, seed: 3)
        let outcome = try session(pages, ecm: false, line: line, in: dir)
        XCTAssertNotEqual(outcome.sender.kind, .success)
        XCTAssertNotEqual(outcome.sender.kind, .other, outcome.sender.text)
        XCTAssertFalse(outcome.sender.text.isEmpty)
        XCTAssertNotEqual(outcome.sender.code, 0)
        XCTAssertLessThan(outcome.lineSeconds, 600, "ended by the T.30 timers, not by the harness")
    }

    /// A line too noisy to train on (bit errors on the A-law bytes): whichever way spandsp ends it (FTT and
    /// DCN, a hang-up, an "unexpected message" after a lost FTT), both ends call it a training failure and
    /// name the rate, which is what the retry policy lowers.
    func testTrainingFailureNamesTheRate() throws {
        let pages = [try Self.textPages(fine: false)[0]]
        for seed in UInt64(1)...2 {
            let dir = try TemporaryDirectory("softfax")
            let outcome = try session(pages, line: BackToBackLine(codec: .alaw, bitErrorRate: 0.002, seed: seed), in: dir)
            for result in [outcome.sender, outcome.receiver] {
                XCTAssertEqual(result.kind, .trainingFailed, result.text)
                let rate = try XCTUnwrap(result.bitRate)
                XCTAssertTrue([14400, 12000, 9600, 7200, 4800, 2400].contains(rate))
                XCTAssertTrue(result.text.hasSuffix("training failed at \(rate) bit/s"), result.text)
            }
            XCTAssertEqual(outcome.receivedPages, [])
        }
    }

    // MARK: - Ends of a session

    /// A remote that never answers (silence or noise forever): spandsp's T1 ends the session with noResponse.
    func testSilenceOrNoiseForeverEndsWithNoResponse() throws {
        let dir = try TemporaryDirectory("softfax")
        for calling in [true, false] {
            for noise in [false, true] {
                let engine = try FaxEngine(options: options(calling: calling), send: calling ? [Self.textPages(fine: false)[0]] : nil,
                                           workDirectory: dir.path)
                var rng = SystemRandomNumberGenerator()
                var samples = 0
                while !engine.isFinished && samples < 8000 * 300 {
                    _ = engine.transmit(count: 160)
                    let frame = (0..<160).map { _ in noise ? Int16.random(in: -3000...3000, using: &rng) : 0 }
                    engine.receive(frame)
                    samples += 160
                }
                XCTAssertTrue(engine.isFinished, "calling \(calling) noise \(noise)")
                XCTAssertLessThan(samples, 8000 * 120, "T1 is 35 s; calling \(calling) noise \(noise)")
                let finished = engine.takeEvents().compactMap { if case .finished(let r) = $0 { r } else { nil } }
                XCTAssertEqual(finished.count, 1)
                XCTAssertEqual(finished.first?.kind, .noResponse, "\(finished.first?.text ?? "") calling \(calling) noise \(noise)")
                XCTAssertEqual(engine.samplesReceived, samples)
            }
        }
    }

    /// The remote vanishes mid-session and the line carries only noise (nobody hangs up). Noise holds spandsp's
    /// carrier detector up, so its T.30 timers stop; the engine's watchdog ends the session within bounded line
    /// time: 60 s while a T.30 frame is due, 300 s while image data may be arriving.
    func testRemoteVanishingIntoNoiseEndsTheSession() throws {
        let pages = Array(try Self.textPages(fine: false).prefix(2))
        for (survivor, cutAfter, bound) in [("receiver", 3.0, 75.0), ("receiver", 8.0, 320.0), ("receiver", 20.0, 320.0), ("sender", 8.0, 75.0), ("sender", 20.0, 75.0)] {
            let dir = try TemporaryDirectory("softfax")
            try FileManager.default.createDirectory(atPath: dir.path + "/tx", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: dir.path + "/rx", withIntermediateDirectories: true)
            let tx = try FaxEngine(options: options(calling: true), send: pages, workDirectory: dir.path + "/tx")
            let rx = try FaxEngine(options: options(calling: false), send: nil, workDirectory: dir.path + "/rx")
            let engine = survivor == "receiver" ? rx : tx
            var rng = SeededRandom(seed: 11)
            var noise = [Int16](repeating: 0, count: 160)
            var samples = 0
            while !engine.isFinished && samples < 8000 * 400 {
                let a = tx.transmit(count: 160), b = rx.transmit(count: 160)
                if Double(samples) < cutAfter * 8000 {
                    rx.receive(a); tx.receive(b)
                } else {
                    for i in noise.indices { noise[i] = Int16(truncatingIfNeeded: Int(rng.next() % 6001) - 3000) }
                    engine.receive(noise)
                }
                samples += 160
            }
            XCTAssertTrue(engine.isFinished, "\(survivor) after \(cutAfter) s")
            let results = engine.takeEvents().compactMap { if case .finished(let r) = $0 { r } else { nil } }
            XCTAssertEqual(results.count, 1)
            if let r = results.first {
                XCTAssertNotEqual(r.kind, .success, "\(survivor) after \(cutAfter) s: \(r.text)")
                XCTAssertFalse(r.text.isEmpty)
            }
            XCTAssertLessThanOrEqual(Double(samples) / 8000, cutAfter + bound, "\(survivor) after \(cutAfter) s")
        }
    }

    /// The line drops after the first of two pages: the first page is still delivered, the result says why.
    func testLineDisconnectedMidSessionReportsPagesSoFar() throws {
        let dir = try TemporaryDirectory("softfax")
        let pages = Array(try Self.textPages(fine: false).prefix(2))
        try FileManager.default.createDirectory(atPath: dir.path + "/tx", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.path + "/rx", withIntermediateDirectories: true)
        let tx = try FaxEngine(options: options(calling: true), send: pages, workDirectory: dir.path + "/tx")
        let rx = try FaxEngine(options: options(calling: false), send: nil, workDirectory: dir.path + "/rx")
        var rxEvents: [FaxEngineEvent] = [], txEvents: [FaxEngineEvent] = []
        var samples = 0
        while reports(rxEvents).isEmpty && samples < 8000 * 300 {
            let a = tx.transmit(count: 160), b = rx.transmit(count: 160)
            rx.receive(a); tx.receive(b)
            rxEvents += rx.takeEvents(); txEvents += tx.takeEvents()
            samples += 160
        }
        // Let the second page start, then cut the line.
        for _ in 0..<(8000 * 8 / 160) {
            let a = tx.transmit(count: 160), b = rx.transmit(count: 160)
            rx.receive(a); tx.receive(b)
        }
        rx.lineDisconnected()
        tx.lineDisconnected()
        rxEvents += rx.takeEvents(); txEvents += tx.takeEvents()
        XCTAssertTrue(rx.isFinished && tx.isFinished)
        let received = rxEvents.compactMap { if case .page(_, let page?) = $0 { page } else { nil } }
        XCTAssertEqual(received, [pages[0]])
        guard case .finished(let result)? = rxEvents.last else { return XCTFail("no .finished last: \(rxEvents)") }
        XCTAssertEqual(result.kind, .remoteDisconnected, result.text)
        XCTAssertEqual(result.pages, 1)
        guard case .finished(let sent)? = txEvents.last else { return XCTFail("sender: no .finished") }
        XCTAssertEqual(sent.kind, .remoteDisconnected, sent.text)
        // Disconnecting again is harmless and yields nothing more.
        rx.lineDisconnected()
        XCTAssertEqual(rx.takeEvents(), [])
    }

    /// A receiver that only takes normal resolution and a sender with fine pages only: incompatible.
    func testFinePagesToANormalOnlyReceiverAreIncompatible() throws {
        let dir = try TemporaryDirectory("softfax")
        var receiver = options(calling: false)
        receiver.acceptFine = false
        let outcome = try session([try Self.textPages(fine: true)[0]], receiver: receiver, in: dir)
        XCTAssertEqual(outcome.sender.kind, .incompatible, outcome.sender.text)
        XCTAssertEqual(outcome.receivedPages, [])
    }

    /// A remote sending an endless page: reception stops at the row limit instead of growing without bound.
    func testOverlongPageIsRefused() throws {
        let dir = try TemporaryDirectory("softfax")
        let text = try Self.textPages(fine: true)[0]
        let rows = 3 * text.height + 200
        var bits = [UInt8](repeating: 0, count: text.rowBytes * rows)
        for copy in 0..<3 { for i in text.bitmap.indices { bits[copy * text.bitmap.count + i] = text.bitmap[i] } }
        let long = FaxPage(bitmap: bits, width: text.width, height: rows, resolution: .fine)
        for ecm in [false, true] {
            var receiver = options(calling: false, ecm: ecm)
            receiver.maxPageRows = 5000
            let outcome = try session([long], ecm: ecm, receiver: receiver, in: dir)
            XCTAssertEqual(outcome.receiver.kind, .pageRefused, outcome.receiver.text)
            XCTAssertTrue(outcome.receiver.text.contains("5000 rows"), outcome.receiver.text)
            XCTAssertEqual(outcome.receivedPages, [])
            XCTAssertEqual(reports(outcome.receiverEvents), [], "a refused page is not reported as received (ECM \(ecm))")
            XCTAssertEqual(outcome.receiver.pages, 0)
            XCTAssertNotEqual(outcome.sender.kind, .success)
        }
    }

    /// A page count limit: exactly the limit is fine, one more announced page ends the session after the limit.
    func testPageCountLimit() throws {
        let pages = Array(try Self.textPages(fine: false).prefix(2))
        for limit in [2, 1] {
            let dir = try TemporaryDirectory("softfax")
            var receiver = options(calling: false)
            receiver.maxPages = limit
            let outcome = try session(pages, receiver: receiver, in: dir)
            XCTAssertEqual(outcome.receivedPages, Array(pages.prefix(limit)))
            if limit == 2 {
                XCTAssertEqual(outcome.receiver.kind, .success, outcome.receiver.text)
            } else {
                XCTAssertEqual(outcome.receiver.kind, .pageRefused, outcome.receiver.text)
                XCTAssertEqual(outcome.receiver.pages, 1)
                XCTAssertTrue(outcome.receiver.text.contains("more than 1 page"), outcome.receiver.text)
                XCTAssertNotEqual(outcome.sender.kind, .success)
            }
        }
    }

    // MARK: - Untrusted text

    func testIdentsAreCleanedAndCapped() {
        XCTAssertEqual(FaxEngine.clean("  +49\u{7}\u{1B}[2J 30\n123\u{0}4 ", limit: 20), "+49[2J 301234")
        XCTAssertEqual(FaxEngine.clean(String(repeating: "9", count: 100), limit: 20).count, 20)
        XCTAssertEqual(FaxEngine.clean("Grüße ☎", limit: 20), "Gre")
    }

    func testResultKindsForT30Codes() {
        XCTAssertEqual(FaxEngine.kind(0), .success)
        XCTAssertEqual(FaxEngine.kind(T30_ERR_CANNOT_TRAIN), .trainingFailed)
        XCTAssertEqual(FaxEngine.kind(T30_ERR_T1_EXPIRED), .noResponse)
        XCTAssertEqual(FaxEngine.kind(T30_ERR_RETRYDCN), .pageRefused)
        XCTAssertEqual(FaxEngine.kind(T30_ERR_INCOMPATIBLE), .incompatible)
        XCTAssertEqual(FaxEngine.kind(T30_ERR_CALLDROPPED), .remoteDisconnected)
        XCTAssertEqual(FaxEngine.kind(T30_ERR_FILEERROR), .local)
        XCTAssertTrue(FaxEngine.describe(T30_ERR_CANNOT_TRAIN).contains("train"))
    }

}

