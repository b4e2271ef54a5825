import Foundation

/// Records and document blobs. The embedded default is SQLite (Plugins/SQLiteStorage); a PostgreSQL
/// plugin serves installations with several nodes. Every implementation runs the shared conformance test.
public protocol Storage: AccountStorage, SettingsStorage {
    /// Creates or upgrades the schema. Called once before anything else.
    func migrate() async throws
    /// Inserts a new call and returns it with its id.
    func insertCall(_ record: CallRecord, event: String) async throws -> CallRecord
    /// Writes the record and a history event in one transaction.
    func updateCall(_ record: CallRecord, event: String) async throws
    func call(id: Int64) async throws -> CallRecord?
    /// Newest first.
    func recentCalls(limit: Int) async throws -> [CallRecord]
    func calls(in states: Set<CallRecord.State>) async throws -> [CallRecord]
    func events(callID: Int64) async throws -> [CallEvent]
    func putDocument(_ document: StoredDocument) async throws
    func documents(callID: Int64) async throws -> [StoredDocument]

    // MARK: Outgoing faxes
    /// Inserts the jobs and moves the intake record to its new state, in one transaction.
    func insertJobs(_ jobs: [FaxJob], intake: IntakeRecord?, event: String) async throws -> [FaxJob]
    /// Writes the job and a history event in one transaction. Fails if the stored state is not `expected`
    /// (someone else moved it, e.g. a cancel), so two writers never overwrite each other.
    func updateJob(_ job: FaxJob, expecting expected: FaxJob.State, event: String) async throws
    func job(id: Int64) async throws -> FaxJob?
    func jobs(in states: Set<FaxJob.State>) async throws -> [FaxJob]
    func recentJobs(limit: Int) async throws -> [FaxJob]
    func jobEvents(jobID: Int64) async throws -> [CallEvent]
    /// Jobs and pages a sender submitted since a point in time (for daily limits).
    func usage(sender: String, since: Date) async throws -> (jobs: Int, pages: Int)
    /// Jobs and pages counted under a limit key (`FaxJob.limitKey`) since a point in time; canceled jobs do not
    /// count. Rows without a key count under their sender address (lowercased).
    func usage(limitKey: String, since: Date) async throws -> (jobs: Int, pages: Int)

    // MARK: Mail intake ledger
    /// Inserts the record unless one exists for (source, uidValidity, uid); returns the stored one.
    func recordIntake(_ record: IntakeRecord) async throws -> (record: IntakeRecord, isNew: Bool)
    func updateIntake(_ record: IntakeRecord) async throws
    func intakes(in states: Set<IntakeRecord.State>) async throws -> [IntakeRecord]
    func intakes(source: String, movedOnServer: Bool) async throws -> [IntakeRecord]
    /// Same Message-ID seen before (a mailbox recreated with a new UIDVALIDITY must not fax twice).
    func intake(messageID: String) async throws -> IntakeRecord?

    // MARK: Refusal replies (backscatter protection)
    /// Refusal replies sent to `address` (lowercased) decided at or after `since`: the per-recipient rate limit.
    func repliesSent(to address: String, since: Date) async throws -> Int
    /// Refusals the admin has not yet heard about: reply suppressed or rate-limited, or an admin alert.
    func undigestedRefusals() async throws -> [IntakeRecord]
    /// Marks those refusals as reported by the digest `digestID`.
    func markDigested(_ ids: [Int64], digestID: String) async throws
    /// Whether any refusal was reported by the digest `digestID` (at most one digest per period).
    func digestSent(_ digestID: String) async throws -> Bool
    /// Newest first (the CLI's `intake` listing).
    func recentIntakes(limit: Int) async throws -> [IntakeRecord]

    // MARK: Claims: several nodes on one queue (see ARCHITECTURE.md "Several nodes")
    /// In one short transaction: takes up to `limit` due jobs (state ready or deferred, `max(sendAt, nextAttemptAt)
    /// <= now`), oldest due first, skipping rows another claimer has locked (PostgreSQL: `FOR UPDATE SKIP LOCKED`)
    /// and any job whose number already has an active job (on any node, or earlier in the same claim). Each
    /// claimed job becomes `active` with `tries += 1`, `dialedAt = now`, `leaseOwner = node`, `leaseUntil`, and
    /// the event "dialling <dial string> (try n) on <node>". Returns the claimed jobs as stored.
    func claimJobs(node: String, limit: Int, now: Date, leaseUntil: Date) async throws -> [FaxJob]
    /// Heartbeat: moves `leaseUntil` of those of `jobIDs` that are still active and owned by `node`; returns
    /// their ids (a job missing from the answer was taken from the node: it must not report its result as
    /// its own).
    func renewLeases(node: String, jobIDs: [Int64], until: Date) async throws -> Set<Int64>
    /// Active jobs whose lease ended before `now` (any node), or every active job of `node` when `node` is set
    /// (that node's own restart): each becomes `uncertain` with the lease cleared and the event `event`.
    /// Returns them as stored.
    func expireLeases(now: Date, node: String?, event: String) async throws -> [FaxJob]

    // MARK: Documents every node must be able to read
    /// The rendered SFF of a job. SQLite: the spool file at `sffPath`; PostgreSQL: the bytes stored with the
    /// job at `insertJobs`, so any node can send it. nil when gone (retention, or never stored).
    func jobDocument(_ job: FaxJob) async throws -> [UInt8]?
    /// The raw order mail of an intake record (SQLite: the file at `rawPath`; PostgreSQL: stored at
    /// `recordIntake`), so any node can decide a message another node fetched.
    func intakeMessage(_ record: IntakeRecord) async throws -> [UInt8]?
}

public struct JobStateConflict: Error, Sendable, CustomStringConvertible {
    public var jobID: Int64
    public var actual: FaxJob.State?
    public init(jobID: Int64, actual: FaxJob.State?) { self.jobID = jobID; self.actual = actual }
    public var description: String { "job \(jobID) is \(actual?.rawValue ?? "gone"), not in the expected state" }
}

public struct StorageError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
