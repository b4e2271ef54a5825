import FaxgateCore
import Foundation

/// Art. 30 record, subject export and erasure, legal holds, snapshots, retention audit.
/// Implemented in FaxgateApp (WebPrivacyOperations) over the same functions the `gdpr`, `snapshot` and
/// `retention` commands call, so page and CLI cannot drift apart. Every method works on the live configuration.
public protocol PrivacyOperations: Sendable {
    /// The Art. 30 record of processing from the live configuration (what `faxgate gdpr record` prints).
    func record() async -> ProcessingRecord
    /// A telephone number or e-mail address as a data subject; nil when it is neither.
    func subject(_ text: String) -> SubjectID?

    /// Everything about `subject` in an AES-256 ZIP written under `exportDirectory`; the passphrase in the result is
    /// the only copy.
    func exportSubject(_ subject: SubjectID) async throws -> SubjectExport
    /// Where exports wait for their one download (0700, under the spool).
    var exportDirectory: String { get }
    /// Art. 17 erasure; refused as a whole for a subject under legal hold.
    func eraseSubject(_ subject: SubjectID, dryRun: Bool) async throws -> SubjectErasure

    /// Holds from the configuration (read-only here) and from storage (`gdpr hold` or this page).
    func holds() async throws -> [PrivacyHold]
    func addHold(_ subject: SubjectID, reason: String) async throws
    /// False when storage has no hold for the subject (a configured one stays).
    func releaseHold(_ subject: SubjectID) async throws -> Bool

    /// Newest first.
    func snapshots() -> [SnapshotInfo]
    /// The ZIP of a listed snapshot; nil for any name `snapshots` does not list.
    func snapshotPath(named name: String) -> String?
    /// Runs what `faxgate snapshot create --from --to` runs (seconds of work, off the caller's executor). Days are
    /// `YYYY-MM-DD` (UTC) or nil; a malformed one throws `BadSnapshotDay`.
    func createSnapshot(fromDay: String?, toDay: String?) async throws -> CreatedSnapshot
    func deleteSnapshot(named name: String) async throws -> DeletionCounts

    /// The retention audit trail (counts only), newest first.
    func retentionAudit(limit: Int) async throws -> [AuditRecord]
    /// What `faxgate retention run [--dry-run]` does.
    func retentionRun(dryRun: Bool) async throws -> RetentionReport
}

public struct SubjectExport: Sendable {
    public var path: String
    public var items: Int
    /// Shown once on the result page; never stored, logged or audited.
    public var passphrase: String
    public init(path: String, items: Int, passphrase: String) { self.path = path; self.items = items; self.passphrase = passphrase }
}

public enum SubjectErasure: Sendable {
    case refused(PrivacyHold)
    /// `logFiles`: log files from which the subject's pseudonym was removed.
    case done(RetentionReport, logFiles: Int)
}

public struct PrivacyHold: Sendable, Equatable {
    public var subject: SubjectID
    public var reason: String
    public var since: Date?
    /// From `privacy.legal_holds`: changed in the configuration, not released here.
    public var fromConfiguration: Bool
    public init(subject: SubjectID, reason: String, since: Date?, fromConfiguration: Bool) {
        self.subject = subject; self.reason = reason; self.since = since; self.fromConfiguration = fromConfiguration
    }
}

public struct CreatedSnapshot: Sendable {
    public var info: SnapshotInfo
    /// Shown exactly once on the response page; never stored, logged or audited.
    public var passphrase: String
    public init(info: SnapshotInfo, passphrase: String) { self.info = info; self.passphrase = passphrase }
}

public struct BadSnapshotDay: Error, Sendable, CustomStringConvertible {
    public var text: String
    public init(text: String) { self.text = text }
    public var description: String { "dates are YYYY-MM-DD, not '\(text)'" }
}
