import FaxgateCore
import Foundation
import Logging
import MailIn
import ServiceLifecycle
import Synchronization

/// Watches one IMAP mailbox for fax orders: IDLE where the server has it, polling otherwise.
///
/// Exactly once: a message is first written to `<spool>/intake/` (fsynced) and recorded in the intake
/// ledger under (mailbox, UIDVALIDITY, UID); only then is it processed, and only after the decision is stored
/// is it moved to the Processed or Rejected folder. A crash at any point leaves either an unrecorded message
/// (fetched again), a recorded but undecided one (decided on restart), or a decided but unmoved one (moved on
/// restart) — never a lost or repeated fax. A mailbox recreated with a new UIDVALIDITY is covered by Message-ID.
public actor IMAPIntake: Service, MailIntakeStatusReporting {
    public struct Settings: Sendable {
        public var name: String
        public var imap: IMAPSettings
        public var folder: String
        public var processedFolder: String
        public var rejectedFolder: String
        public var poll: Duration
        public var maxMessageBytes: Int
        public var spoolDirectory: String
        public init(name: String, imap: IMAPSettings, folder: String, processedFolder: String, rejectedFolder: String,
                    poll: Duration, maxMessageBytes: Int, spoolDirectory: String) {
            self.name = name; self.imap = imap; self.folder = folder; self.processedFolder = processedFolder
            self.rejectedFolder = rejectedFolder; self.poll = poll; self.maxMessageBytes = maxMessageBytes
            self.spoolDirectory = spoolDirectory
        }
    }

    private let settings: Settings
    private let storage: any Storage
    private let processor: SubmissionProcessor
    private let logger: Logger
    private var backoff: Duration = .seconds(1)
    private let stop = ShutdownSignal()
    // For the dashboard and /health/ready (intakeStatus): the session's state as this actor last saw it.
    private var connected = false
    private var lastPollAt: Date?
    private var lastError: String?
    private var lastErrorAt: Date?

    public init(settings: Settings, storage: any Storage, processor: SubmissionProcessor, logger: Logger) throws {
        self.settings = settings; self.storage = storage; self.processor = processor; self.logger = logger
        try DurableFile.makeDirectory(settings.spoolDirectory + "/intake")  // 0700 whatever the umask
    }

    public func run() async throws {
        // SIGTERM must not wait for poll_seconds (issue 8, point 14): graceful shutdown interrupts the IDLE of
        // the current session (its own thread sends DONE) and wakes the poll and back-off sleeps.
        await withGracefulShutdownHandler {
            await loop()
        } onGracefulShutdown: { [stop] in
            stop.request()
        }
        logger.info("mailbox watcher stopped", metadata: ["mailbox": "\(settings.name)"])
    }

    /// The mailbox's state for the dashboard and readiness (index 0: the gateway numbers its intakes).
    public func intakeStatus() -> MailboxSnapshot {
        MailboxSnapshot(index: 0, name: settings.name, connected: connected, lastPollAt: lastPollAt, lastError: lastError,
                        lastErrorAt: lastErrorAt)
    }

    private var stopping: Bool { stop.requested || Task.isShuttingDownGracefully || Task.isCancelled }

    private func loop() async {
        while !stopping {
            let connection = IMAPConnection(settings: settings.imap)
            stop.watch(connection)
            do {
                try await session(connection)
            } catch is CancellationError {
                stop.watch(nil)
                await connection.close()
                break
            } catch {
                lastError = "\(error)"
                lastErrorAt = Date()
                logger.error("mailbox \(settings.name): \(error); retrying in \(backoff)", metadata: ["mailbox": "\(settings.name)"])
            }
            connected = false
            stop.watch(nil)
            await connection.close()
            if stopping { break }
            await stop.wakeup.wait(timeout: backoff)
            backoff = min(backoff * 2, .seconds(300))
        }
    }

    private func session(_ c: IMAPConnection) async throws {
        try await c.connect()  // verifies the certificate chain and host name before anything else
        try await c.login()
        _ = try await c.capability()
        for folder in [settings.processedFolder, settings.rejectedFolder] {
            do { try await c.create(folder) } catch {
                // Not fatal here, but every move into it will fail and say so; the admin should know why.
                logger.warning("mailbox \(settings.name): cannot create folder \(folder): \(error)", metadata: ["mailbox": "\(settings.name)"])
            }
        }
        let selected = try await c.select(settings.folder)
        backoff = .seconds(1)
        connected = true
        logger.info("watching mailbox", metadata: [
            "mailbox": "\(settings.name)", "folder": "\(settings.folder)", "idle": "\(c.supportsIdle)", "messages": "\(selected.exists)",
        ])
        let uidValidity = Int64(selected.uidValidity)
        while !stopping {
            let uids = try await c.uidSearchAll()
            lastPollAt = Date()
            for uid in uids {
                // Between messages only: a message being taken is finished (each step is safe to repeat anyway).
                if stopping { break }
                try await take(uid: uid, uidValidity: uidValidity, connection: c)
            }
            if stopping { break }
            try await finishMoves(uidValidity: uidValidity, present: Set(uids), connection: c)
            if c.supportsIdle {
                _ = try await c.idle(timeout: settings.poll)
            } else {
                await stop.wakeup.wait(timeout: settings.poll)
            }
        }
        do { try await c.logout() } catch {
            logger.debug("mailbox \(settings.name): LOGOUT failed: \(error)", metadata: ["mailbox": "\(settings.name)"])
        }
    }

    /// Fetch → store → record → decide → move, each step safe to repeat.
    private func take(uid: UInt32, uidValidity: Int64, connection c: IMAPConnection) async throws {
        let rawPath = "\(settings.spoolDirectory)/intake/\(settings.name)-\(uidValidity)-\(uid).eml"
        var record: IntakeRecord
        let seen = ContinuousClock.now  // the message is in the mailbox (IDLE EXISTS or poll): latency starts
        let known = try await storage.intakes(source: settings.name, movedOnServer: false)
            .first { $0.uidValidity == uidValidity && $0.uid == Int64(uid) }
        if let known {
            record = known
        } else {
            let size = try await c.fetchSize(uid)
            // Over the limit: keep only the headers (enough to answer), never the whole message.
            let raw = try await c.fetchRaw(uid)
            let stored = size > settings.maxMessageBytes ? Array(Self.headerBlock(of: raw)) : raw
            try DurableFile.write(stored, to: rawPath)
            let messageID = RawMailHeaders.value(of: "Message-ID", in: stored)
            (record, _) = try await storage.recordIntake(IntakeRecord(source: settings.name, uidValidity: uidValidity, uid: Int64(uid),
                                                                      messageID: messageID, rawPath: rawPath))
            if size > settings.maxMessageBytes, record.state == .fetched {
                let mail = Self.headersOnlyMail(stored)
                record = try await processor.refuse(mail, intake: record, .init(
                    SubmissionReason.tooLarge(megabytes: size / 1_048_576, limit: settings.maxMessageBytes / 1_048_576)))
            }
            // Same message seen in an earlier generation of this mailbox (UIDVALIDITY changed): never fax twice.
            if record.state == .fetched, let messageID, let earlier = try await storage.intake(messageID: messageID),
               earlier.id != record.id, earlier.state != .fetched {
                record.state = .ignored
                record.detail = "duplicate of intake #\(earlier.id ?? 0) (same Message-ID)"
                try await storage.updateIntake(record)
            }
        }
        if record.state == .fetched {
            record = try await decide(record)
        }
        if known == nil || known?.state == .fetched {
            // Decided in this pass (not a decided message waiting only for its move).
            GatewayMetrics.intakeDecided(record.state, source: .imap)
            GatewayMetrics.intakeLatency(GatewayMetrics.seconds(since: seen), source: .imap)
        }
        try await move(record, connection: c)
    }

    private func decide(_ record: IntakeRecord) async throws -> IntakeRecord {
        guard let data = FileManager.default.contents(atPath: record.rawPath) else {
            throw IntakeFailure("stored message \(record.rawPath) is missing")
        }
        let raw = [UInt8](data)
        // A message whose conversion brought the daemon down would do so again after every restart:
        // count attempts beside the stored mail, and after three the sender hears that it could not be read.
        // (Three, not one: an admin's kill -9 or a power cut mid-conversion is no reason to refuse a mail.)
        let marker = record.rawPath + ".attempts"
        let attempts = FileManager.default.contents(atPath: marker).flatMap { Int(String(decoding: $0, as: UTF8.self)) } ?? 0
        if attempts >= 3 {
            removeAttemptsMarker(marker)
            logger.error("message stopped the gateway three times while being converted; refusing it", metadata: ["intake": "\(record.id ?? 0)"])
            return try await processor.refuse(Self.headersOnlyMail(raw), intake: record, .init(
                SubmissionReason.stoppedGateway))
        }
        try DurableFile.write(Array("\(attempts + 1)".utf8), to: marker)
        defer { removeAttemptsMarker(marker) }
        do {
            var limits = MIMELimits()
            limits.maxBytes = settings.maxMessageBytes
            let parsed = try MIMEParser(limits: limits).parse(raw)
            return try await processor.process(IncomingMail(parsed), intake: record)
        } catch let error as MIMEError {
            return try await processor.refuse(Self.headersOnlyMail(raw), intake: record,
                                              .init(SubmissionReason.unreadable, adminNotes: [error.description]))
        }
    }

    /// A marker left behind would outlive retention (which knows the stored mail, not this file): say so.
    private func removeAttemptsMarker(_ marker: String) {
        do { try FileManager.default.removeItem(atPath: marker) } catch {
            if FileManager.default.fileExists(atPath: marker) {
                logger.error("cannot remove the conversion attempt counter \(marker): \(error)", metadata: ["mailbox": "\(settings.name)"])
            }
        }
    }

    private func move(_ record: IntakeRecord, connection c: IMAPConnection) async throws {
        guard !record.moved, record.state != .fetched else { return }
        let target = record.state == .rejected ? settings.rejectedFolder : settings.processedFolder
        _ = try await c.move(UInt32(record.uid), to: target)
        TestCrashPoint.reached("imap-move")
        var moved = record
        moved.moved = true
        try await storage.updateIntake(moved)
    }

    /// Records decided in an earlier run whose message is no longer in the folder were moved before a crash.
    private func finishMoves(uidValidity: Int64, present: Set<UInt32>, connection c: IMAPConnection) async throws {
        for var record in try await storage.intakes(source: settings.name, movedOnServer: false)
            where record.state != .fetched && (record.uidValidity != uidValidity || !present.contains(UInt32(record.uid))) {
            record.moved = true
            try await storage.updateIntake(record)
        }
    }

    static func headerBlock(of raw: [UInt8]) -> ArraySlice<UInt8> {
        let crlf: [UInt8] = [13, 10, 13, 10]
        var i = 0
        while i + 3 < raw.count {
            if raw[i] == 13 && Array(raw[i..<i + 4]) == crlf { return raw[..<(i + 4)] }
            if raw[i] == 10 && raw[i + 1] == 10 { return raw[..<(i + 2)] }
            i += 1
        }
        return raw.prefix(64 * 1024)
    }

    /// Just enough to answer a message we will not parse: sender, subject, ids and loop markers.
    static func headersOnlyMail(_ raw: [UInt8]) -> IncomingMail {
        let block = Array(headerBlock(of: raw))
        let from = RawMailHeaders.value(of: "From", in: block).flatMap { MailboxSyntax.address(in: $0)?.address }
        var headers: [(name: String, value: String)] = []
        for name in ["Auto-Submitted", "Precedence", "List-Id"] {
            if let v = RawMailHeaders.value(of: name, in: block) { headers.append((name, v)) }
        }
        return IncomingMail(fromAddress: from, returnPath: RawMailHeaders.value(of: "Return-Path", in: block), to: [],
                            subject: RawMailHeaders.value(of: "Subject", in: block) ?? "", messageID: RawMailHeaders.value(of: "Message-ID", in: block),
                            headers: headers)
    }
}

/// How graceful shutdown reaches the intake's loop from outside the actor.
private final class ShutdownSignal: Sendable {
    private let state = Mutex<(requested: Bool, connection: IMAPConnection?)>((false, nil))
    let wakeup = Wakeup()

    var requested: Bool { state.withLock { $0.requested } }

    func request() {
        let connection = state.withLock { s -> IMAPConnection? in s.requested = true; return s.connection }
        connection?.interrupt()
        wakeup.signal()
    }

    /// The connection whose IDLE a shutdown must interrupt (nil between sessions).
    func watch(_ connection: IMAPConnection?) {
        let requested = state.withLock { s -> Bool in s.connection = connection; return s.requested }
        if requested { connection?.interrupt() }
    }
}

struct IntakeFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
