import FaxDocument
import Foundation
import Logging
import MailOut
import VoiceAudio

/// The voice side of `ReceptionPipeline`: answer, record the end, turn a switched call into a fax, and mail the
/// message. The recording stays in the spool as line bytes (`incoming/<id>.alaw`) until retention removes it.
extension ReceptionPipeline {
    func answerVoice(_ call: IncomingCall, ext: Extension, voicemail: Voicemail) async -> CallDecision {
        do {
            let (id, spool) = try await startReception(call, ext: ext, kind: .voice, fileExtension: "alaw",
                                                       event: "answering as voicemail for extension \(ext.name)")
            let fallback = voicemail.faxOnTone
                ? VoiceAnswer.FaxFallback(stationID: ext.stationID, headline: ext.headline, fine: ext.fine, spoolPath: "\(incomingDirectory)/\(id).sff")
                : nil
            return .answerVoice(VoiceAnswer(
                receptionID: id, ringDelay: .seconds(voicemail.ringDelaySeconds), greeting: greeting(for: ext),
                maxSeconds: Double(voicemail.maxSeconds), silenceSeconds: Double(voicemail.silenceSeconds), recording: spool,
                faxFallback: fallback))
        } catch {
            logger.error("cannot prepare voicemail, answering busy: \(error)")
            return .reject(.busy)
        }
    }

    public func voiceEnded(receptionID: Int64, end: VoiceCallEnd) async {
        do {
            guard var record = try await storage.call(id: receptionID) else { return }
            let language = directory.extensions.first { $0.name == record.extensionName }?.language ?? .de
            record.endedAt = Date()
            record.reason = end.reason
            record.reasonText = VoicemailMail(language: language).endText(end.cause) + " (\(end.text))"
            record.endCause = switch end.cause {
            case .hangUp: .hangUp
            case .maxLength: .maxLength
            case .silence: .silence
            case .dtmfHash: .dtmfHash
            case .interrupted: .lineLost
            }
            record.state = .received
            record.detail = String(format: "recorded %.1f s; greeting %@", end.recordedSeconds, end.greetingCompleted ? "played" : "not finished")
            try await storage.updateCall(record, event: "voice call ended: \(end.cause.rawValue), \(String(format: "%.1f", end.recordedSeconds)) s recorded")
            logger.info("voice call ended", metadata: ["call": "\(receptionID)", "cause": "\(end.cause.rawValue)"])
            workContinuation.yield(receptionID)
        } catch {
            logger.error("cannot record end of voice call: \(error)", metadata: ["call": "\(receptionID)"])
        }
    }

    public func voiceSwitchedToFax(receptionID: Int64, spoolPath: String) async {
        do {
            guard var record = try await storage.call(id: receptionID) else { return }
            // The recording may be a fax machine's calling tone or a caller who whistled: it is kept (typed, for a
            // restart) until the fax part shows which (`resolveVoiceRecording`).
            if let old = record.spoolPath, old != spoolPath { record.voiceRecordingPath = old }
            record.kind = .fax
            record.spoolPath = spoolPath
            try await storage.updateCall(record, event: "fax tone during voicemail: switched to fax reception, spooling to \(spoolPath)"
                                         + (record.voiceRecordingPath.map { "; recording kept in \($0) until a page arrives" } ?? ""))
            logger.info("voice call switched to fax", metadata: ["call": "\(receptionID)"])
        } catch {
            logger.error("cannot record switch to fax: \(error)", metadata: ["call": "\(receptionID)"])
        }
    }

    /// For a call switched from voicemail to fax whose fax part is over: with a page received, the kept recording was
    /// the fax machine's tone and is deleted; with none, the call goes back to being the voice message it was.
    /// Returns the row to go on with. Restart-safe: each step is one row update, and the mail's outbox id derives
    /// from the call (`queueMail`), so running this again after a crash neither loses the recording nor mails twice.
    func resolveVoiceRecording(_ original: CallRecord) async throws -> CallRecord {
        var record = original
        guard let recording = record.voiceRecordingPath, let id = record.id else { return record }
        let sffPages = record.spoolPath.flatMap { FileManager.default.contents(atPath: $0) }
            .flatMap { try? SFFReader.read([UInt8]($0)).pages.count } ?? 0
        if max(sffPages, record.pages ?? 0) > 0 {
            if FileManager.default.fileExists(atPath: recording) {
                do { try FileManager.default.removeItem(atPath: recording) } catch {
                    // Retention still finds it (incoming/<id>.*, SpoolFiles.derivedFiles); say why it is there.
                    logger.error("cannot remove the calling-tone recording \(recording): \(error)", metadata: ["call": "\(id)"])
                }
            }
            record.voiceRecordingPath = nil
            try await storage.updateCall(record, event: "fax pages received: the recording before the fax tone was the fax machine's tone, deleted")
            return record
        }
        // No page: the tone was no fax (a whistle, a caller's fax that gave up). What the caller said is the message.
        // The empty fax spool stays for retention (incoming/<id>.*).
        record.kind = .voice
        record.spoolPath = recording
        record.voiceRecordingPath = nil
        record.pages = nil
        // The mail's "how it ended": the fax part's line text would mean nothing to the reader.
        let de = (directory.extensions.first { $0.name == record.extensionName }?.language ?? .de) == .de
        record.reasonText = de ? "Faxton erkannt, aber kein Fax empfangen" : "fax tone heard, but no fax followed"
        record.detail = Self.faxToneWithoutFax
        try await storage.updateCall(record, event: "fax tone heard, no fax followed: delivering the recording as a voice message")
        logger.notice("fax tone without fax: recording delivered as voicemail", metadata: ["call": "\(id)"])
        return record
    }

    /// What the row of a voice call says when its fax tone brought no fax.
    static let faxToneWithoutFax = "fax tone heard, no fax followed; voice message mailed"

    /// Mails a finished voice message, or closes the row without mail when it is shorter than `min_seconds`.
    func processVoice(_ original: CallRecord) async throws {
        var record = original
        guard let id = record.id else { return }
        let ext = directory.extensions.first { $0.name == record.extensionName }
        let voicemail = ext?.voicemail ?? Voicemail(VoicemailConfig())
        let language = ext?.language ?? .de
        let line = record.spoolPath.flatMap { FileManager.default.contents(atPath: $0) }.map { [UInt8]($0) } ?? []
        let seconds = Double(line.count) / Double(G711.sampleRate)
        guard let ext, seconds >= voicemail.minSeconds, seconds > 0 else {
            // Hung up during the greeting (or nothing worth a mail): journaled, nothing sent. `rejected` is the
            // journal's end state for calls that brought nothing to deliver.
            record.state = .rejected
            record.outcome = .failed
            let toneNote = original.detail == Self.faxToneWithoutFax ? "fax tone heard, no fax followed; " : ""
            record.detail = toneNote + (ext == nil ? "extension \(record.extensionName ?? "?") no longer configured; not mailed"
                : String(format: "no message: %.1f s recorded (minimum %.1f s); not mailed", seconds, voicemail.minSeconds))
            try await storage.updateCall(record, event: "voice call closed without mail")
            GatewayMetrics.incomingCall(kind: .voice, outcome: .failed, pages: 0, bytes: line.count)
            logger.info("voice call without message, not mailed", metadata: ["call": "\(id)", "seconds": "\(seconds)"])
            return
        }
        record.outcome = record.endCause?.isInterruption == true ? .partial : .complete
        let composer = VoicemailMail(language: language, numbers: settings.numbers)
        var callerName: String? = nil
        if let book = voicemail.addressBookFile {
            // E.164 when the type tells it: a national "301112223" is the book's "+49 30 1112223".
            let number = record.caller.flatMap { settings.numbers.e164($0) } ?? record.callingNumber
            do { callerName = try AddressBook(file: book).name(for: number) }
            catch { logger.warning("address book unreadable: \(error)", metadata: ["extension": "\(ext.name)"]) }
        }
        let withheld = record.callingPresentation == .restricted
        var facts = VoicemailMail.Facts(
            callID: id, callingNumber: record.callingNumber, callingNumberRestricted: withheld,
            callerName: withheld ? nil : callerName, calledNumber: record.calledNumber, extensionName: ext.name,
            startedAt: record.startedAt, messageSeconds: seconds,
            endText: record.reasonText ?? composer.endText(nil), audioWithheld: voicemail.privacyNoticeOnly)
        facts.caller = record.caller
        facts.called = record.called
        let stem = composer.attachmentStem(facts)
        var attachments: [MailAttachment] = []
        let renderStart = ContinuousClock.now
        if !voicemail.privacyNoticeOnly {
            let pcm = G711.pcm(fromLine: line)
            if voicemail.attachWAV {
                attachments.append(MailAttachment(filename: "\(stem).wav", contentType: "audio/wav", data: WAV.encode(pcm)))
            }
            if voicemail.compression == .mp3 {
                do {
                    attachments.append(MailAttachment(filename: "\(stem).mp3", contentType: "audio/mpeg", data: try MP3Encoder.encode(pcm)))
                } catch {
                    logger.error("MP3 encoding failed, mailing WAV: \(error)", metadata: ["call": "\(id)"])
                    if !voicemail.attachWAV {
                        attachments.append(MailAttachment(filename: "\(stem).wav", contentType: "audio/wav", data: WAV.encode(pcm)))
                    }
                }
            }
        }
        GatewayMetrics.render(.voiceToMail, seconds: GatewayMetrics.seconds(since: renderStart))
        let messageID = try await queueMail(to: ext, callID: id, startedAt: record.startedAt, context: "voice-message", subject: composer.subject(facts),
                                            body: composer.body(facts), attachments: attachments)
        record.mailMessageID = messageID
        try await recordMailQueued(record, event: String(format: "voicemail queued for mail (%.1f s)", seconds))
        GatewayMetrics.incomingCall(kind: .voice, outcome: record.outcome ?? .complete, pages: 0, bytes: line.count)
        logger.info("voicemail queued for mail", metadata: ["call": "\(id)", "seconds": "\(seconds)"])
    }
}

/// Greetings per extension, in line format with the beep appended.
extension VoiceGreetings {
    static func cachePath(_ file: String, cacheDir: String) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: file)
        let size = (attributes?[.size] as? NSNumber)?.intValue ?? 0
        let mtime = Int((attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)
        var hash: UInt64 = 0xcbf29ce484222325   // FNV-1a: a cache key, not a security measure
        for b in "\(file)|\(size)|\(mtime)".utf8 { hash = (hash ^ UInt64(b)) &* 0x100000001b3 }
        return "\(cacheDir)/\(String(hash, radix: 16)).line"
    }
}

/// A greeting uploaded on the web is converted once, when it is saved, into the cache the pipeline reads.
public enum GreetingCache {
    /// Converts `file` (any format sox reads) to line format and caches it; throws the converter's reason.
    public static func store(_ file: String, spoolDirectory: String) throws -> [UInt8] {
        let line = try GreetingConverter.convert(file)
        let cacheDir = spoolDirectory + "/greetings"
        try DurableFile.makeDirectory(cacheDir)
        try DurableFile.write(line, to: VoiceGreetings.cachePath(file, cacheDir: cacheDir))
        return line
    }

    /// The greeting callers of `ext` hear, in line format, without the beep: the cached conversion of its file,
    /// else the built-in greeting of its language. nil = no voicemail.
    public static func line(_ ext: ExtensionConfig, spoolDirectory: String, logger: Logger) -> [UInt8]? {
        guard let vm = ext.voicemail, vm.enabled else { return nil }
        if let file = vm.greeting, let line = VoiceGreetings.cachedConversion(file, cacheDir: spoolDirectory + "/greetings", logger: logger) {
            return line
        }
        return DefaultGreeting.line(language: ext.language)
    }
}

extension ReceptionPipeline {
    /// The extension's greeting in line format. Greetings prepared at start are used while the extension's
    /// greeting file is the one they came from; a greeting changed on the web since (converted once when it was
    /// uploaded) is read from the conversion cache.
    func greeting(for ext: Extension) -> [UInt8] {
        guard let voicemail = ext.voicemail else { return Tone.greetingBeep }
        if let prepared = greetings[ext.name], greetingFiles[ext.name] == voicemail.greetingFile { return prepared }
        return VoiceGreetings.prepare([ext], spoolDirectory: settings.spoolDirectory, logger: logger)[ext.name] ?? Tone.greetingBeep
    }
}

enum VoiceGreetings {
    static func prepare(_ extensions: [Extension], spoolDirectory: String, logger: Logger) -> [String: [UInt8]] {
        var result: [String: [UInt8]] = [:]
        let cacheDir = spoolDirectory + "/greetings"
        for ext in extensions {
            guard let vm = ext.voicemail else { continue }
            var greeting: [UInt8]? = nil
            if let file = vm.greetingFile {
                greeting = cachedConversion(file, cacheDir: cacheDir, logger: logger)
            }
            if greeting == nil {
                greeting = DefaultGreeting.line(language: ext.language.rawValue)
                if greeting == nil { logger.warning("no default greeting installed; callers hear only the beep", metadata: ["extension": "\(ext.name)"]) }
            }
            result[ext.name] = (greeting ?? []) + Tone.greetingBeep
        }
        return result
    }

    /// Converts once: the line-format result is kept in `<spool>/greetings/`, named after the source's path,
    /// size and modification time, so a new upload is converted at the next start and an unchanged one never again.
    static func cachedConversion(_ file: String, cacheDir: String, logger: Logger) -> [UInt8]? {
        let cached = cachePath(file, cacheDir: cacheDir)
        if let d = FileManager.default.contents(atPath: cached), !d.isEmpty { return [UInt8](d) }
        do {
            let line = try GreetingConverter.convert(file)
            do {
                try FileManager.default.createDirectory(atPath: cacheDir, withIntermediateDirectories: true)
                try DurableFile.write(line, to: cached)
            } catch {
                // Only the cache is lost: the greeting is converted again at the next start.
                logger.warning("converted greeting cannot be cached: \(error)", metadata: ["file": "\(file)"])
            }
            logger.info("greeting converted", metadata: ["file": "\(file)", "seconds": "\(Double(line.count) / 8000)"])
            return line
        } catch {
            logger.error("greeting cannot be converted, using the built-in one: \(error)", metadata: ["file": "\(file)"])
            return nil
        }
    }
}
