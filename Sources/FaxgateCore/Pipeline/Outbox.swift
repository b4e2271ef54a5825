import Foundation
import Logging
import ServiceLifecycle

/// The durable mail outbox: every mail the gateway sends is first written here, then delivered.
///
/// Layout (Postfix-style, a state is a directory): `outbox/<id>.eml` holds the message, `outbox/<id>.json`
/// its envelope and retry state; the envelope is written last, so a crash between the two leaves an orphan
/// message that the next scan re-adopts, never a half-written one. After the SMTP server accepted the
/// message both files are removed. Messages that never get through move to `outbox/failed/`, never deleted.
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

    public init(directory: String, sender: any MailSender, settings: Settings, logger: Logger) throws {
        self.directory = directory; self.sender = sender; self.settings = settings; self.logger = logger
        try FileManager.default.createDirectory(atPath: directory + "/failed", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory + "/sent", withIntermediateDirectories: true)
    }

    public func setResultHandler(_ handler: @escaping ResultHandler) { onResult = handler }

    /// Stores the message durably and wakes the delivery loop. Returns once the mail is safe on disk.
    public func enqueue(message: [UInt8], envelopeFrom: String, recipients: [String], callID: Int64?, id fixedID: String? = nil) throws -> String {
        let id = fixedID ?? Self.newID()
        // A fixed id makes enqueueing idempotent: a step repeated after a crash does not mail twice.
        if fixedID != nil && (FileManager.default.fileExists(atPath: "\(directory)/\(id).json")
                              || FileManager.default.fileExists(atPath: "\(directory)/sent/\(id)")) {
            return id
        }
        try DurableFile.write(message, to: "\(directory)/\(id).eml")
        let envelope = Envelope(id: id, envelopeFrom: envelopeFrom, recipients: recipients, callID: callID,
                                queuedAt: Date(), attempts: 0, nextAttemptAt: Date(), lastError: nil)
        try write(envelope)
        wakeup.signal()
        return id
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

    /// Lets `run` notice graceful shutdown promptly.
    public nonisolated func wake() { wakeup.signal() }

    /// Attempts every due message once; returns when the next one is due.
    func deliverDue() async -> Date? {
        var nextDue: Date?
        for var envelope in pending() {
            if Task.isCancelled { break }
            if envelope.nextAttemptAt > Date() {
                nextDue = min(nextDue ?? envelope.nextAttemptAt, envelope.nextAttemptAt)
                continue
            }
            let emlPath = "\(directory)/\(envelope.id).eml"
            guard let data = FileManager.default.contents(atPath: emlPath) else {
                logger.error("outbox envelope without message; moved aside", metadata: ["outbox": "\(envelope.id)"])
                try? FileManager.default.moveItem(atPath: "\(directory)/\(envelope.id).json", toPath: "\(directory)/failed/\(envelope.id).json")
                continue
            }
            var meta: Logger.Metadata = ["outbox": "\(envelope.id)", "attempt": "\(envelope.attempts + 1)"]
            if let call = envelope.callID { meta["call"] = "\(call)" }
            do {
                try await sender.send(envelopeFrom: envelope.envelopeFrom, recipients: envelope.recipients, message: [UInt8](data))
                // The server has the message now: only then may our copy go.
                if envelope.callID == nil {
                    // Replies and reports have fixed ids; a marker keeps a repeated step from mailing again.
                    FileManager.default.createFile(atPath: "\(directory)/sent/\(envelope.id)", contents: nil)
                }
                try? FileManager.default.removeItem(atPath: "\(directory)/\(envelope.id).json")
                try? FileManager.default.removeItem(atPath: emlPath)
                try? DurableFile.syncDirectory(directory)
                logger.info("mail delivered to SMTP server", metadata: meta.merging(["recipients": "\(envelope.recipients.count)"]) { $1 })
                await onResult?(envelope, true, "accepted by the SMTP server")
            } catch {
                envelope.attempts += 1
                envelope.lastError = error.description
                let age = Date().timeIntervalSince(envelope.queuedAt)
                let giveUp = Double(settings.giveUpAfter.components.seconds)
                if !error.isTransient || age >= giveUp {
                    logger.error("mail undeliverable, kept in outbox/failed: \(error.description)", metadata: meta)
                    try? write(envelope)
                    try? FileManager.default.moveItem(atPath: emlPath, toPath: "\(directory)/failed/\(envelope.id).eml")
                    try? FileManager.default.moveItem(atPath: "\(directory)/\(envelope.id).json", toPath: "\(directory)/failed/\(envelope.id).json")
                    await onResult?(envelope, false, error.description)
                    continue
                }
                let initial = Double(settings.retryInitial.components.seconds) + Double(settings.retryInitial.components.attoseconds) / 1e18
                let maximum = Double(settings.retryMax.components.seconds)
                let delay = min(initial * pow(2, Double(envelope.attempts - 1)), max(maximum, initial))
                envelope.nextAttemptAt = Date().addingTimeInterval(delay)
                logger.warning("mail deferred, retry in \(Int(delay.rounded())) s: \(error.description)", metadata: meta)
                try? write(envelope)
                nextDue = min(nextDue ?? envelope.nextAttemptAt, envelope.nextAttemptAt)
            }
        }
        return nextDue
    }

    /// Time-ordered ids made of letters only: a long digit run would look like a phone number to the log
    /// redaction and turn into a pseudonym, which makes an id useless in a support case.
    static func newID() -> String {
        let letters = Array("abcdefghijkmnpqrstuvwxyz")
        var n = UInt64(Date().timeIntervalSince1970 * 1000)
        var time = ""
        while n > 0 { time = String(letters[Int(n % UInt64(letters.count))]) + time; n /= UInt64(letters.count) }
        return time + "-" + String((0..<6).map { _ in letters.randomElement()! })
    }

    private func write(_ envelope: Envelope) throws {
        let data = try Self.encoder.encode(envelope)
        try DurableFile.write([UInt8](data), to: "\(directory)/\(envelope.id).json")
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder(); e.dateEncodingStrategy = .iso8601; e.outputFormatting = [.prettyPrinted, .sortedKeys]; return e
    }()
    static let decoder: JSONDecoder = { let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601; return d }()
}
