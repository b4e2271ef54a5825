import Foundation
import TestSupport
import VoiceAudio
import XCTest

/// The audio building blocks, cross-checked against sox (an independent G.711 and WAV implementation).
final class VoiceAudioTests: XCTestCase {
    func testBitReversal() {
        XCTAssertEqual(G711.reverseBits(0xD5), 0xAB, "A-law silence travels as 0xAB")
        XCTAssertEqual(G711.reverseBits(0x01), 0x80)
        XCTAssertEqual(G711.reverseBits(0xF0), 0x0F)
        for b in 0...255 { XCTAssertEqual(G711.reverseBits(G711.reverseBits(UInt8(b))), UInt8(b)) }
        XCTAssertEqual(G711.lineBytes([0]), [0xAB])
    }

    /// Our A-law encoder and decoder agree with sox on every sample value, both directions.
    /// The line tables (used per sample by the software fax modem) equal the segment code for every input.
    func testLineTablesMatchTheSegmentCode() {
        for byte in 0...255 { XCTAssertEqual(G711.lineSample(UInt8(byte)), G711.linear(G711.reverseBits(UInt8(byte)))) }
        for sample in Int(Int16.min)...Int(Int16.max) where sample % 3 == 0 || sample < -32760 || sample > 32760 {
            XCTAssertEqual(G711.lineByte(Int16(sample)), G711.reverseBits(G711.alaw(Int16(sample))), "\(sample)")
        }
    }

    func testALawMatchesSox() throws {
        let dir = try TemporaryDirectory("alaw")
        // Every 16-bit value in steps of 7, plus the extremes.
        let pcm: [Int16] = stride(from: Int(Int16.min), through: Int(Int16.max), by: 7).map { Int16($0) } + [Int16.max, -1, 0, 1]
        let raw = pcm.flatMap { withUnsafeBytes(of: $0.littleEndian) { Array($0) } }
        try Data(raw).write(to: URL(fileURLWithPath: dir.path + "/in.s16"))
        // -D: sox dithers by default when it reduces precision (16 → 13 bits); compare the plain codec.
        try runTool("sox", ["-D", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", dir.path + "/in.s16",
                            "-t", "raw", "-e", "a-law", dir.path + "/out.al"])
        let soxALaw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.path + "/out.al")))
        XCTAssertEqual(soxALaw.count, pcm.count)
        let ours = pcm.map(G711.alaw)
        // sox rounds its input to 13 bits where the ITU reference (ours) truncates: a few samples right at a
        // quantization boundary land on the neighbouring code. Everything else must be identical.
        let mismatches = zip(ours, soxALaw).filter { $0 != $1 }
        XCTAssertLessThan(Double(mismatches.count) / Double(pcm.count), 0.02, "encoder differs from sox on \(mismatches.count) of \(pcm.count) samples")
        // Neighbours = adjacent among the 256 output levels sorted by value (−8 and +8 are neighbours too).
        let order = (0...255).map { UInt8($0) }.sorted { G711.linear($0) < G711.linear($1) }
        let rank = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
        for (a, b) in mismatches {
            XCTAssertEqual(abs(rank[a]! - rank[b]!), 1, "code 0x\(String(a, radix: 16)) vs sox 0x\(String(b, radix: 16)) are not neighbours")
        }
        // Right on the quantization levels both agree exactly: encode our own decoded values.
        let levels = (0...255).map { G711.linear(UInt8($0)) }
        XCTAssertEqual(levels.map(G711.alaw), (0...255).map { UInt8($0) })

        // Decoding all 256 codes: sox's linear values are ours.
        try Data((0...255).map { UInt8($0) }).write(to: URL(fileURLWithPath: dir.path + "/all.al"))
        try runTool("sox", ["-t", "raw", "-r", "8000", "-e", "a-law", "-c", "1", dir.path + "/all.al",
                            "-t", "raw", "-e", "signed", "-b", "16", dir.path + "/all.s16"])
        let decoded = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/all.s16"))
        let soxLinear = stride(from: 0, to: decoded.count, by: 2).map { Int16(bitPattern: UInt16(decoded[$0]) | UInt16(decoded[$0 + 1]) << 8) }
        XCTAssertEqual(soxLinear, (0...255).map { G711.linear(UInt8($0)) })
        // Round trip through the line format keeps the A-law value exactly.
        for code in 0...255 {
            let line = G711.reverseBits(UInt8(code))
            XCTAssertEqual(G711.lineBytes(G711.pcm(fromLine: [line])), [line])
        }
    }

    func testWAVIsReadBySoxAndBack() throws {
        let dir = try TemporaryDirectory("wav")
        let tone = Tone.beep(frequency: 440, seconds: 0.5)
        try Data(WAV.encode(tone)).write(to: URL(fileURLWithPath: dir.path + "/t.wav"))
        let info = try runTool("sox", ["--i", dir.path + "/t.wav"]).stdoutText
        XCTAssertTrue(info.contains("Sample Rate    : 8000"), info)
        XCTAssertTrue(info.contains("Channels       : 1"), info)
        XCTAssertTrue(info.contains("16-bit Signed Integer PCM"), info)
        XCTAssertTrue(info.contains("= 4000 samples"), info)
        // sox writes a WAV; we read it back sample-exactly.
        try runTool("sox", [dir.path + "/t.wav", "-b", "16", dir.path + "/copy.wav"])
        let back = try WAV.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.path + "/copy.wav"))))
        XCTAssertEqual(back.sampleRate, 8000)
        XCTAssertEqual(back.samples, tone)
    }

    func testSilenceDetector() {
        var d = SilenceDetector()
        d.feed(line: G711.lineBytes(Tone.beep(seconds: 1)))
        XCTAssertEqual(d.trailingSilence, 0, accuracy: 0.03)
        // Quiet line noise (±40) is silence; 2 s of it.
        d.feed(line: G711.lineBytes((0..<16000).map { Int16(($0 * 7919) % 81 - 40) }))
        XCTAssertEqual(d.trailingSilence, 2, accuracy: 0.03)
        // Speech again resets it.
        d.feed(line: G711.lineBytes(Tone.beep(seconds: 0.1)))
        XCTAssertLessThan(d.trailingSilence, 0.03)
        XCTAssertEqual(d.samplesSeen, 8000 + 16000 + 800)
    }

    func testBeepFrequencyBySox() throws {
        let dir = try TemporaryDirectory("beep")
        let pcm = G711.pcm(fromLine: Tone.greetingBeep)
        try Data(WAV.encode(pcm)).write(to: URL(fileURLWithPath: dir.path + "/b.wav"))
        // sox stat's "Rough frequency" of the beep part.
        let stat = try runTool("sox", [dir.path + "/b.wav", "-n", "trim", "0.25", "0.3", "stat"], check: false).stderrText
        let freq = stat.split(separator: "\n").first { $0.hasPrefix("Rough   frequency") }.flatMap { $0.split(separator: ":").last }
            .flatMap { Double($0.trimmingCharacters(in: .whitespaces)) }
        XCTAssertEqual(try XCTUnwrap(freq, stat), 1000, accuracy: 30)
    }

    /// An upload in stereo at 44.1 kHz, as MP3 and as WAV, becomes 8 kHz mono line audio with the same content.
    func testGreetingConversionFromStereoMP3AndWAV() throws {
        let dir = try TemporaryDirectory("greet")
        try runTool("espeak-ng", ["-v", "en", "-w", dir.path + "/speech.wav", "Please leave a message after the tone."])
        try runTool("sox", [dir.path + "/speech.wav", "-r", "44100", "-c", "2", dir.path + "/stereo.wav"])
        XCTAssertTrue(try runTool("sox", ["--i", dir.path + "/stereo.wav"]).stdoutText.contains("Channels       : 2"))
        try runTool("lame", ["--quiet", "-b", "128", dir.path + "/stereo.wav", dir.path + "/stereo.mp3"])
        let reference = try runTool("sox", ["--i", "-D", dir.path + "/speech.wav"]).stdoutText
        let seconds = try XCTUnwrap(Double(reference.trimmingCharacters(in: .whitespacesAndNewlines)))
        for input in ["stereo.wav", "stereo.mp3"] {
            let line = try GreetingConverter.convert(dir.path + "/" + input)
            let pcm = G711.pcm(fromLine: line)
            try Data(WAV.encode(pcm)).write(to: URL(fileURLWithPath: dir.path + "/\(input).8k.wav"))
            let info = try runTool("sox", ["--i", dir.path + "/\(input).8k.wav"]).stdoutText
            XCTAssertTrue(info.contains("Sample Rate    : 8000") && info.contains("Channels       : 1"), info)
            // MP3 adds encoder delay/padding (~50 ms); the length stays within 0.1 s.
            XCTAssertEqual(Double(pcm.count) / 8000, seconds, accuracy: 0.1, input)
            // Loud enough: normalized to −3 dBFS.
            let peak = pcm.map { abs(Int($0)) }.max() ?? 0
            XCTAssertGreaterThan(peak, 16000, input)
            // Same speech: correlation with sox's own downmix of the source.
            try runTool("sox", [dir.path + "/speech.wav", "-r", "8000", "-c", "1", "-b", "16", dir.path + "/ref.wav"])
            let ref = try WAV.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir.path + "/ref.wav")))).samples
            let best = (0..<600).map { AudioCompare.correlation(Array(pcm.dropFirst($0)), ref) }.max() ?? 0
            XCTAssertGreaterThan(best, 0.9, input)
        }
        XCTAssertThrowsError(try GreetingConverter.convert(dir.path + "/missing.wav"))
        try Data("not audio".utf8).write(to: URL(fileURLWithPath: dir.path + "/bad.wav"))
        XCTAssertThrowsError(try GreetingConverter.convert(dir.path + "/bad.wav"))
    }

    func testMP3EncodingIsDecodableBySox() throws {
        let dir = try TemporaryDirectory("mp3")
        let tone = Tone.beep(frequency: 600, seconds: 2)
        let mp3 = try MP3Encoder.encode(tone)
        XCTAssertLessThan(mp3.count, WAV.encode(tone).count / 5, "MP3 is much smaller than WAV")
        try Data(mp3).write(to: URL(fileURLWithPath: dir.path + "/t.mp3"))
        let d = try runTool("sox", ["--i", "-D", dir.path + "/t.mp3"]).stdoutText
        // An MP3 frame at 8 kHz is 576 samples (72 ms); encoder delay and padding add up to about three of them.
        XCTAssertEqual(try XCTUnwrap(Double(d.trimmingCharacters(in: .whitespacesAndNewlines))), 2, accuracy: 0.25)
    }

    func testDefaultGreetingsAreShipped() throws {
        for language in ["de", "en"] {
            let g = try XCTUnwrap(DefaultGreeting.line(language: language), "no default greeting for \(language) in \(DefaultGreeting.directories())")
            XCTAssertGreaterThan(g.count, 8000 * 3, "at least 3 s")
            XCTAssertLessThan(g.count, 100_000)
        }
    }
}
