import Foundation
import Logging
import ServiceLifecycle

/// The durable mail outbox: every mail the gateway sends is first written here, then delivered.
///
/// Where mails are kept is an `OutboxStore`: the node's spool directory (`FileOutboxStore`, its layout and
/// durability steps are described there) or a database table shared by several nodes (`SharedOutboxStorage`).
/// After the SMTP server accepted a message its sent record is made durable first, then the queued copy goes: a
/// crash in between finds the record and does not send again. Messages that never get through are kept for the
/// admin, never deleted by the outbox (retention removes them with their call or job).
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

        public init(id: String, envelopeFrom: String, recipients: [String], callID: Int64?, queuedAt: Date, attempts: Int,
                    nextAttemptAt: Date, lastError: String?, jobID: Int64? = nil, failedAt: Date? = nil) {
            self.id = id; self.envelopeFrom = envelopeFrom; self.recipients = recipients; self.callID = callID
            self.queuedAt = queuedAt; self.attempts = attempts; self.nextAttemptAt = nextAttemptAt; self.lastError = lastError
            self.jobID = jobID; self.failedAt = failedAt
        }
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
    public nonisolated let store: any OutboxStore
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

    /// The node's own spool directory (`FileOutboxStore`).
    public init(directory: String, sender: any MailSender, settings: Settings, logger: Logger) throws {
        let store = try FileOutboxStore(directory: directory, logger: logger)
        self.init(store: store, directory: directory, sender: sender, settings: settings, logger: logger)
    }

    /// Any store, e.g. a shared one; `directory` is only informative then (logs, statistics).
    public init(store: any OutboxStore, directory: String, sender: any MailSender, settings: Settings, logger: Logger) {
        self.store = store; self.directory = directory; self.sender = sender; self.settings = settings; self.logger = logger
    }

    public func setResultHandler(_ handler: @escaping ResultHandler) { onResult = handler }

    /// Stores the message durably and wakes the delivery loop. Returns once the mail is safe on disk.
    /// - Parameter fixedID: derived from the record the mail is about; every gateway mail has one. (Without it —
    ///   only one-shot CLI mails — a time-ordered random id is made.)
    public func enqueue(message: [UInt8], envelopeFrom: String, recipients: [String], callID: Int64?, id fixedID: String? = nil,
                        jobID: Int64? = nil) async throws -> String {
        let id = fixedID ?? Self.newID()
        let envelope = Envelope(id: id, envelopeFrom: envelopeFrom, recipients: recipients, callID: callID,
                                queuedAt: Date(), attempts: 0, nextAttemptAt: Date(), lastError: nil, jobID: jobID)
        // A fixed id makes enqueueing idempotent: a step repeated after a crash (or on another node) does not
        // mail twice. The store decides, atomically where it is shared.
        guard try await store.add(envelope, message: message) else {
            logger.debug("mail already queued, sent or failed; not queued again", metadata: ["outbox": "\(id)"])
            return id
        }
        wakeup.signal()
        return id
    }

    /// True when a mail with this id is waiting, was accepted by the SMTP server, or was given up. A store that
    /// cannot answer says "known": callers use this to skip queueing, and `enqueue` itself is idempotent.
    public nonisolated func isKnown(_ id: String) async -> Bool {
        do { return try await store.isKnown(id) } catch {
            logger.error("cannot look up an outbox id: \(error)", metadata: ["outbox": "\(id)"])
            return true
        }
    }

    /// Messages waiting for delivery (for `faxgate` status and tests); empty when the store cannot be read
    /// (logged).
    public nonisolated func pending() async -> [Envelope] {
        do { return try await store.pending() } catch {
            logger.error("cannot list the outbox: \(error)")
            return []
        }
    }

    public func run() async throws {
        let waiting = await pending().count
        logger.info("outbox started", metadata: ["pending": "\(waiting)"])
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let next = await deliverDue()
                // A shared store also holds mails other nodes queued (and may die before sending): rescan it.
                let delay = max(0.05, min(next?.timeIntervalSinceNow ?? 3600, store.rescanInterval ?? 3600))
                await wakeup.wait(timeout: .milliseconds(Int(delay * 1000)))
            }
        } onGracefulShutdown: { [wakeup] in
            // A message being handed to the server finishes; the rest stays queued for the next start.
            wakeup.signal()
        }
        let left = await pending().count
        logger.info("outbox stopped", metadata: ["pending": "\(left)"])
    }

    /// The queue for the dashboard and /health/ready: waiting mails, the oldest, and whether deliveries fail.
    public func backlog() async -> OutboxBacklog {
        let waiting = await pending().filter { $0.failedAt == nil }
        let failed = (try? await store.failedCount()) ?? 0
        return OutboxBacklog(count: waiting.count, oldestQueuedAt: waiting.map(\.queuedAt).min(), failingSince: failingSince,
                             lastError: failingSince == nil ? nil : lastDeliveryError, failed: failed,
                             retryBudget: Double(settings.giveUpAfter.components.seconds))
    }

    /// Lets `run` notice graceful shutdown promptly.
    public nonisolated func wake() { wakeup.signal() }

    /// Attempts every due message once; returns when the next one is due.
    func deliverDue() async -> Date? {
        var nextDue: Date?
        await store.sweepUnreadable()
        let listed: [Envelope]
        do { listed = try await store.pending() } catch {
            // Fail closed: nothing is sent while the store cannot be read; try again soon.
            logger.error("cannot list the outbox: \(error)")
            return Date().addingTimeInterval(5)
        }
        for var envelope in listed {
            if Task.isCancelled { break }
            let due = max(envelope.nextAttemptAt, retryAfter[envelope.id] ?? .distantPast)
            if due > Date() {
                nextDue = min(nextDue ?? due, due)
                continue
            }
            var meta: Logger.Metadata = ["outbox": "\(envelope.id)", "attempt": "\(envelope.attempts + 1)"]
            if let call = envelope.callID { meta["call"] = "\(call)" }
            if let job = envelope.jobID { meta["job"] = "\(job)" }
            let alreadySent: Bool
            do { alreadySent = try await store.wasSent(envelope.id) } catch {
                logger.error("cannot check whether the mail was sent; not sending it now: \(error)", metadata: meta)
                continue
            }
            if alreadySent {
                // Accepted by the server before a crash or a failed clean-up: never send it again, just finish.
                logger.notice("mail was accepted before the last stop; removing the queued copy", metadata: meta)
                await delivered(envelope, meta: meta)
                continue
            }
            if envelope.failedAt != nil {
                // Given up earlier but could not be moved aside: try the move again, never the delivery.
                await giveUp(envelope, meta: meta, error: envelope.lastError ?? "undeliverable")
                continue
            }
            let data: [UInt8]
            do {
                switch try await store.take(envelope) {
                case .message(let stored, let bytes):
                    envelope = stored; data = bytes
                case .heldElsewhere:
                    // Another node is sending it or deferred it; look again soon: that node may die holding it.
                    let again = Date().addingTimeInterval(2)
                    nextDue = min(nextDue ?? again, again)
                    continue
                case .sent:
                    await delivered(envelope, meta: meta)
                    continue
                case .missing:
                    envelope.lastError = "the queued message file is missing"
                    await giveUp(envelope, meta: meta, error: "outbox envelope without message")
                    continue
                }
            } catch {
                logger.error("cannot take the mail for delivery: \(error)", metadata: meta)
                continue
            }
            do {
                try await sender.send(envelopeFrom: envelope.envelopeFrom, recipients: envelope.recipients, message: data)
                // The server has the message now. First a durable marker (a crash from here on does not send
                // again), only then may our copy go.
                do {
                    try await store.markSent(envelope)
                } catch {
                    logger.error("mail accepted, but the sent marker cannot be written (a crash now would send it again): \(error)", metadata: meta)
                }
                TestCrashPoint.reached("smtp-accepted")
                await delivered(envelope, meta: meta)
            } catch {
                envelope.attempts += 1
                envelope.lastError = error.description
                failingSince = failingSince ?? Date()
                lastDeliveryError = error.description
                let age = Date().timeIntervalSince(envelope.queuedAt)
                let giveUp = Double(settings.giveUpAfter.components.seconds)
                if !error.isTransient || age >= giveUp {
                    await self.giveUp(envelope, meta: meta, error: error.description)
                    continue
                }
                let initial = Double(settings.retryInitial.components.seconds) + Double(settings.retryInitial.components.attoseconds) / 1e18
                let maximum = Double(settings.retryMax.components.seconds)
                let delay = min(initial * pow(2, Double(envelope.attempts - 1)), max(maximum, initial))
                envelope.nextAttemptAt = Date().addingTimeInterval(delay)
                GatewayMetrics.outbox(.retried)
                logger.warning("mail deferred, retry in \(Int(delay.rounded())) s: \(error.description)", metadata: meta)
                do {
                    try await store.recordRetry(envelope)
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
    private func delivered(_ envelope: Envelope, meta: Logger.Metadata) async {
        await store.removeQueued(envelope, meta: meta)
        retryAfter[envelope.id] = nil
        failingSince = nil
        GatewayMetrics.outbox(.sent)
        GatewayMetrics.outboxDelivered(after: Date().timeIntervalSince(envelope.queuedAt))
        logger.info("mail delivered to SMTP server", metadata: meta.merging(["recipients": "\(envelope.recipients.count)"]) { $1 })
        await onResult?(envelope, true, "accepted by the SMTP server")
    }

    /// Final failure: the message is kept for the admin (`outbox/failed/`) and never sent again. If it cannot be
    /// put aside, it stays marked failed in place (so it is not sent again either) and is retried next scan.
    private func giveUp(_ envelope: Envelope, meta: Logger.Metadata, error: String) async {
        var envelope = envelope
        let first = envelope.failedAt == nil
        if first {
            envelope.failedAt = Date()
            GatewayMetrics.outbox(.failed)
            logger.error("mail undeliverable, kept in outbox/failed: \(error)", metadata: meta)
        }
        if !(await store.markFailed(envelope, meta: meta)) {
            // Not sent again (failedAt is set), but retried as a move after a pause.
            retryAfter[envelope.id] = Date().addingTimeInterval(60)
        }
        if first { await onResult?(envelope, false, error) }
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

    static let encoder: JSONEncoder = {
        let e = JSONEncoder(); e.dateEncodingStrategy = .iso8601; e.outputFormatting = [.prettyPrinted, .sortedKeys]; return e
    }()
    static let decoder: JSONDecoder = { let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601; return d }()
}
