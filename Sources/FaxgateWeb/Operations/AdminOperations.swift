import FaxgateCore
import Foundation

/// Admin actions that need the running gateway (its pipeline, queue and outbox) or its plugins (the redactor),
/// beyond `JobOperations`. Implemented in FaxgateApp (`WebAdminOperations`). Callers check the admin role and
/// write the audit entry; these only act.
public protocol AdminOperations: Sendable {
    /// Mails a received fax again to its extension's current addresses, through the gateway's pipeline and outbox.
    func resendMail(callID: Int64, by actor: WebActor) async throws -> MailResendResult
    /// Moves a waiting job's next try to now and wakes the queue (expects `deferred`, so the dialler is never overwritten).
    func retryNow(jobID: Int64, by actor: WebActor) async throws -> SendQueue.RetryNowResult
    /// Days with a log file, newest first ("YYYY-MM-DD").
    func logDays() async -> [String]
    /// Lines of one day's log file containing every token of `search` (all lines when empty), each redacted again
    /// with every rule (as a support snapshot is); at most `limit` lines, the newest last.
    func logLines(day: String, search: String, limit: Int) async throws -> LogExcerpt
}

/// A bounded, redacted look at one day's log.
public struct LogExcerpt: Sendable, Equatable {
    public var day: String
    public var lines: [String]
    /// Matching lines beyond `limit` that are not shown (the oldest are dropped).
    public var omitted: Int
    /// Lines the file has in total (matching or not).
    public var scanned: Int
    public init(day: String, lines: [String], omitted: Int, scanned: Int) {
        self.day = day; self.lines = lines; self.omitted = omitted; self.scanned = scanned
    }
}

/// For a web server built without a running gateway (tests of pages alone): every action answers "not running".
public struct UnavailableAdminOperations: AdminOperations {
    public init() {}
    public struct NotRunning: Error, CustomStringConvertible {
        public init() {}
        public var description: String { "the gateway is not running in this process" }
    }
    public func resendMail(callID: Int64, by actor: WebActor) async throws -> MailResendResult { throw NotRunning() }
    public func retryNow(jobID: Int64, by actor: WebActor) async throws -> SendQueue.RetryNowResult { throw NotRunning() }
    public func logDays() async -> [String] { [] }
    public func logLines(day: String, search: String, limit: Int) async throws -> LogExcerpt { throw NotRunning() }
}
