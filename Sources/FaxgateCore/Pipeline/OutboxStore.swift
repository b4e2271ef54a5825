import Foundation
import Logging

/// Where the outbox keeps its mails: what `Outbox` needs, so one delivery code path runs over the per-node
/// spool directory (`FileOutboxStore`) or a table several nodes share (`SharedOutboxStorage`).
///
/// Ids are derived from the record a mail is about; an id once queued stays known (queued, sent or failed) so a
/// step repeated after a crash — or on another node — never queues the mail a second time.
public protocol OutboxStore: Sendable {
    /// Stores message and envelope durably. False (and nothing stored) when the id is already queued, sent or failed.
    func add(_ envelope: Outbox.Envelope, message: [UInt8]) async throws -> Bool
    /// True when a mail with this id is waiting, was accepted by the SMTP server, or was given up.
    func isKnown(_ id: String) async throws -> Bool
    /// Mails waiting for delivery (including given-up ones not yet moved aside), ordered by id.
    func pending() async throws -> [Outbox.Envelope]
    /// The message for one delivery attempt. A shared store claims it (a lease) so no other node sends it
    /// meanwhile; the envelope returned is the stored one (another node may have advanced its retry state).
    func take(_ envelope: Outbox.Envelope) async throws -> OutboxTake
    /// True when the SMTP server accepted the mail already (a crash after the 250 must not send it again).
    func wasSent(_ id: String) async throws -> Bool
    /// Records, durably, that the server accepted the mail. Must be done before the queued copy goes.
    func markSent(_ envelope: Outbox.Envelope) async throws
    /// After `markSent`: drops the queued copy (errors are logged; the sent record keeps it from going out again).
    func removeQueued(_ envelope: Outbox.Envelope, meta: Logger.Metadata) async
    /// Stores attempts, next attempt and last error after a failed attempt (and releases a claim).
    func recordRetry(_ envelope: Outbox.Envelope) async throws
    /// Final failure (`envelope.failedAt` set): kept for the admin, never sent again. False when it could not be
    /// put aside completely (then it stays pending with failedAt set and the outbox tries again later).
    func markFailed(_ envelope: Outbox.Envelope, meta: Logger.Metadata) async -> Bool
    /// Mails given up (for the dashboard).
    func failedCount() async throws -> Int
    /// Puts entries that cannot be read aside for the admin (otherwise they would sit unseen and unexpired).
    func sweepUnreadable() async
    /// How often the outbox looks again without a wake-up (a shared store: other nodes' mails); nil: only when due.
    var rescanInterval: TimeInterval? { get }
}

extension OutboxStore {
    public var rescanInterval: TimeInterval? { nil }
}

public enum OutboxTake: Sendable {
    /// Ours to send now.
    case message(Outbox.Envelope, [UInt8])
    /// Another node holds it (or it is not due any more): skip it this round.
    case heldElsewhere
    /// The envelope has no message (lost file): give up on it.
    case missing
    /// Accepted by the server already (found between listing and taking): finish it, never send it.
    case sent
}

/// The capability of a storage plugin to keep the outbox in its database, shared by every node on it.
public protocol SharedOutboxStorage: Sendable {
    /// A store for this node; a mail it claims is held for `lease` (renewed by nothing: a send takes far less),
    /// then another node may send it (the node died mid-attempt).
    func sharedOutboxStore(lease: Duration, logger: Logger) -> any OutboxStore
}

/// The per-node spool directory (Postfix-style, a state is a directory): `outbox/<id>.eml` holds the message,
/// `outbox/<id>.json` its envelope and retry state; the envelope is written last, so a crash between the two
/// leaves an orphan message that the next scan re-adopts, never a half-written one. After the SMTP server
/// accepted the message a marker `outbox/sent/<id>` is made durable first, then both files are removed: a crash
/// in between finds the marker and does not send again. Messages that never get through move to
/// `outbox/failed/`, never deleted by the outbox (retention removes them with their call or job).
public struct FileOutboxStore: OutboxStore {
    public let directory: String
    private let logger: Logger

    public init(directory: String, logger: Logger) throws {
        self.directory = directory; self.logger = logger
        // 0700 whatever the umask: queued mails carry faxes (DurableFile.makeDirectory).
        try DurableFile.makeDirectory(directory)
        try DurableFile.makeDirectory(directory + "/failed")
        try DurableFile.makeDirectory(directory + "/sent")
    }

    public func add(_ envelope: Outbox.Envelope, message: [UInt8]) async throws -> Bool {
        if knownSync(envelope.id) { return false }
        try DurableFile.write(message, to: "\(directory)/\(envelope.id).eml")
        try write(envelope)
        return true
    }

    public func isKnown(_ id: String) async throws -> Bool { knownSync(id) }

    private func knownSync(_ id: String) -> Bool {
        ["\(directory)/\(id).json", "\(directory)/sent/\(id)", "\(directory)/failed/\(id).json", "\(directory)/failed/\(id).eml"]
            .contains { FileManager.default.fileExists(atPath: $0) }
    }

    public func pending() async throws -> [Outbox.Envelope] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().compactMap { name in
            FileManager.default.contents(atPath: "\(directory)/\(name)").flatMap { try? Outbox.decoder.decode(Outbox.Envelope.self, from: $0) }
        }
    }

    public func take(_ envelope: Outbox.Envelope) async throws -> OutboxTake {
        // One node owns this directory: nothing to claim.
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(envelope.id).eml") else { return .missing }
        return .message(envelope, [UInt8](data))
    }

    public func wasSent(_ id: String) async throws -> Bool {
        FileManager.default.fileExists(atPath: "\(directory)/sent/\(id)")
    }

    public func markSent(_ envelope: Outbox.Envelope) async throws {
        try DurableFile.write([], to: "\(directory)/sent/\(envelope.id)")
    }

    public func removeQueued(_ envelope: Outbox.Envelope, meta: Logger.Metadata) async {
        for path in ["\(directory)/\(envelope.id).json", "\(directory)/\(envelope.id).eml"] where FileManager.default.fileExists(atPath: path) {
            do { try FileManager.default.removeItem(atPath: path) } catch {
                // The sent marker keeps it from going out again; the next scan tries the removal again.
                logger.error("mail delivered, but its queued copy cannot be removed: \(error)", metadata: meta)
            }
        }
        do { try DurableFile.syncDirectory(directory) } catch {
            logger.error("cannot sync the outbox directory: \(error)", metadata: meta)
        }
    }

    public func recordRetry(_ envelope: Outbox.Envelope) async throws { try write(envelope) }

    /// The message goes to `outbox/failed/`. If it cannot be moved, the envelope is marked failed in place (so
    /// it is not sent again either) and the move is retried next scan.
    public func markFailed(_ envelope: Outbox.Envelope, meta: Logger.Metadata) async -> Bool {
        var moved = true
        do {
            try write(envelope)
        } catch {
            logger.error("cannot record the failure in the envelope: \(error)", metadata: meta)
        }
        for (from, to) in [("\(directory)/\(envelope.id).eml", "\(directory)/failed/\(envelope.id).eml"),
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
        }
        return moved
    }

    public func failedCount() async throws -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/failed")) ?? []).filter { $0.hasSuffix(".eml") }.count
    }

    /// An envelope that cannot be decoded would otherwise sit in the outbox unseen and unexpired.
    public func sweepUnreadable() async {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            logger.error("cannot list the outbox: \(error)")
            return
        }
        for name in names where name.hasSuffix(".json") {
            let path = "\(directory)/\(name)"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            if (try? Outbox.decoder.decode(Outbox.Envelope.self, from: data)) != nil { continue }  // the common case: readable
            let id = String(name.dropLast(5))
            logger.error("unreadable outbox envelope; moved to outbox/failed for the admin", metadata: ["outbox": "\(id)"])
            for suffix in [".json", ".eml"] where FileManager.default.fileExists(atPath: "\(directory)/\(id)\(suffix)") {
                do { try FileManager.default.moveItem(atPath: "\(directory)/\(id)\(suffix)", toPath: "\(directory)/failed/\(id)\(suffix)") } catch {
                    logger.error("cannot move the unreadable envelope aside: \(error)", metadata: ["outbox": "\(id)"])
                }
            }
        }
    }

    private func write(_ envelope: Outbox.Envelope) throws {
        let data = try Outbox.encoder.encode(envelope)
        try DurableFile.write([UInt8](data), to: "\(directory)/\(envelope.id).json")
    }
}
