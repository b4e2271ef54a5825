import FaxgateCore
import Foundation

/// Outgoing faxes and received items that need the running gateway: cancel, resend, retry now, submit from the
/// browser, mail a received fax again. Implemented in FaxgateApp (WebJobOperations), where the running
/// `SendQueue` and `SubmissionProcessor` are: the pages never write a job row themselves, so a cancel races
/// safely with the dialler (expected-state updates) and a browser submission passes exactly the checks a mail does.
///
/// Authorization (may this user touch this job or extension?) is the page's check before it calls; the operations
/// re-check what they can (the user's extensions) so a caller that forgot cannot widen access.
public protocol JobOperations: Sendable {
    /// Cancels a waiting job (ready or deferred) through the running queue.
    func cancel(jobID: Int64, by actor: WebActor) async throws -> JobCancelResult
    /// Queues a finished job again with the rules of `faxgate resend` (sender still allowed, dial policy now,
    /// daily limits).
    func resend(jobID: Int64, by actor: WebActor) async throws -> JobResendResult
    /// The number checks a browser submission gets before anything is stored: the number grammar and Unicode
    /// checks of mail addressing, the dial policy of the extension, today's job limit. nil = acceptable.
    func checkNumber(_ written: String, extensionName: String, by actor: WebActor) async throws -> (any LocalizedReason)?
    /// Stores a browser submission durably and hands it to the submission processor in the background (rendering
    /// takes seconds); the page follows it with `submission(id:)`. A refusal found before storing (number, dial
    /// policy, limits, file type) is returned at once, so the form can be shown again with everything typed.
    func submit(_ submission: WebFaxSubmission, by actor: WebActor) async throws -> WebSubmitResult
    /// A browser submission and what became of it; nil when unknown.
    func submission(id: Int64) async throws -> WebSubmissionStatus?
}

/// A fax as the send form gives it.
public struct WebFaxSubmission: Sendable {
    public struct File: Sendable {
        public var name: String
        public var bytes: [UInt8]
        public init(name: String, bytes: [UInt8]) { self.name = name; self.bytes = bytes }
    }
    public var extensionName: String
    public var number: String
    public var subject: String
    public var files: [File]
    public var cover: Bool
    /// The cover page's message (or, without a cover page, a text page of its own).
    public var message: String
    public var sendAt: Date?
    /// nil = the extension's default.
    public var fine: Bool?

    public init(extensionName: String, number: String, subject: String, files: [File], cover: Bool, message: String,
                sendAt: Date?, fine: Bool?) {
        self.extensionName = extensionName; self.number = number; self.subject = subject; self.files = files
        self.cover = cover; self.message = message; self.sendAt = sendAt; self.fine = fine
    }
}

public enum WebSubmitResult: Sendable {
    /// Stored and being rendered; follow it at /send/<intakeID>.
    case accepted(intakeID: Int64)
    case refused(any LocalizedReason)
}

/// A browser submission: rendering (the processor works on it), queued (its jobs), or refused (why).
public struct WebSubmissionStatus: Sendable {
    public enum State: String, Sendable { case rendering, queued, refused }
    public var intakeID: Int64
    public var state: State
    public var extensionName: String
    public var userName: String
    public var number: String
    public var submittedAt: Date
    public var jobs: [FaxJob]
    /// The typed reason when refused in this run; `refusalText` (English, from the ledger) after a restart.
    public var refusal: (any LocalizedReason)?
    public var refusalText: String?

    public init(intakeID: Int64, state: State, extensionName: String, userName: String, number: String, submittedAt: Date,
                jobs: [FaxJob], refusal: (any LocalizedReason)?, refusalText: String?) {
        self.intakeID = intakeID; self.state = state; self.extensionName = extensionName; self.userName = userName
        self.number = number; self.submittedAt = submittedAt; self.jobs = jobs; self.refusal = refusal; self.refusalText = refusalText
    }
}

public enum JobCancelResult: Sendable, Equatable {
    case canceled
    case notFound
    /// The dialler has it now; a call is not stopped midway.
    case onTheLine
    case finished(FaxJob.State)
}

public enum JobResendResult: Sendable {
    case queued(newJobID: Int64)
    case notFound
    case notFinished(FaxJob.State)
    case documentGone
    case refused(any LocalizedReason)
}
