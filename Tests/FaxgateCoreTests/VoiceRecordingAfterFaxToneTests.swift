import FaxDocument
import FaxgateCore
import Foundation
import Logging
import MailOut
import ServiceLifecycle
import SQLiteStorage
import Synchronization
import TestSupport
import XCTest

/// "Bad input loses nothing": a fax tone during voicemail (a fax machine's CNG, or a caller whistling ~1100 Hz)
/// switches the call to fax. The recording so far is kept until the fax has brought a page; with none it is
/// mailed as the voice message it was. Real SQLite, real pipeline and outbox; only the SMTP server is recorded.
final class VoiceRecordingAfterFaxToneTests: XCTestCase {
    var ext: Extension {
        var e = Extension(name: "Front", numbers: [NumberPattern("100")!], recipients: ["front@example.test"], formats: [.pdf],
                          language: .en, stationID: "+49 30 1")
        e.voicemail = Voicemail(VoicemailConfig())  // min 1 s, WAV attached, fax on tone
        return e
    }

    /// A gateway start: its own storage handle, outbox and pipeline on the same database and spool.
    func makeParts(_ dir: TemporaryDirectory, sender: RecordingSender) throws -> (SQLiteStorage, Outbox, ReceptionPipeline) {
        let storage = try SQLiteStorage(path: dir.path + "/db.sqlite")
        let outbox = try Outbox(directory: dir.path + "/outbox", sender: sender,
                                settings: .init(retryInitial: .milliseconds(100), retryMax: .milliseconds(200), giveUpAfter: .seconds(3600)),
                                logger: Logger(label: "test"))
        let pipeline = try ReceptionPipeline(
            settings: .init(spoolDirectory: dir.path, from: MailAddress("fax@example.test", displayName: "Fax"),
                            envelopeFrom: "fax@example.test", hostname: "gw.example.test"),
            directory: ExtensionDirectory(extensions: [ext], catchAllName: nil), storage: storage, outbox: outbox,
            logger: Logger(label: "test"))
        return (storage, outbox, pipeline)
    }

    /// Runs outbox and pipeline until `done`, then shuts them down gracefully.
    func runGateway(_ outbox: Outbox, _ pipeline: ReceptionPipeline, until done: @escaping () async -> Bool) async throws {
        await outbox.setResultHandler { envelope, delivered, detail in
            if let id = envelope.callID { await pipeline.mailResult(callID: id, delivered: delivered, detail: detail) }
        }
        let group = ServiceGroup(services: [outbox, pipeline], logger: Logger(label: "test"))
        let run = Task { try await group.run() }
        try await waitUntil(done)
        await group.triggerGracefulShutdown()
        try await run.value
    }

    /// What a transport does on a voicemail call that hears a fax tone: answer, record `audio`, switch, receive
    /// `sff` into the fallback spool, end. Returns the call id and both paths.
    func voiceCallSwitchedToFax(_ pipeline: ReceptionPipeline, audio: [UInt8], sff: [UInt8], pages: Int)
        async throws -> (id: Int64, recording: String, fax: String) {
        let call = IncomingCall(handle: 1, controller: 1, service: .voice, called: PartyNumber(digits: "100"),
                                caller: PartyNumber(digits: "0301112223"))
        guard case .answerVoice(let answer) = await pipeline.decide(call) else { throw XCTSkip("not answered as voicemail") }
        let fallback = try XCTUnwrap(answer.faxFallback, "fax_on_tone is on by default")
        answer.recording.append(audio)
        try answer.recording.finish()
        await pipeline.voiceSwitchedToFax(receptionID: answer.receptionID, spoolPath: fallback.spoolPath)
        let fax = try ReceptionSpoolFile(path: fallback.spoolPath)
        fax.append(sff)
        try fax.finish()
        await pipeline.callEnded(receptionID: answer.receptionID, end: CallEnd(
            reason: 0x3490, reasonB3: pages > 0 ? 0 : 0x3311, text: pages > 0 ? "normal clearing" : "no fax followed",
            session: FaxSessionInfo(pages: pages)))
        return (answer.receptionID, answer.recording.path, fallback.spoolPath)
    }

    /// Two seconds of line bytes that are not silence (a-law of a varying signal), 1 s above the minimum.
    let speech: [UInt8] = (0..<16_000).map { UInt8(truncatingIfNeeded: ($0 * 7) ^ ($0 >> 5)) }

    func testFaxToneThenPages_theRecordingWasTheFaxTone_andIsDeleted() async throws {
        let dir = try TemporaryDirectory("tone-fax")
        let sender = RecordingSender()
        let (storage, outbox, pipeline) = try makeParts(dir, sender: sender)
        try await storage.migrate()
        let call = try await voiceCallSwitchedToFax(pipeline, audio: speech, sff: twoPageSFF(), pages: 2)

        let switched = try await storage.call(id: call.id)
        XCTAssertEqual(switched?.kind, .fax)
        XCTAssertEqual(switched?.voiceRecordingPath, call.recording, "kept, typed, until the fax shows what the tone was")
        XCTAssertTrue(FileManager.default.fileExists(atPath: call.recording))

        try await runGateway(outbox, pipeline) { (try? await storage.call(id: call.id))?.state == .mailed }
        let loaded = try await storage.call(id: call.id)
        let row = try XCTUnwrap(loaded)
        XCTAssertEqual(row.kind, .fax)
        XCTAssertEqual(row.pages, 2)
        XCTAssertNil(row.voiceRecordingPath)
        XCTAssertEqual(row.spoolPath, call.fax)
        XCTAssertFalse(FileManager.default.fileExists(atPath: call.recording), "a fax machine's tone is no message")
        XCTAssertEqual(sender.sent.withLock { $0.count }, 1)
        let message = String(decoding: sender.sent.withLock { $0[0].message }, as: UTF8.self)
        XCTAssertTrue(message.contains("application/pdf"))
        XCTAssertFalse(message.contains("audio/wav"))
        let events = try await storage.events(callID: call.id).map(\.text)
        XCTAssertTrue(events.contains { $0.contains("recording before the fax tone") && $0.contains("deleted") }, "\(events)")
    }

    func testFaxToneWithoutFax_theRecordingIsMailedAsVoicemail_onceAcrossRestarts() async throws {
        let dir = try TemporaryDirectory("tone-nofax")
        // First run: the call ends, then the gateway dies before it processes the call.
        let first = try makeParts(dir, sender: RecordingSender())
        try await first.0.migrate()
        let call = try await voiceCallSwitchedToFax(first.2, audio: speech, sff: [], pages: 0)
        let ended = try await first.0.call(id: call.id)
        XCTAssertEqual(ended?.state, .received)
        XCTAssertEqual(ended?.voiceRecordingPath, call.recording)

        // Second start: resumes the call and mails what the caller said.
        let sender = RecordingSender()
        let (storage, outbox, pipeline) = try makeParts(dir, sender: sender)
        try await runGateway(outbox, pipeline) { (try? await storage.call(id: call.id))?.state == .mailed }
        let loaded = try await storage.call(id: call.id)
        let row = try XCTUnwrap(loaded)
        XCTAssertEqual(row.kind, .voice, "the call is the voice message it was")
        XCTAssertEqual(row.outcome, .complete)
        XCTAssertEqual(row.detail, "fax tone heard, no fax followed; voice message mailed")
        XCTAssertEqual(row.spoolPath, call.recording)
        XCTAssertNil(row.voiceRecordingPath)
        XCTAssertTrue(FileManager.default.fileExists(atPath: call.recording), "the message stays until retention removes it")
        XCTAssertEqual(sender.sent.withLock { $0.count }, 1)
        let message = String(decoding: sender.sent.withLock { $0[0].message }, as: UTF8.self)
        XCTAssertTrue(message.contains("Message-Context: voice-message"), message.prefix(1500).description)
        XCTAssertTrue(message.contains("fax tone heard, but no fax followed"), "the mail says how the call ended")
        let wav = try XCTUnwrap(Self.attachment("audio/wav", in: message), "the audio is attached")
        XCTAssertEqual(Array(wav.prefix(4)), Array("RIFF".utf8))
        XCTAssertEqual(wav.count, 44 + 2 * speech.count, "every recorded sample arrives (16-bit PCM WAV)")

        // Third start after a crash that lost the row's 'mail_queued' (the outbox had the mail): no second mail.
        var lost = row
        lost.state = .received
        try await storage.updateCall(lost, event: "test: the update after queueing was lost")
        let again = RecordingSender()
        let third = try makeParts(dir, sender: again)
        try await runGateway(third.1, third.2) {
            let state = (try? await third.0.call(id: call.id))?.state
            // Queued again and nothing left for the sender: a second mail would still be pending or sent.
            let nothingPending = await third.1.pending().isEmpty
            return (state == .mailQueued || state == .mailed) && nothingPending
        }
        XCTAssertEqual(again.sent.withLock { $0.count }, 0, "the outbox id derives from the call: one mail per call")
        let final = try await third.0.call(id: call.id)
        XCTAssertEqual(final?.kind, .voice)
    }

    func testFaxToneWithoutFax_tooShortForAMessage_rowSaysWhy() async throws {
        let dir = try TemporaryDirectory("tone-short")
        let sender = RecordingSender()
        let (storage, outbox, pipeline) = try makeParts(dir, sender: sender)
        try await storage.migrate()
        // Half a second: below min_seconds (1 s), as when the tone came right after the beep.
        let call = try await voiceCallSwitchedToFax(pipeline, audio: Array(speech.prefix(4000)), sff: [], pages: 0)
        try await runGateway(outbox, pipeline) { (try? await storage.call(id: call.id))?.state == .rejected }
        let loaded = try await storage.call(id: call.id)
        let row = try XCTUnwrap(loaded)
        XCTAssertEqual(row.kind, .voice)
        XCTAssertNil(row.voiceRecordingPath)
        XCTAssertTrue(row.detail?.hasPrefix("fax tone heard, no fax followed; no message: 0.5 s") == true, row.detail ?? "nil")
        XCTAssertEqual(sender.sent.withLock { $0.count }, 0)
    }

    /// The decoded body of the first MIME part of `contentType`.
    static func attachment(_ contentType: String, in message: String) -> [UInt8]? {
        guard let type = message.range(of: "Content-Type: \(contentType)") else { return nil }
        let rest = message[type.upperBound...]
        guard let bodyStart = rest.range(of: "\r\n\r\n") else { return nil }
        var base64 = ""
        for line in rest[bodyStart.upperBound...].split(separator: "\r\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("--") || line.isEmpty { break }
            base64 += line
        }
        return Data(base64Encoded: base64).map { [UInt8]($0) }
    }

    func twoPageSFF() -> [UInt8] {
        let width = 1728, height = 100, rowBytes = width / 8
        let pages = (0..<2).map { p -> FaxPage in
            var bitmap = [UInt8](repeating: 0, count: rowBytes * height)
            for y in (20 + p * 20)..<(40 + p * 20) { for x in 20..<100 { bitmap[y * rowBytes + x] = 0xFF } }
            return FaxPage(bitmap: bitmap, width: width, height: height, resolution: .fine)
        }
        return SFFWriter.write(pages)
    }

    func waitUntil(timeout: TimeInterval = 15, _ condition: @escaping () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("condition not met within \(timeout) s")
        throw CancellationError()
    }
}
