// The caller's fax machine is a stranger: everything it sends (ident, page sizes, audio) is attacker-controlled.
// These tests play that stranger against our FaxEngine in virtual time — with a raw spandsp instance where our
// own engine would clean what it sends — and check that what comes out is bounded and clean.
@testable import SoftFax
import CSpandsp
import FaxDocument
import Foundation
import TestSupport
import VoiceAudio
import XCTest

final class SoftFaxAttackTests: XCTestCase {
    func options(calling: Bool) -> FaxEngineOptions {
        FaxEngineOptions(calling: calling, localIdent: calling ? "+49 30 1234567" : "+49 40 7654321")
    }

    /// A small page with some black so it is not trivially compressible.
    func page(width: Int = FaxPage.standardWidth, height: Int = 200, seed: UInt64 = 1) -> FaxPage {
        let rowBytes = (width + 7) / 8
        var rng = SeededRandom(seed: seed)
        var bits = [UInt8](repeating: 0, count: rowBytes * height)
        for y in stride(from: 0, to: height, by: 3) {
            for x in 0..<rowBytes where rng.next() % 5 == 0 { bits[y * rowBytes + x] = UInt8(truncatingIfNeeded: rng.next()) }
        }
        return FaxPage(bitmap: bits, width: width, height: height, resolution: .fine)
    }

    /// Open descriptors of this process that point into `directory` (deleted files included): other tests
    /// running at the same time open their own files, so only ours are counted.
    static func openFileDescriptors(into directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd)).flatMap { $0.hasPrefix(directory) ? $0 : nil }
        }
    }

    func results(_ events: [FaxEngineEvent]) -> [FaxEngineResult] {
        events.compactMap { if case .finished(let r) = $0 { r } else { nil } }
    }

    // MARK: - Remote ident

    /// A sender spandsp instance driven directly, so its TSI carries whatever bytes we set (our engine would
    /// clean them before sending).
    final class RawSender {
        let fax: OpaquePointer
        init(tiff: String, ident: [UInt8]) {
            fax = fax_init(nil, 1)!
            let t30 = fax_get_t30_state(fax)!
            span_log_set_level(fax_get_logging_state(fax), Int32(SPAN_LOG_NONE))
            span_log_set_level(t30_get_logging_state(t30), Int32(SPAN_LOG_NONE))
            fax_set_transmit_on_idle(fax, 1)
            let cString = (ident + [0]).map { CChar(bitPattern: $0) }
            let rc = cString.withUnsafeBufferPointer { t30_set_tx_ident(t30, $0.baseAddress) }
            precondition(rc == 0, "spandsp refused the ident")
            t30_set_tx_file(t30, tiff, -1, -1)
        }
        deinit { fax_free(fax) }
        func transmit() -> [Int16] {
            var out = [Int16](repeating: 0, count: 160)
            _ = out.withUnsafeMutableBufferPointer { fax_tx(fax, $0.baseAddress!, 160) }
            return out
        }
        func receive(_ samples: [Int16]) {
            var copy = samples
            _ = copy.withUnsafeMutableBufferPointer { fax_rx(fax, $0.baseAddress!, Int32($0.count)) }
        }
    }

    /// TSI with escape sequences, CR/LF, DEL, a right-to-left override (UTF-8 bytes) and bytes above 0x7F, the full
    /// 20 bytes: the receiving engine reports printable ASCII only, in the negotiated event and in its result.
    func testHostileRemoteIdentArrivesCleaned() throws {
        let dir = try TemporaryDirectory("softfax-attack")
        let tiff = dir.path + "/tx.tif"
        try TIFFWriter.write([page(height: 50)], to: tiff, compression: .g3)
        // "\e[2J" "\r\n" DEL RLO "evil" 0xFF BEL "12" TAB "A": 20 bytes.
        let ident: [UInt8] = [0x1B, 0x5B, 0x32, 0x4A, 0x0D, 0x0A, 0x7F, 0xE2, 0x80, 0xAE, 0x65, 0x76, 0x69, 0x6C, 0xFF, 0x07, 0x31, 0x32, 0x09, 0x41]
        XCTAssertEqual(ident.count, 20)
        let sender = RawSender(tiff: tiff, ident: ident)
        try FileManager.default.createDirectory(atPath: dir.path + "/rx", withIntermediateDirectories: true)
        let rx = try FaxEngine(options: options(calling: false), send: nil, workDirectory: dir.path + "/rx")
        var events: [FaxEngineEvent] = []
        var samples = 0
        while !rx.isFinished && samples < 8000 * 120 {
            let a = sender.transmit(), b = rx.transmit(count: 160)
            rx.receive(a); sender.receive(b)
            events += rx.takeEvents()
            samples += 160
        }
        let negotiated = events.compactMap { if case .negotiated(let ident, _, _, _, _) = $0 { ident } else { nil } }
        XCTAssertEqual(negotiated.count, 1, "the page went across")
        let result = try XCTUnwrap(results(events).first)
        XCTAssertEqual(result.kind, .success, result.text)
        for text in negotiated + [result.remoteIdent] {
            let t = try XCTUnwrap(text)
            XCTAssertTrue(t.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) }, "not printable ASCII: \(t.debugDescription)")
            XCTAssertLessThanOrEqual(t.count, 20)
            // What survives is the printable part, in order (spandsp reverses the bytes on the line and back).
            XCTAssertEqual(t, "[2Jevil12A", t.debugDescription)
        }
    }

    // MARK: - Page sizes

    /// B4 (2048 pixels) and A3 (2432 pixels) pages: announced as accepted, so they must arrive pixel-identical —
    /// and survive the spool's SFF format unchanged.
    func testWidePagesArriveExactlyOrNotAtAll() throws {
        for width in [2048, 2432] {
            let dir = try TemporaryDirectory("softfax-attack")
            let sent = page(width: width, height: 300, seed: UInt64(width))
            for ecm in [true, false] {
                var sender = options(calling: true), receiver = options(calling: false)
                sender.ecm = ecm; receiver.ecm = ecm
                let outcome = try BackToBack.run(pages: [sent], sender: sender, receiver: receiver, workDirectory: dir.path)
                XCTAssertEqual(outcome.receiver.kind, .success, "width \(width) ecm \(ecm): \(outcome.receiver.text)")
                XCTAssertEqual(outcome.receivedPages.count, 1)
                if let got = outcome.receivedPages.first {
                    XCTAssertEqual(got.width, width)
                    XCTAssertTrue(got == sent, "width \(width) ecm \(ecm): pixels differ")
                    let sff = SFFWriter.documentHeader() + SFFWriter.pageBytes(got) + SFFWriter.documentEnd()
                    let back = try SFFReader.read(sff).pages
                    XCTAssertEqual(back.count, 1)
                    XCTAssertEqual(back.first?.width, width)
                    XCTAssertTrue(back.first?.bitmap == got.bitmap, "width \(width): SFF round trip differs")
                }
            }
        }
    }

    // MARK: - Audio garbage

    /// Full-scale random audio in odd block sizes (1, 7, 4000 … samples), then more after the end: the engine
    /// ends with a reason within bounded line time and stays quiet afterwards.
    func testRandomAudioInOddBlocksEndsWithAReason() throws {
        let dir = try TemporaryDirectory("softfax-attack")
        for calling in [false, true] {
            let engine = try FaxEngine(options: options(calling: calling), send: calling ? [page(height: 20)] : nil,
                                       workDirectory: dir.path)
            var rng = SeededRandom(seed: calling ? 7 : 8)
            let sizes = [1, 4000, 7, 160, 2048, 3, 333]
            var samples = 0, i = 0
            while !engine.isFinished && samples < 8000 * 400 {
                let n = sizes[i % sizes.count]; i += 1
                let bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                engine.receive(bytes.map(G711.lineSample))
                XCTAssertEqual(engine.transmit(count: n).count, n)
                samples += n
            }
            XCTAssertTrue(engine.isFinished, "calling \(calling)")
            XCTAssertLessThanOrEqual(samples, 8000 * 130, "calling \(calling): T1 or the watchdog ends it")
            let r = try XCTUnwrap(results(engine.takeEvents()).first, "calling \(calling)")
            XCTAssertEqual(r.kind, .noResponse, r.text)
            XCTAssertFalse(r.text.isEmpty)
            // Blocks after the end: no event, no crash, silence out.
            engine.receive([Int16](repeating: 12345, count: 4000))
            engine.receiveLost(count: 160)
            engine.lineDisconnected()
            XCTAssertEqual(engine.takeEvents(), [])
            XCTAssertEqual(engine.transmit(count: 0), [])
        }
    }

    // MARK: - C bridge: lifetimes and handles

    /// 50 whole sessions, then 20 abandoned mid-session (the owner drops the engine during phase B/C, as a
    /// transport does when a call is torn down): no file descriptor stays open (libtiff handles are closed on
    /// every path), no callback reaches a freed engine, and each work directory holds only the engine's two files.
    func testManySessionsLeakNoFileDescriptors() throws {
        let dir = try TemporaryDirectory("softfax-attack")
        let pages = [page(height: 60)]
        var sawOpen = false
        for n in 0..<50 {
            let work = dir.path + "/s\(n)"
            let outcome = try BackToBack.run(pages: pages, sender: options(calling: true), receiver: options(calling: false),
                                             workDirectory: work)
            XCTAssertEqual(outcome.receiver.kind, .success, outcome.receiver.text)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work + "/receiver"), ["softfax-rx.tif"])
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work + "/sender"), ["softfax-tx.tif"])
        }
        for n in 0..<20 {
            let work = dir.path + "/a\(n)"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            var tx: FaxEngine? = try FaxEngine(options: options(calling: true), send: pages, workDirectory: work)
            try FileManager.default.createDirectory(atPath: work + "/rx", withIntermediateDirectories: true)
            var rx: FaxEngine? = try FaxEngine(options: options(calling: false), send: nil, workDirectory: work + "/rx")
            // Cut at different points: CNG/CED, phase B, training, image data.
            for _ in 0..<(50 * (1 + n % 10)) {
                let a = tx!.transmit(count: 160), b = rx!.transmit(count: 160)
                rx!.receive(a); tx!.receive(b)
            }
            // The probe sees spandsp's TIFF handles while a session runs (so its empty answer below means something).
            if !(try Self.openFileDescriptors(into: work)).isEmpty { sawOpen = true }
            if n % 2 == 0 { rx = nil; tx = nil } else { tx = nil; rx = nil }
            XCTAssertNil(rx); XCTAssertNil(tx)
        }
        XCTAssertTrue(sawOpen)
        XCTAssertEqual(try Self.openFileDescriptors(into: dir.path), [], "file descriptors leaked over 70 sessions")
    }

    // MARK: - Voice callers

    /// A person whistling near 1100 Hz on a voice call: spandsp's CNG detector wants about half a second of a
    /// tone near 1100 Hz. A short chirp or another pitch does not trigger it; a held whistle does — which is
    /// why a switch to fax that brings no fax must still leave a clear journal row.
    func testWhistleNearCNG() {
        func tone(_ hz: Double, seconds: Double, vibrato: Double = 0) -> [Int16] {
            var phase = 0.0
            return (0..<Int(seconds * 8000)).map { i in
                let f = hz + vibrato * sin(2 * .pi * 5 * Double(i) / 8000)
                phase += 2 * .pi * f / 8000
                return Int16(6000 * sin(phase))
            }
        }
        func detects(_ audio: [Int16]) -> Bool {
            let d = ConnectToneDetector(.cng)
            var heard = false
            for s in stride(from: 0, to: audio.count, by: 160) { heard = d.feed(Array(audio[s..<min(s + 160, audio.count)])) }
            return heard
        }
        let silence = [Int16](repeating: 0, count: 8000)
        XCTAssertFalse(detects(tone(1100, seconds: 0.2) + silence), "a 200 ms chirp is not CNG")
        XCTAssertFalse(detects(tone(1300, seconds: 2) + silence), "1300 Hz is not CNG")
        // Documented, not desired: a steady whistle at 1100 Hz for a second is CNG to spandsp. Nothing in one
        // tone tells a whistle from a fax machine. (A whistle wavering by ±60 Hz is borderline: not asserted.)
        XCTAssertTrue(detects(tone(1100, seconds: 1.0) + silence), "a steady 1100 Hz second is CNG to spandsp")
    }
}
