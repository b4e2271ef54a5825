import FaxDocument
import Foundation
import Logging
import MailOut
import ServiceLifecycle

/// Follows a received fax from the call to the outbox: routing, journal, spool, SFF → PDF/TIFF, mail.
///
/// The transport calls `decide` / `faxConnected` / `callEnded`; every finished call is then converted and
/// queued for mail by `run()`, one at a time. On start, `run()` first picks up what a previous run left:
/// receptions that ended but were not yet mailed, and receptions interrupted by a crash or power cut.
/// Nothing is deleted here: the SFF stays in the spool until retention removes it.
public actor ReceptionPipeline: ReceptionHandler, Service {
    public struct Settings: Sendable {
        public var spoolDirectory: String
        public var from: MailAddress
        public var envelopeFrom: String
        public var hostname: String
        public var rejectUnknownNumbers: Bool
        /// 3.1 kHz audio calls to extensions without voicemail are answered as fax (capi.answer_audio_as_fax).
        public var answerAudioAsFax: Bool
        /// How caller and called numbers are written (the line's country code, area code and prefixes).
        public var numbers: PartyNumberFormat
        /// Bounds on one received fax (config `reception:`).
        public var receptionLimits = ReceptionLimits()
        public init(spoolDirectory: String, from: MailAddress, envelopeFrom: String, hostname: String, rejectUnknownNumbers: Bool = true,
                    answerAudioAsFax: Bool = true, line: LineConfig = LineConfig()) {
            self.spoolDirectory = spoolDirectory; self.from = from; self.envelopeFrom = envelopeFrom
            self.hostname = hostname; self.rejectUnknownNumbers = rejectUnknownNumbers; self.answerAudioAsFax = answerAudioAsFax
            self.numbers = PartyNumberFormat(line: line)
        }
    }

    let settings: Settings
    /// The directory given at construction; with `live`, the live configuration's extensions are used instead.
    let fixedDirectory: ExtensionDirectory
    /// Office settings edited on the web apply to the next call without a restart (routing, addresses,
    /// formats, language, greeting): the directory is built from the live configuration per use.
    let live: LiveConfiguration?
    var directory: ExtensionDirectory { live.map { ExtensionDirectory($0.current) } ?? fixedDirectory }
    let storage: any Storage
    let outbox: Outbox
    let logger: Logger
    private let work: AsyncStream<Int64>
    let workContinuation: AsyncStream<Int64>.Continuation
    /// Calls whose mail is being queued. The outbox can deliver and report while this actor waits in
    /// `outbox.enqueue` (reentrancy), before the row says `mail_queued`; such a result waits here and is applied
    /// after that update, so the earlier state never overwrites the later one (one writer per row, in order).
    private var queueing: Set<Int64> = []
    private var pendingMailResults: [Int64: (delivered: Bool, detail: String)] = [:]
    /// Calls whose end was reported. The transport runs its reports as separate tasks, so a late `faxConnected`
    /// may read the row before `callEnded` writes it and write it back after: the row would fall back to
    /// `receiving` (lost update under actor reentrancy). It skips its write for an ended call instead (the end
    /// records the same session facts).
    private var endedCalls: Set<Int64> = []
    /// Greetings (with beep) in line format, per extension with voicemail; converted once here at start.
    let greetings: [String: [UInt8]]
    /// The greeting file each prepared greeting came from (nil = the built-in one).
    let greetingFiles: [String: String?]

    public var incomingDirectory: String { settings.spoolDirectory + "/incoming" }

    public init(settings: Settings, directory: ExtensionDirectory, storage: any Storage, outbox: Outbox, logger: Logger,
                live: LiveConfiguration? = nil) throws {
        self.settings = settings; self.fixedDirectory = directory; self.storage = storage; self.outbox = outbox; self.logger = logger
        self.live = live
        (work, workContinuation) = AsyncStream.makeStream(of: Int64.self)
        try DurableFile.makeDirectory(settings.spoolDirectory + "/incoming")  // 0700 whatever the umask
        let startExtensions = live.map { ExtensionDirectory($0.current) }?.extensions ?? directory.extensions
        greetings = VoiceGreetings.prepare(startExtensions, spoolDirectory: settings.spoolDirectory, logger: logger)
        greetingFiles = Dictionary(startExtensions.compactMap { e in e.voicemail.map { (e.name, $0.greetingFile) } }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: - ReceptionHandler

    public func decide(_ call: IncomingCall) async -> CallDecision {
        let match = directory.route(calledNumber: call.calledNumber)
        let ext: Extension
        switch match {
        case .number(let e), .catchAll(let e): ext = e
        case .none:
            var record = CallRecord(state: .rejected, callingNumber: nil, calledNumber: call.calledNumber)
            record.setNumbers(of: call)
            record.outcome = .rejected
            record.endedAt = Date()
            record.reasonText = "no extension for called number \(call.calledNumber)"
            var saved: CallRecord?
            do { saved = try await storage.insertCall(record, event: "rejected: no extension for this number") } catch {
                logger.error("cannot journal a rejected call: \(error)")
            }
            GatewayMetrics.incomingCall(kind: record.kind, outcome: .rejected, pages: 0, bytes: 0)
            logger.notice("call rejected: no extension for called number \(call.calledNumber)",
                          metadata: ["call": "\(saved?.id ?? 0)", "caller": "\(Self.logCaller(call))"])
            return settings.rejectUnknownNumbers ? .reject(.unallocatedNumber) : .ignore
        }
        if call.service == .voice || call.service == .audio, let voicemail = ext.voicemail {
            return await answerVoice(call, ext: ext, voicemail: voicemail)
        }
        if call.service == .voice || (call.service == .audio && !settings.answerAudioAsFax) {
            // A phone call to an extension without voicemail: the phones on the line take it.
            return .ignore
        }
        do {
            let via = if case .catchAll = match { " (catch-all)" } else { "" }
            let (id, spool) = try await startReception(call, ext: ext, kind: .fax, fileExtension: "sff",
                                                       event: "answering as fax for extension \(ext.name)\(via)")
            return .answerFax(FaxAnswer(receptionID: id, stationID: ext.stationID, headline: ext.headline, fine: ext.fine,
                                        ringDelay: .seconds(ext.ringDelaySeconds), spool: spool))
        } catch {
            // Without a journal row and a spool file we could lose the document: let the caller try again later.
            logger.error("cannot prepare reception, answering busy: \(error)")
            return .reject(.busy)
        }
    }

    public func faxConnected(receptionID: Int64, info: FaxSessionInfo) async {
        let loaded: CallRecord?
        do { loaded = try await storage.call(id: receptionID) } catch {
            logger.error("cannot read the call to record its fax session: \(error)", metadata: ["call": "\(receptionID)"])
            return
        }
        guard var record = loaded, !endedCalls.contains(receptionID), record.state == .receiving else { return }
        // The remote's station id is untrusted text: no control, bidi or line-break characters reach journal or mail.
        record.remoteStationID = info.remoteStationID.map(PartyNumberFormat.cleaned)
        record.bitRate = info.bitRate
        record.fine = info.fine
        record.takeEngineFacts(info)
        do { try await storage.updateCall(record, event: "fax session up: \(info.bitRate ?? 0) bit/s" + (info.engine.map { " (\($0.rawValue) engine)" } ?? "")) } catch {
            // The end of the call records the session again; only this event is missing.
            logger.error("cannot record the fax session: \(error)", metadata: ["call": "\(receptionID)"])
        }
        logger.info("fax session up", metadata: ["call": "\(receptionID)", "rate": "\(info.bitRate ?? 0)",
                                                 "tsi": "\(record.remoteStationID ?? "")"])
    }

    public func callEnded(receptionID: Int64, end: CallEnd) async {
        endedCalls.insert(receptionID)  // before any await: a faxConnected still in flight must not overwrite the end
        do {
            guard var record = try await storage.call(id: receptionID) else { return }
            record.endedAt = Date()
            record.reason = end.reason
            record.reasonB3 = end.reasonB3
            record.reasonText = end.text
            if let sid = end.session.remoteStationID.map(PartyNumberFormat.cleaned), !sid.isEmpty { record.remoteStationID = sid }
            if let rate = end.session.bitRate { record.bitRate = rate }
            if let fine = end.session.fine { record.fine = fine }
            record.takeEngineFacts(end.session)
            record.endCause = end.cause
            record.pages = end.session.pages
            record.outcome = end.succeeded ? .complete : .partial  // refined after decoding
            record.state = .received
            try await storage.updateCall(record, event: "call ended: \(end.text)" + (end.session.failure.map { " — T.30 \($0.kind.rawValue): \(T30FailureReason($0, direction: .incoming))" } ?? ""))
            logger.info("call ended: \(end.text)", metadata: ["call": "\(receptionID)", "pages": "\(end.session.pages ?? 0)"])
            workContinuation.yield(receptionID)
        } catch {
            // The spool file and the 'receiving' row survive; the next start processes it as interrupted.
            logger.error("cannot record end of call: \(error)", metadata: ["call": "\(receptionID)"])
        }
    }

    // MARK: - Service

    public func run() async throws {
        let leftovers = try await storage.calls(in: [.receiving, .received])
        for record in leftovers {
            guard let id = record.id else { continue }
            if record.state == .receiving {
                var r = record
                r.state = .received
                r.endedAt = r.endedAt ?? Date()
                r.reasonText = r.reasonText ?? "reception interrupted (gateway stopped during the call)"
                r.endCause = .interrupted
                r.outcome = .partial
                try await storage.updateCall(r, event: "found interrupted at start; processing what arrived")
            }
            logger.notice("resuming reception left by a previous run", metadata: ["call": "\(id)"])
            workContinuation.yield(id)
        }
        await withGracefulShutdownHandler {
            for await id in work {
                await process(id)
            }
        } onGracefulShutdown: { [workContinuation] in
            // Whatever is not processed yet is in state 'received' and resumes on the next start.
            workContinuation.finish()
        }
    }

    /// Converts a finished reception and queues its mail. Failures leave the row in 'received'.
    func process(_ id: Int64) async {
        do {
            guard var record = try await storage.call(id: id), record.state == .received else { return }
            record = try await resolveVoiceRecording(record)
            if record.kind == .voice { return try await processVoice(record) }
            guard let ext = directory.extensions.first(where: { $0.name == record.extensionName }) else {
                record.detail = "extension \(record.extensionName ?? "?") no longer configured"
                try await storage.updateCall(record, event: "not mailed: extension no longer configured")
                logger.error("reception kept but not mailed: its extension is no longer configured", metadata: ["call": "\(id)"])
                return
            }
            let renderStart = ContinuousClock.now
            let mail = try composeMail(record, ext: ext)
            GatewayMetrics.render(.faxToMail, seconds: GatewayMetrics.seconds(since: renderStart))
            let (pages, outcome, attachments) = (mail.pages, mail.outcome, mail.attachments)
            record = mail.record
            if !pages.isEmpty {
                for a in attachments {
                    try await storage.putDocument(StoredDocument(callID: id, kind: a.filename.hasSuffix(".pdf") ? "pdf" : "tiff",
                                                                 filename: a.filename, bytes: a.data))
                }
            }
            let messageID = try await queueMail(to: ext, callID: id, startedAt: record.startedAt, context: "fax-message", subject: mail.subject,
                                                body: mail.body, attachments: attachments)
            record.mailMessageID = messageID
            try await recordMailQueued(record, event: "mail queued (\(outcome.rawValue), \(pages.count) pages)")
            // Counted once the outcome is final and journaled (the same figure `journal` shows).
            let spoolBytes = record.spoolPath.flatMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int } ?? 0
            GatewayMetrics.incomingCall(kind: .fax, outcome: outcome, pages: pages.count, bytes: spoolBytes)
            logger.info("reception converted and queued for mail", metadata: [
                "call": "\(id)", "outcome": "\(outcome.rawValue)", "pages": "\(pages.count)",
            ])
        } catch {
            logger.error("processing failed, will retry on next start: \(error)", metadata: ["call": "\(id)"])
        }
    }

    /// A reception's mail as `process` makes it: pages read from the spool, outcome, text in the extension's
    /// language and attachments in its formats. Also used to mail a call again (`resendMail`).
    struct ComposedMail {
        var record: CallRecord
        var pages: [FaxPage]
        var outcome: CallRecord.Outcome
        var subject: String
        var body: String
        var attachments: [MailAttachment]
    }

    func composeMail(_ record: CallRecord, ext: Extension) throws -> ComposedMail {
        var record = record
        let id = record.id!
        let bytes = record.spoolPath.flatMap { FileManager.default.contents(atPath: $0) }.map { [UInt8]($0) } ?? []
        var problems: [String] = []
        var pages: [FaxPage] = []
        if bytes.isEmpty {
            problems.append(ext.language == .de ? "Es kamen keine Dokumentdaten an." : "No document data arrived.")
        } else {
            do {
                let document = try SFFReader.read(bytes)
                pages = document.pages
                // Many writers omit the end marker; the pages are complete, so it is no problem to report.
                problems += document.problems.filter { $0 != .missingEndMarker }.map { $0.text(ext.language.rawValue) }
            } catch {
                problems.append((ext.language == .de ? "Das empfangene Dokument ist nicht lesbar: " : "The received document is unreadable: ")
                                + ((error as? SFFError)?.text(ext.language.rawValue) ?? (ext.language == .de ? "unbekannter Fehler" : "\(error)")))
            }
        }
        // A typed T.30 failure makes a reception partial whatever the line codes say; what arrived is still mailed.
        let transportOK = record.reasonB3 == 0 && [0, 0x3400, 0x3490].contains(record.reason ?? 0) && record.endCause?.isInterruption != true
            && record.t30Failure == nil
        let outcome: CallRecord.Outcome = pages.isEmpty ? .failed : (transportOK && problems.isEmpty ? .complete : .partial)
        record.outcome = outcome
        record.pages = pages.count
        if record.fine == nil, let first = pages.first { record.fine = first.resolution == .fine }
        record.detail = problems.isEmpty ? nil : problems.joined(separator: "; ")

        var facts = ReceptionMail.Facts(
            callID: id, callingNumber: record.callingNumber, callingNumberRestricted: record.callingPresentation == .restricted,
            calledNumber: record.calledNumber, extensionName: ext.name, remoteStationID: record.remoteStationID,
            pages: pages.count, fine: record.fine, bitRate: record.bitRate, ecm: record.ecm, startedAt: record.startedAt,
            duration: record.durationSeconds, outcome: outcome,
            reasonText: transportOK ? (problems.isEmpty ? nil : problems.first) : record.reasonText, problems: problems)
        facts.caller = record.caller
        facts.called = record.called
        facts.endCause = transportOK ? nil : record.endCause
        facts.t30Failure = record.t30Failure
        facts.engine = record.engine
        facts.compression = record.compression
        facts.ecmRetransmittedFrames = record.ecmRetransmittedFrames
        let composer = ReceptionMail(language: ext.language, numbers: settings.numbers)
        let stem = composer.attachmentStem(facts)
        var attachments: [MailAttachment] = []
        if !pages.isEmpty {
            for format in ext.formats {
                switch format {
                case .pdf:
                    let pdf = PDFWriter.write(pages, title: composer.subject(facts),
                                              pageSize: ext.pdfPageSize == .a4 ? .a4 : .exact)
                    attachments.append(MailAttachment(filename: "\(stem).pdf", contentType: "application/pdf", data: pdf))
                case .tiff:
                    let tmp = "\(settings.spoolDirectory)/incoming/.\(id).tiff"
                    try TIFFWriter.write(pages, to: tmp, compression: .g4)
                    let tiff = try [UInt8](Data(contentsOf: URL(fileURLWithPath: tmp)))
                    do { try FileManager.default.removeItem(atPath: tmp) } catch {
                        // Not fatal: retention finds ".<id>.tiff" with the call (SpoolFiles.derivedFiles).
                        logger.error("cannot remove the conversion temporary \(tmp): \(error)", metadata: ["call": "\(id)"])
                    }
                    // RFC 3949 profile hint so fax-aware clients know what they got.
                    attachments.append(MailAttachment(filename: "\(stem).tif", contentType: "image/tiff; application=faxbw", data: tiff))
                }
            }
        }
        return ComposedMail(record: record, pages: pages, outcome: outcome, subject: composer.subject(facts), body: composer.body(facts),
                            attachments: attachments)
    }

    /// Journal row, spool file and log line for a call we answer; the one way a reception starts.
    func startReception(_ call: IncomingCall, ext: Extension, kind: CallRecord.Kind, fileExtension: String,
                        event: String) async throws -> (id: Int64, spool: ReceptionSpoolFile) {
        var record = CallRecord(kind: kind, state: .receiving, callingNumber: nil, calledNumber: call.calledNumber,
                                extensionName: ext.name)
        // Numbers with type and presentation go into the row now: a call finished after a restart is mailed from it.
        record.setNumbers(of: call)
        record = try await storage.insertCall(record, event: event)
        let id = record.id!
        let path = "\(incomingDirectory)/\(id).\(fileExtension)"
        // A fax is bounded (bytes, pages, minutes): past a limit the transport hangs up, what arrived is mailed.
        let spool = kind == .fax ? try ReceptionSpoolFile(path: path, limits: settings.receptionLimits) : try ReceptionSpoolFile(path: path)
        record.spoolPath = path
        try await storage.updateCall(record, event: "spooling to \(path)")
        logger.info("answering \(kind == .fax ? "fax" : "voice") call", metadata: [
            "call": "\(id)", "extension": "\(ext.name)", "caller": "\(Self.logCaller(call))", "called": "\(call.calledNumber)",
        ])
        return (id, spool)
    }

    /// Puts the mail for one call into the durable outbox, to the extension's recipients; returns its Message-ID.
    /// - Parameter context: RFC 3458 Message-Context ("fax-message", "voice-message").
    /// - Parameter outboxID: only for a mail sent again on request (`resendMail`); otherwise derived from the call.
    func queueMail(to ext: Extension, callID: Int64, startedAt: Date? = nil, context: String, subject: String, body: String,
                   attachments: [MailAttachment], outboxID fixedOutboxID: String? = nil) async throws -> String {
        // Both ids derive from the call: converting again after a crash (row still 'received') queues the same
        // outbox id, which the outbox takes as already queued or sent — one mail per call, never two.
        // The call's start time is part of both, so a database recreated from empty (ids from 1 again) never
        // meets the sent marker of an earlier call with the same id.
        let outboxID = fixedOutboxID ?? Self.outboxID(callID: callID, startedAt: startedAt)
        queueing.insert(callID)  // until recordMailQueued (or the caller's failure path) ends it
        let messageID = "<faxgate.\(outboxID)@\(settings.hostname)>"
        let message = MailMessage(
            from: settings.from, to: ext.recipients.map { MailAddress($0) }, cc: [], subject: subject, date: Date(),
            messageID: messageID,
            extraHeaders: [("Auto-Submitted", "auto-generated"), ("Message-Context", context), ("X-Faxgate-Reference", "\(callID)")],
            textBody: body, attachments: attachments)
        do {
            _ = try await outbox.enqueue(message: message.render(), envelopeFrom: settings.envelopeFrom, recipients: ext.recipients,
                                         callID: callID, id: outboxID)
        } catch {
            await finishQueueing(callID)
            throw error
        }
        TestCrashPoint.reached("mail-queued")
        return messageID
    }

    /// The caller for a log line: a withheld number is not logged, not even redacted.
    static func logCaller(_ call: IncomingCall) -> String {
        call.callingNumberRestricted ? "withheld" : PartyNumberFormat.cleaned(call.callingNumber ?? "-")
    }

    /// The outbox id of a call's mail (fax or voice message): one per call. Letters for the time, so log
    /// redaction does not take it for a phone number.
    public static func outboxID(callID: Int64, startedAt: Date?) -> String {
        "call-\(callID)" + (startedAt.map { "-" + Outbox.letterStamp(UInt64(max(0, $0.timeIntervalSince1970))) } ?? "")
    }

    /// Called by the outbox when the SMTP server accepted (or finally refused) a reception's mail.
    /// Marks the row `mail_queued` after `queueMail`, then applies a result the outbox reported meanwhile.
    func recordMailQueued(_ record: CallRecord, event: String) async throws {
        var record = record
        record.state = .mailQueued
        do {
            try await storage.updateCall(record, event: event)
        } catch {
            await finishQueueing(record.id!)
            throw error
        }
        await finishQueueing(record.id!)
    }

    private func finishQueueing(_ callID: Int64) async {
        queueing.remove(callID)
        if let pending = pendingMailResults.removeValue(forKey: callID) {
            await mailResult(callID: callID, delivered: pending.delivered, detail: pending.detail)
        }
    }

    public func mailResult(callID: Int64, delivered: Bool, detail: String) async {
        if queueing.contains(callID) {
            pendingMailResults[callID] = (delivered, detail)
            return
        }
        do {
            guard var record = try await storage.call(id: callID) else { return }
            record.state = delivered ? .mailed : .mailFailed
            if !delivered { record.detail = [record.detail, "mail: \(detail)"].compactMap { $0 }.joined(separator: "; ") }
            try await storage.updateCall(record, event: delivered ? "mail accepted by SMTP server" : "mail undeliverable: \(detail)")
        } catch {
            // The row stays 'mail_queued' (visible in `faxgate journal`); the mail itself is not affected.
            logger.error("cannot record the mail result in the journal: \(error)", metadata: ["call": "\(callID)"])
        }
    }
}
