import CapiProtocol
import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import VoiceAudio
import XCTest

/// Voice calls through the real libcapi20 into `faxgate serve`, mailed through the real Postfix and Dovecot.
/// The simulated line runs 4× faster than real time; the gateway counts audio bytes, so it hears the same call.
final class VoicemailEndToEndTests: XCTestCase {
    /// Line bytes of a WAV/any file, as sox converts it (8 kHz mono A-law, bit-reversed for the line).
    static func lineAudio(_ file: String, in dir: TemporaryDirectory) throws -> [UInt8] {
        let out = dir.path + "/\(UUID().uuidString.prefix(6)).al"
        try runTool("sox", [file, "-t", "al", "-r", "8000", "-c", "1", out])
        return G711.reversed([UInt8](try Data(contentsOf: URL(fileURLWithPath: out))))
    }

    /// Best correlation of `b` against `a` shifted by up to `maxShift` samples either way.
    static func alignedCorrelation(_ a: [Int16], _ b: [Int16], maxShift: Int = 800) -> (Double, Int) {
        var best = (-1.0, 0)
        for shift in stride(from: -maxShift, through: maxShift, by: 1) {
            let x = shift >= 0 ? Array(a.dropFirst(shift)) : a
            let y = shift < 0 ? Array(b.dropFirst(-shift)) : b
            let c = AudioCompare.correlation(x, y)
            if c > best.0 { best = (c, shift) }
        }
        return best
    }

    func testVoicemail_recordingMailed_greetingPlayed_endings_andFaxToneSwitch() async throws {
        let work = try TemporaryDirectory("vm-work")
        // The greeting an admin uploads: espeak-ng speech as a stereo 44.1 kHz WAV.
        try runTool("espeak-ng", ["-v", "de", "-w", work.path + "/g.wav", "Hallo, hier ist der Anrufbeantworter von Faxgate. Bitte sprechen Sie nach dem Signalton."])
        let greetingFile = work.path + "/greeting-stereo.wav"
        try runTool("sox", [work.path + "/g.wav", "-r", "44100", "-c", "2", greetingFile])
        XCTAssertTrue(try runTool("sox", ["--i", greetingFile]).stdoutText.contains("Sample Rate    : 44100"))
        try "Nummer,Name\n+49 30 1112223,Erika Mustermann\n".write(toFile: work.path + "/book.csv", atomically: true, encoding: .utf8)
        // The caller's message.
        try runTool("espeak-ng", ["-v", "de", "-w", work.path + "/speech.wav", "Bitte rufen Sie mich zurück, es geht um den Termin am Montag."])
        let speech = try Self.lineAudio(work.path + "/speech.wav", in: work)

        let h = try GatewayHarness(.init(voicemail: """
            greeting: \(greetingFile)
            max_seconds: 6
            silence_seconds: 2
            min_seconds: 1
            compressed: mp3
            address_book: \(work.path)/book.csv
            """, laborVoicemail: """
            max_seconds: 6
            privacy_notice_only: true
            """))
        defer { h.shutdown() }
        try await h.startGateway()
        do { try await scenarios(h, work: work, greetingFile: greetingFile, speech: speech) } catch {
            // The gateway's side of the story, for whoever reads the failure.
            print("--- gateway log (tail):\n" + String(h.gatewayLog().suffix(3000)))
            print("--- last CAPI messages seen by the simulator:\n" + h.simulator.messages.suffix(40).map(\.description).joined(separator: "\n"))
            throw error
        }
    }

    func scenarios(_ h: GatewayHarness, work: TemporaryDirectory, greetingFile: String, speech: [UInt8]) async throws {
        let speed = 4.0
        let greetingLine = try GreetingConverter.convert(greetingFile)
        let greetingSeconds = Double(greetingLine.count + Tone.greetingBeep.count) / 8000
        XCTAssertGreaterThan(greetingSeconds, 3.5, "the fax tone at 3 s must fall into the greeting")

        // A. The caller speaks after the beep and hangs up.
        let a = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(
            from: "+49301112223", to: "100", speech: speech, silenceAfterSpeech: 0.2, speed: speed))
        XCTAssertEqual(a.bProtocol, .transparentVoice, "answered with B protocols 1/1/0")
        XCTAssertTrue(a.alerted)
        XCTAssertTrue(a.dtmfListening, "FACILITY_REQ selector 1, start listening")
        XCTAssertEqual(a.endedBy, .caller)
        XCTAssertEqual(try XCTUnwrap(a.greetingEndedAt), greetingSeconds, accuracy: 0.2)

        // The greeting the line heard is the uploaded one, converted (plus our beep at the end).
        XCTAssertEqual(a.played.count, greetingLine.count + Tone.greetingBeep.count)
        let playedGreeting = G711.pcm(fromLine: Array(a.played.prefix(greetingLine.count)))
        try runTool("sox", [greetingFile, "-r", "8000", "-c", "1", "-b", "16", work.path + "/greet-ref.wav"])
        let reference = try WAV.decode([UInt8](try Data(contentsOf: URL(fileURLWithPath: work.path + "/greet-ref.wav")))).samples
        XCTAssertEqual(Double(playedGreeting.count) / 8000, Double(reference.count) / 8000, accuracy: 0.1)
        let (greetingCorrelation, _) = Self.alignedCorrelation(playedGreeting, reference, maxShift: 80)
        XCTAssertGreaterThan(greetingCorrelation, 0.95, "played greeting vs sox's conversion of the upload")
        XCTAssertEqual(Array(a.played.suffix(Tone.greetingBeep.count)), Tone.greetingBeep)

        let rowsA = try await h.waitForJournal { $0.contains { $0.kind == .voice && $0.state == .mailed } }
        let idA = try XCTUnwrap(rowsA.first { $0.kind == .voice }?.id)

        // B. '#' 1.5 s into the message ends the recording.
        let b = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(
            from: "+49301112223", to: "100", speech: speech, dtmf: [.init(at: greetingSeconds + 1.5, "#")], speed: speed))
        XCTAssertEqual(b.endedBy, .gateway)
        // C. Silence after 1.5 s of speech: cut 2 s later.
        let c = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(
            from: "+49301112223", to: "100", speech: Array(speech.prefix(12000)), silenceAfterSpeech: 20, speed: speed))
        XCTAssertEqual(c.endedBy, .gateway)
        // D. Talking on and on: cut at max_seconds (6 s).
        let d = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(
            from: "+49301112223", to: "100", speech: speech + speech + speech, speed: speed))
        XCTAssertEqual(d.endedBy, .gateway)
        // E. Hang-up during the greeting: journaled, not mailed.
        let e = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(
            from: "+49301112223", to: "100", hangUpAt: 1.0, speed: speed))
        XCTAssertNil(e.greetingEndedAt)
        // F. A fax machine: CNG ('X') after 3 s of greeting → fax protocols, a fax mail, no voicemail.
        let sff = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true).sff
        let f = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(
            from: "+49305556667", to: "100", silenceAfterSpeech: 30, dtmf: [.init(at: 3.0, "X")], speed: speed,
            faxAfterSwitch: SimulatedFaxCall(from: "+49305556667", to: "100", document: sff)))
        XCTAssertEqual(f.endedBy, .switchedToFax)
        XCTAssertEqual(f.selectedBProtocol?.b1, 4); XCTAssertEqual(f.selectedBProtocol?.b3, 4)
        XCTAssertEqual(f.selectedBProtocol?.faxConfiguration?.stationID, "+49 30 9999100")
        XCTAssertEqual(f.fax?.bytesSent, sff.count)
        XCTAssertLessThan(Double(f.played.count) / 8000, 3.0 + 1.0, "greeting stopped at the fax tone")

        let rows = try await h.waitForJournal { rows in
            rows.count == 6 && rows.allSatisfy { [.mailed, .rejected].contains($0.state) }
        }
        let byID = Dictionary(uniqueKeysWithValues: rows.map { ($0.id!, $0) })
        let ids = rows.map { $0.id! }.sorted()
        XCTAssertEqual(ids.first, idA)
        let (rB, rC, rD, rE, rF) = (byID[ids[1]]!, byID[ids[2]]!, byID[ids[3]]!, byID[ids[4]]!, byID[ids[5]]!)
        XCTAssertTrue(rB.reasonText?.contains("#") == true, "\(rB)")
        XCTAssertTrue(rC.reasonText?.contains("Stille") == true, "\(rC)")
        XCTAssertTrue(rD.reasonText?.contains("maximale Länge") == true, "\(rD)")
        XCTAssertEqual(rE.kind, .voice); XCTAssertEqual(rE.state, .rejected); XCTAssertEqual(rE.outcome, .failed)
        XCTAssertTrue(rE.detail?.contains("not mailed") == true, "\(rE)")
        XCTAssertEqual(rF.kind, .fax); XCTAssertEqual(rF.state, .mailed); XCTAssertEqual(rF.pages, 3)

        // Five mails: four voicemails and one fax.
        let mails = try h.mail.fetch(user: h.mail.user, expect: 5, timeoutSeconds: 40).map { try ParsedMail($0, in: work) }
        XCTAssertEqual(mails.count, 5)
        let byRef = Dictionary(uniqueKeysWithValues: mails.map { (Int64($0.headers["X-Faxgate-Reference"] ?? "") ?? -1, $0) })
        let faxMail = try XCTUnwrap(byRef[rF.id!])
        XCTAssertEqual(faxMail.headers["Message-Context"], "fax-message")
        XCTAssertTrue(faxMail.attachments.contains { $0.contentType == "application/pdf" })

        func recording(_ id: Int64) throws -> (mail: ParsedMail, pcm: [Int16], seconds: Double) {
            let m = try XCTUnwrap(byRef[id], "no mail for call \(id)")
            XCTAssertEqual(m.headers["Message-Context"], "voice-message")
            let wav = try XCTUnwrap(m.attachments.first { $0.contentType == "audio/wav" })
            // Decoded by sox, not by us.
            let raw = work.path + "/\(id).s16"
            try runTool("sox", [wav.path, "-t", "raw", "-e", "signed", "-b", "16", raw])
            let data = try Data(contentsOf: URL(fileURLWithPath: raw))
            let pcm = stride(from: 0, to: data.count - 1, by: 2).map { Int16(bitPattern: UInt16(data[$0]) | UInt16(data[$0 + 1]) << 8) }
            let info = try runTool("sox", ["--i", wav.path]).stdoutText
            XCTAssertTrue(info.contains("Sample Rate    : 8000") && info.contains("Channels       : 1") && info.contains("16-bit"), info)
            return (m, pcm, Double(pcm.count) / 8000)
        }

        // A: the mailed WAV is what the caller said.
        let recA = try recording(idA)
        let sentA = G711.pcm(fromLine: a.sentAfterGreeting)
        XCTAssertEqual(recA.seconds, Double(sentA.count) / 8000, accuracy: 0.1, "WAV length vs what the simulator sent")
        let (corrA, shiftA) = Self.alignedCorrelation(recA.pcm, sentA)
        XCTAssertGreaterThan(corrA, 0.99, "sample correlation")
        print("voicemail A: WAV \(recA.seconds) s, sent \(Double(sentA.count) / 8000) s, correlation \(corrA) at shift \(shiftA) samples; greeting correlation \(greetingCorrelation)")
        XCTAssertEqual(recA.mail.headers["Subject"], "Sprachnachricht von Erika Mustermann (+49301112223) an Empfang (0:0\(Int((recA.seconds).rounded())))")
        for expected in ["Erika Mustermann (+49301112223)", "100 (Empfang)", "Länge:", "Zeit:", "Anrufer hat aufgelegt"] {
            XCTAssertTrue(recA.mail.body.contains(expected), "body lacks '\(expected)':\n\(recA.mail.body)")
        }
        let mp3 = try XCTUnwrap(recA.mail.attachments.first { $0.contentType == "audio/mpeg" })
        let mp3Seconds = Double(try runTool("sox", ["--i", "-D", mp3.path]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        XCTAssertEqual(mp3Seconds, recA.seconds, accuracy: 0.3)

        // B: '#' after 1 s. C: 1.5 s speech + 2 s silence. D: exactly 6 s.
        XCTAssertEqual(try recording(rB.id!).seconds, 1.5, accuracy: 0.2)
        XCTAssertEqual(try recording(rC.id!).seconds, 1.5 + 2.0, accuracy: 0.2)
        XCTAssertEqual(try recording(rD.id!).seconds, 6.0, accuracy: 0.01)
        XCTAssertNil(byRef[rE.id!], "no mail for a hang-up during the greeting")

        // G. Privacy notice only: the mail says a message arrived and carries no audio; the recording stays on the gateway.
        let g = try await h.simulator.placeVoiceCall(SimulatedVoiceCall(from: "+49301112223", to: "200", speech: speech,
                                                                       silenceAfterSpeech: 0.2, speed: speed))
        XCTAssertEqual(g.endedBy, .caller)
        let notice = try ParsedMail(try XCTUnwrap(h.mail.fetch(user: h.mail.users[1], expect: 1, timeoutSeconds: 30).first), in: work)
        XCTAssertEqual(notice.headers["Message-Context"], "voice-message")
        XCTAssertTrue(notice.attachments.isEmpty, "privacy_notice_only mails no audio: \(notice.attachments.map(\.filename))")
        XCTAssertTrue(notice.body.contains("not sent by e-mail"), notice.body)
        let gRow = try await h.waitForJournal { $0.contains { $0.calledNumber == "200" && $0.state == .mailed } }
            .first { $0.calledNumber == "200" }!
        XCTAssertTrue(FileManager.default.fileExists(atPath: try XCTUnwrap(gRow.spoolPath)), "the recording is kept on the gateway")

        // The switched call's voice recording was removed; the fax SFF stays in the spool.
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(h.spool)/incoming/\(rF.id!).alaw"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(h.spool)/incoming/\(rF.id!).sff"))
    }
}
