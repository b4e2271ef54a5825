// The tone detector against the real thing: the CNG and CED that spandsp's own fax engines emit, through
// the bit-reversed A-law of the B-channel, and against what must not trigger it.
import FaxDocument
import Foundation
import SoftFax
import TestSupport
import VoiceAudio
import XCTest

final class ConnectToneDetectorTests: XCTestCase {
    /// The first `seconds` of what a fax engine sends, through A-law as a B-channel carries it.
    func engineAudio(calling: Bool, seconds: Double) throws -> [Int16] {
        let dir = try TemporaryDirectory("softfax-tone")
        let page = FaxPage(bitmap: [UInt8](repeating: 0, count: 216 * 10), width: 1728, height: 10, resolution: .normal)
        let engine = try FaxEngine(options: FaxEngineOptions(calling: calling, localIdent: "1"), send: calling ? [page] : nil,
                                   workDirectory: dir.path)
        var out: [Int16] = []
        for _ in 0..<Int(seconds * 50) {
            out += engine.transmit(count: 160).map { G711.lineSample(G711.lineByte($0)) }
            engine.receive([Int16](repeating: 0, count: 160))
        }
        return out
    }

    func detects(_ tone: ConnectToneDetector.Tone, _ audio: [Int16]) -> Bool {
        let detector = ConnectToneDetector(tone)
        var heard = false
        // 20 ms blocks, as they come from the line.
        for start in stride(from: 0, to: audio.count, by: 160) {
            heard = detector.feed(Array(audio[start..<min(start + 160, audio.count)]))
        }
        return heard
    }

    func sine(_ hz: Double, seconds: Double, amplitude: Double = 8000) -> [Int16] {
        (0..<Int(seconds * 8000)).map { Int16(amplitude * sin(2 * .pi * hz * Double($0) / 8000)) }
    }

    func speech() throws -> [Int16] {
        let url = packageRoot.appendingPathComponent("Sources/VoiceAudio/Greetings/greeting-en.alaw")
        return try [UInt8](Data(contentsOf: url)).map(G711.linear)
    }

    func testCNGFromACallingFaxIsDetected() throws {
        let cng = try engineAudio(calling: true, seconds: 4)
        XCTAssertTrue(detects(.cng, cng))
        // CNG is not an answer tone.
        XCTAssertFalse(detects(.ced, cng))
    }

    func testCEDFromAnAnsweringFaxIsDetected() throws {
        let ced = try engineAudio(calling: false, seconds: 4)
        XCTAssertTrue(detects(.ced, ced))
        XCTAssertFalse(detects(.cng, ced))
    }

    func testSpeechSilenceAndOtherTonesAreNotFaxTones() throws {
        let voice = try speech()
        XCTAssertGreaterThan(voice.count, 8000)
        for (name, audio) in [("speech", voice), ("silence", [Int16](repeating: 0, count: 8000 * 4)),
                              ("1 kHz", sine(1000, seconds: 4)), ("dial tone 425 Hz", sine(425, seconds: 4))] {
            XCTAssertFalse(detects(.cng, audio), name)
            XCTAssertFalse(detects(.ced, audio), name)
        }
    }

    /// Once heard, stays heard (the caller may poll after the tone ended).
    func testDetectionIsSticky() throws {
        let detector = ConnectToneDetector(.cng)
        let cng = try engineAudio(calling: true, seconds: 4)
        _ = detector.feed(cng)
        XCTAssertTrue(detector.feed([Int16](repeating: 0, count: 8000)))
    }

    /// spandsp's own CNG detector fires on a whistle wavering around 1100 Hz; ours checks that the tone was
    /// steady, as a fax machine's is. A real CNG after such a whistle is still heard (the detector restarts),
    /// also under noise.
    func testWaveringWhistleIsNotCNGButARealCNGAfterItIs() throws {
        func whistle(seconds: Double, vibrato: Double) -> [Int16] {
            var phase = 0.0
            return (0..<Int(seconds * 8000)).map { i in
                phase += 2 * .pi * (1100 + vibrato * sin(2 * .pi * 5 * Double(i) / 8000)) / 8000
                return Int16(6000 * sin(phase))
            }
        }
        let pause = [Int16](repeating: 0, count: 8000)
        XCTAssertFalse(detects(.cng, whistle(seconds: 1.5, vibrato: 60) + pause))
        XCTAssertFalse(detects(.cng, whistle(seconds: 1.5, vibrato: 100) + pause))
        // Steady within T.30's tolerance: indistinguishable from CNG, and accepted.
        XCTAssertTrue(detects(.cng, whistle(seconds: 1, vibrato: 0) + pause))

        var rng = SeededRandom(seed: 5)
        let cng = try engineAudio(calling: true, seconds: 4).map { sample -> Int16 in
            let noise = Int(rng.next() % 1001) - 500
            return Int16(clamping: Int(sample) + noise)
        }
        XCTAssertTrue(detects(.cng, whistle(seconds: 1.5, vibrato: 60) + pause + cng))
    }
}
