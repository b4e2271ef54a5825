import Foundation

/// A legal hold as stored, with why and since when (the web's holds page; `gdpr holds`).
public struct LegalHold: Sendable, Equatable {
    public var subject: SubjectID
    public var reason: String
    public var since: Date
    public init(subject: SubjectID, reason: String, since: Date) { self.subject = subject; self.reason = reason; self.since = since }
}

/// What the privacy commands and pages need from a storage plugin beyond `Storage`: the audit trail, legal holds,
/// its own retention categories and counts. A protocol, so the assembly asks for a capability and never names a
/// concrete plugin; a plugin without it simply has no retention (serve says so).
public protocol PrivacyStorage: AuditTrail, LegalHoldStore {
    /// Creates the audit and legal-hold tables. Idempotent.
    func migratePrivacy() async throws
    /// Holds set with `gdpr hold` (or the web), with reason and time, oldest first.
    func holdDetails() async throws -> [LegalHold]
    /// Counts only (support snapshots).
    func statistics() async throws -> [String: Int]
    /// Which retention categories hold data right now (the record of processing).
    func storedDataKinds() async throws -> Set<String>
    /// The retention categories whose data lives in this storage, in report order.
    func retentionCategories(spoolDirectory: String, countryCode: String?) -> [any RetentionCategory]
}
