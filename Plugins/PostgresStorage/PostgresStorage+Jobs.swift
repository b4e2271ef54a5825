import FaxgateCore
import Foundation
import PostgresNIO

// Outgoing jobs: insert with the intake transition, guarded updates, usage counts, claims and leases. (JOBS helper)
extension PostgresStorage {
    static var jobMigrations: [PostgresMigration] { [] }

    public func insertJobs(_ jobs: [FaxJob], intake: IntakeRecord?, event: String) async throws -> [FaxJob] { throw StorageError("postgres: not implemented") }
    public func updateJob(_ job: FaxJob, expecting expected: FaxJob.State, event: String) async throws { throw StorageError("postgres: not implemented") }
    public func job(id: Int64) async throws -> FaxJob? { throw StorageError("postgres: not implemented") }
    public func jobs(in states: Set<FaxJob.State>) async throws -> [FaxJob] { throw StorageError("postgres: not implemented") }
    public func recentJobs(limit: Int) async throws -> [FaxJob] { throw StorageError("postgres: not implemented") }
    public func jobEvents(jobID: Int64) async throws -> [CallEvent] { throw StorageError("postgres: not implemented") }
    public func usage(sender: String, since: Date) async throws -> (jobs: Int, pages: Int) { throw StorageError("postgres: not implemented") }
    public func usage(limitKey: String, since: Date) async throws -> (jobs: Int, pages: Int) { throw StorageError("postgres: not implemented") }
    public func jobDocument(_ job: FaxJob) async throws -> [UInt8]? { throw StorageError("postgres: not implemented") }

    public func claimJobs(node: String, limit: Int, now: Date, leaseUntil: Date) async throws -> [FaxJob] { throw StorageError("postgres: not implemented") }
    public func renewLeases(node: String, jobIDs: [Int64], until: Date) async throws -> Set<Int64> { throw StorageError("postgres: not implemented") }
    public func expireLeases(now: Date, node: String?, event: String) async throws -> [FaxJob] { throw StorageError("postgres: not implemented") }
}
