import Foundation
import Logging
import ServiceLifecycle

/// The durable mail outbox: every mail the gateway sends is first written here, then delivered.
///
/// Layout (Postfix-style, a state is a directory): `outbox/<id>.eml` holds the message, `outbox/<id>.json`
/// its envelope and retry state; the envelope is written last, so a crash between the two leaves an orphan
/// message that the next scan re-adopts, never a half-written one. After the SMTP server accepted the
/// message a marker `outbox/sent/<id>` is made durable first, then both files are removed: a crash in between
/// finds the marker and does not send again. Messages that never get through move to `outbox/failed/`, never
/// deleted by the outbox (retention removes them with their call or job).
///
/// Ids are derived from the record the mail is about (`call-<id>`, `job-<id>-done`, `refusal-<intake>`), so a
/// step repeated after a crash enqueues the same id, which is a no-op once the id is queued, sent or failed.
public actor Outbox: Service {
    public struct Envelope: Codable, Sendable {
        public var id: String
        public var envelopeFrom: String
        public var recipients: [String]
        public var callID: Int64?
        public var queuedAt: Date
        public var attempts: Int
        public var nextAttemptAt: Date
        public var lastError: String?
        /// The outgoing job a status mail is about (typed, so its result can go to the job's history).
        public var jobID: Int64?
        /// Set when the outbox gave up; a message with this set is never sent again, only moved aside.
        public var failedAt: Date?
    }

    public struct Settings: Sendable {
        public var retryInitial: Duration
        public var retryMax: Duration
        public var giveUpAfter: Duration
        public init(retryInitial: Duration, retryMax: Duration, giveUpAfter: Duration) {
            self.retryInitial = retryInitial; self.retryMax = retryMax; self.giveUpAfter = giveUpAfter
        }
    }

    /// Told about each final result so the journal can follow (mailed / mail failed).
    public typealias ResultHandler = @Sendable (_ envelope: Envelope, _ delivered: Bool, _ detail: String) async -> Void

    public nonisolated let directory: String
    private let sender: any MailSender
    private let settings: Settings
    private let logger: Logger
    private var onResult: ResultHandler?
    private let wakeup = Wakeup()
    /// Retry times the envelope file could not record (disk trouble): without them a failing message would be
    /// retried in a tight loop.
    private var retryAfter: [String: Date] = [:]
    /// First failed attempt since the last accepted mail (dashboard, /health/ready); nil while deliveries work.
    private var failingSince: Date?
    private var lastDeliveryError: String?

    public init(directory: String, sender: any MailSender, settings: Settings, logger: Logger) throws {
        self.directory = directory; self.sender = sender; self.settings = settings; self.logger = logger
        // 0700 whatever the umask: queued mails carry faxes (DurableFile.makeDirectory).
        try DurableFile.makeDirectory(directory)
        try DurableFile.makeDirectory(directory + "/failed")
        try DurableFile.makeDirectory(directory + "/sent")
    }

    public func setResultHandler(_ handler: @escaping ResultHandler) { onResult = handler }

    /// Stores the message durably and wakes the delivery loop. Returns once the mail is safe on disk.
    /// - Parameter fixedID: derived from the record the mail is about; every gateway mail has one. (Without it —
    ///   only one-shot CLI mails — a time-ordered random id is made.)
    public func enqueue(message: [UInt8], envelopeFrom: String, recipients: [String], callID: Int64?, id fixedID: String? = nil,
                        jobID: Int64? = nil) throws -> String {
        let id = fixedID ?? Self.newID()
        // A fixed id makes enqueueing idempotent: a step repeated after a crash does not mail twice.
        if fixedID != nil && isKnown(id) {
            logger.debug("mail already queued, sent or failed; not queued again", metadata: ["outbox": "\(id)"])
            return id
        }
        try DurableFile.write(message, to: "\(directory)/\(id).eml")
        let envelope = Envelope(id: id, envelopeFrom: envelopeFrom, recipients: recipients, callID: callID,
                                queuedAt: Date(), attempts: 0, nextAttemptAt: Date(), lastError: nil, jobID: jobID)
        try write(envelope)
        wakeup.signal()
        return id
    }

    /// True when a mail with this id is waiting, was accepted by the SMTP server, or was given up.
    public nonisolated func isKnown(_ id: String) -> Bool {
        ["\(directory)/\(id).json", "\(directory)/sent/\(id)", "\(directory)/failed/\(id).json", "\(directory)/failed/\(id).eml"]
            .contains { FileManager.default.fileExists(atPath: $0) }
    }

    /// Messages waiting for delivery (for `faxgate` status and tests).
    public nonisolated func pending() -> [Envelope] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: "\(directory)/\(name)").flatMap { try? Self.decoder.decode(Envelope.self, from: $0) }
        }
    }

    public func run() async throws {
        logger.info("outbox started", metadata: ["pending": "\(pending().count)"])
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let next = await deliverDue()
                let delay = max(0.05, min(next?.timeIntervalSinceNow ?? 3600, 3600))
                await wakeup.wait(timeout: .milliseconds(Int(delay * 1000)))
            }
        } onGracefulShutdown: { [wakeup] in
            // A message being handed to the server finishes; the rest stays queued for the next start.
            wakeup.signal()
        }
        logger.info("outbox stopped", metadata: ["pending": "\(pending().count)"])
    }

    /// The queue for the dashboard and /health/ready: waiting mails, the oldest, and whether deliveries fail.
    public func backlog() -> OutboxBacklog {
        let waiting = pending().filter { $0.failedAt == nil }
        let failed = ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/failed")) ?? []).filter { $0.hasSuffix(".eml") }.count
        return OutboxBacklog(count: waiting.count, oldestQueuedAt: waiting.map(\.queuedAt).min(), failingSince: failingSince,
                             lastError: failingSince == nil ? nil : lastDeliveryError, failed: failed,
                             retryBudget: Double(settings.giveUpAfter.components.seconds))
    }

    /// Lets `run` notice graceful shutdown promptly.
    public nonisolated func wake() { wakeup.signal() }

    /// Attempts every due message once; returns when the next one is due.
    func deliverDue() async -> Date? {
        var nextDue: Date?
        moveAsideUnreadableEnvelopes()
        for var envelope in pending() {
            if Task.isCancelled { break }
            let due = max(envelope.nextAttemptAt, retryAfter[envelope.id] ?? .distantPast)
            if due > Date() {
                nextDue = min(nextDue ?? due, due)
                continue
            }
            var meta: Logger.Metadata = ["outbox": "\(envelope.id)", "attempt": "\(envelope.attempts + 1)"]
            if let call = envelope.callID { meta["call"] = "\(call)" }
            if let job = envelope.jobID { meta["job"] = "\(job)" }
            let emlPath = "\(directory)/\(envelope.id).eml"
            if FileManager.default.fileExists(atPath: "\(directory)/sent/\(envelope.id)") {
                // Accepted by the server before a crash or a failed clean-up: never send it again, just finish.
                logger.notice("mail was accepted before the last stop; removing the queued copy", metadata: meta)
                await delivered(envelope, emlPath: emlPath, meta: meta)
                continue
            }
            if envelope.failedAt != nil {
                // Given up earlier but could not be moved aside: try the move again, never the delivery.
                await giveUp(envelope, emlPath: emlPath, meta: meta, error: envelope.lastError ?? "undeliverable")
                continue
            }
            guard let data = FileManager.default.contents(atPath: emlPath) else {
                envelope.lastError = "the queued message file is missing"
                await giveUp(envelope, emlPath: emlPath, meta: meta, error: "outbox envelope without message")
                continue
            }
            do {
                try await sender.send(envelopeFrom: envelope.envelopeFrom, recipients: envelope.recipients, message: [UInt8](data))
                // The server has the message now. First a durable marker (a crash from here on does not send
                // again), only then may our copy go.
                do {
                    try DurableFile.write([], to: "\(directory)/sent/\(envelope.id)")
                } catch {
                    logger.error("mail accepted, but the sent marker cannot be written (a crash now would send it again): \(error)", metadata: meta)
                }
                TestCrashPoint.reached("smtp-accepted")
                await delivered(envelope, emlPath: emlPath, meta: meta)
            } catch {
                envelope.attempts += 1
                envelope.lastError = error.description
                failingSince = failingSince ?? Date()
                lastDeliveryError = error.description
                let age = Date().timeIntervalSince(envelope.queuedAt)
                let giveUp = Double(settings.giveUpAfter.components.seconds)
                if !error.isTransient || age >= giveUp {
                    await self.giveUp(envelope, emlPath: emlPath, meta: meta, error: error.description)
                    continue
                }
                let initial = Double(settings.retryInitial.components.seconds) + Double(settings.retryInitial.components.attoseconds) / 1e18
                let maximum = Double(settings.retryMax.components.seconds)
                let delay = min(initial * pow(2, Double(envelope.attempts - 1)), max(maximum, initial))
                envelope.nextAttemptAt = Date().addingTimeInterval(delay)
                GatewayMetrics.outbox(.retried)
                logger.warning("mail deferred, retry in \(Int(delay.rounded())) s: \(error.description)", metadata: meta)
                do {
                    try write(envelope)
                    retryAfter[envelope.id] = nil
                } catch {
                    // The attempt count is lost with it, but the age limit (queuedAt) still ends the retries.
                    logger.error("cannot record the retry state: \(error)", metadata: meta)
                    retryAfter[envelope.id] = envelope.nextAttemptAt
                }
                nextDue = min(nextDue ?? envelope.nextAttemptAt, envelope.nextAttemptAt)
            }
        }
        return nextDue
    }

    /// After the server's 250 (and the durable sent marker): remove our copy and report.
    private func delivered(_ envelope: Envelope, emlPath: String, meta: Logger.Metadata) async {
        for path in ["\(directory)/\(envelope.id).json", emlPath] where FileManager.default.fileExists(atPath: path) {
            do { try FileManager.default.removeItem(atPath: path) } catch {
                // The sent marker keeps it from going out again; the next scan tries the removal again.
                logger.error("mail delivered, but its queued copy cannot be removed: \(error)", metadata: meta)
            }
        }
        do { try DurableFile.syncDirectory(directory) } catch {
            logger.error("cannot sync the outbox directory: \(error)", metadata: meta)
        }
        retryAfter[envelope.id] = nil
        failingSince = nil
        GatewayMetrics.outbox(.sent)
        GatewayMetrics.outboxDelivered(after: Date().timeIntervalSince(envelope.queuedAt))
        logger.info("mail delivered to SMTP server", metadata: meta.merging(["recipients": "\(envelope.recipients.count)"]) { $1 })
        await onResult?(envelope, true, "accepted by the SMTP server")
    }

    /// Final failure: the message goes to `outbox/failed/` and is never sent again. If it cannot be moved, the
    /// envelope is marked failed in place (so it is not sent again either) and the move is retried next scan.
    private func giveUp(_ envelope: Envelope, emlPath: String, meta: Logger.Metadata, error: String) async {
        var envelope = envelope
        let first = envelope.failedAt == nil
        if first {
            envelope.failedAt = Date()
            GatewayMetrics.outbox(.failed)
            logger.error("mail undeliverable, kept in outbox/failed: \(error)", metadata: meta)
        }
        var moved = true
        do {
            try write(envelope)
        } catch {
            logger.error("cannot record the failure in the envelope: \(error)", metadata: meta)
        }
        for (from, to) in [(emlPath, "\(directory)/failed/\(envelope.id).eml"),
                           ("\(directory)/\(envelope.id).json", "\(directory)/failed/\(envelope.id).json")]
        where FileManager.default.fileExists(atPath: from) {
            do {
                if FileManager.default.fileExists(atPath: to) { try FileManager.default.removeItem(atPath: to) }
                try FileManager.default.moveItem(atPath: from, toPath: to)
            } catch {
                moved = false
                logger.error("cannot move the undeliverable mail to outbox/failed: \(error)", metadata: meta)
            }
        }
        if moved {
            do { try DurableFile.syncDirectory(directory + "/failed"); try DurableFile.syncDirectory(directory) } catch {
                logger.error("cannot sync the outbox directories: \(error)", metadata: meta)
            }
        } else {
            // Not sent again (failedAt is set), but retried as a move after a pause.
            retryAfter[envelope.id] = Date().addingTimeInterval(60)
        }
        if first { await onResult?(envelope, false, error) }
    }

    /// An envelope that cannot be decoded would otherwise sit in the outbox unseen and unexpired.
    private func moveAsideUnreadableEnvelopes() {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            logger.error("cannot list the outbox: \(error)")
            return
        }
        for name in names where name.hasSuffix(".json") {
            let path = "\(directory)/\(name)"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            if (try? Self.decoder.decode(Envelope.self, from: data)) != nil { continue }  // the common case: readable
            let id = String(name.dropLast(5))
            logger.error("unreadable outbox envelope; moved to outbox/failed for the admin", metadata: ["outbox": "\(id)"])
            for suffix in [".json", ".eml"] where FileManager.default.fileExists(atPath: "\(directory)/\(id)\(suffix)") {
                do { try FileManager.default.moveItem(atPath: "\(directory)/\(id)\(suffix)", toPath: "\(directory)/failed/\(id)\(suffix)") } catch {
                    logger.error("cannot move the unreadable envelope aside: \(error)", metadata: ["outbox": "\(id)"])
                }
            }
        }
    }

    /// Time-ordered ids made of letters only: a long digit run would look like a phone number to the log
    /// redaction and turn into a pseudonym, which makes an id useless in a support case.
    static func newID() -> String {
        letterStamp(UInt64(Date().timeIntervalSince1970 * 1000)) + "-" + String((0..<6).map { _ in letters.randomElement()! })
    }

    /// A number written in letters (for ids that must survive log redaction).
    public static func letterStamp(_ value: UInt64) -> String {
        var n = value
        var text = ""
        repeat { text = String(letters[Int(n % UInt64(letters.count))]) + text; n /= UInt64(letters.count) } while n > 0
        return text
    }
    private static let letters = Array("abcdefghijkmnpqrstuvwxyz")

    private func write(_ envelope: Envelope) throws {
        let data = try Self.encoder.encode(envelope)
        try DurableFile.write([UInt8](data), to: "\(directory)/\(envelope.id).json")
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder(); e.dateEncodingStrategy = .iso8601; e.outputFormatting = [.prettyPrinted, .sortedKeys]; return e
    }()
    static let decoder: JSONDecoder = { let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601; return d }()
}
