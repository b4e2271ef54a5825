import FaxgateCore
import Foundation

// Claims and leases (issue 11). SQLite has one writer and one node, but implements the same contract, so the
// send queue has one code path and the conformance suite checks both plugins alike.
extension SQLiteStorage {
    public func claimJobs(node: String, limit: Int, now: Date, leaseUntil: Date) async throws -> [FaxJob] {
        throw StorageError("claimJobs: not yet implemented for SQLite")  // QUEUE helper replaces this
    }

    public func renewLeases(node: String, jobIDs: [Int64], until: Date) async throws -> Set<Int64> {
        throw StorageError("renewLeases: not yet implemented for SQLite")
    }

    public func expireLeases(now: Date, node: String?, event: String) async throws -> [FaxJob] {
        throw StorageError("expireLeases: not yet implemented for SQLite")
    }

    /// The spool file is the document: one machine, one spool.
    public func jobDocument(_ job: FaxJob) async throws -> [UInt8]? {
        FileManager.default.contents(atPath: job.sffPath).map { [UInt8]($0) }
    }

    public func intakeMessage(_ record: IntakeRecord) async throws -> [UInt8]? {
        FileManager.default.contents(atPath: record.rawPath).map { [UInt8]($0) }
    }
}
