import Foundation

/// One fax to one number. States follow Postfix's queues; only `SendQueue` and `SubmissionProcessor`
/// change them, each change with an event row in the same transaction.
public struct FaxJob: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable, CaseIterable {
        case ready      // waiting for its time and a free line
        case active     // being dialled or sent
        case deferred   // a try failed; waits for nextAttemptAt
        case done       // sent, report mailed (or queued in the outbox)
        case failed     // gave up; report mailed
        case canceled   // by the sender or the admin
        /// Its node stopped (crash, kill, lost database) while the job was on the line: the remote may have
        /// printed some or all pages. Never re-dialled without a decision (`outgoing.uncertain` or the admin).
        case uncertain
        public var isFinal: Bool { self == .done || self == .failed || self == .canceled }
    }

    public var id: Int64?
    public var state: State
    public var createdAt: Date
    /// Earliest time to dial (send-at); createdAt by default.
    public var sendAt: Date
    public var nextAttemptAt: Date
    public var intakeID: Int64?
    public var sender: String
    public var senderName: String?
    public var extensionName: String
    public var language: String
    public var number: String        // E.164
    public var dialString: String
    public var subject: String
    public var pages: Int
    public var fine: Bool
    public var sffPath: String
    public var tries: Int = 0
    public var protocolErrors: Int = 0
    public var lastCause: String?
    public var lastText: String?
    public var remoteStationID: String?
    public var pagesSent: Int = 0
    public var bitRate: Int?
    public var dialedAt: Date?
    public var connectedAt: Date?
    public var endedAt: Date?
    /// Message-ID of the mail that asked for this fax, for In-Reply-To on the report.
    public var requestMessageID: String?
    /// What the daily limits count this job under (`DialRules.limitKey`): the sender's address, the allow-list
    /// domain ("@example.com") all its senders share, or "local:<uid>" for the CLI. nil in rows made before.
    public var limitKey: String?
    /// Index of the document's first page in the SFF (after a cover page or a text page): the send report's
    /// thumbnail shows it.
    public var documentPage: Int = 0
    /// What the fax engine reported for the last attempt that got that far (issue 10).
    public var ecm: Bool?
    public var engine: FaxEngineKind?
    public var compression: FaxCompression?
    public var ecmRetransmittedFrames: Int?
    /// The last attempt's T.30 failure; nil after an attempt without one.
    public var t30Failure: T30Failure?
    public var pageStatistics: [FaxPageStatistics] = []
    /// Modem limits for the NEXT attempt, lowered by `ModemFallback` and never raised again within the job.
    /// Stored typed, so a fallback survives a restart.
    public var nextModem: ModemSettings = .best
    /// The node that holds the job while it is `active`, and until when (renewed by heartbeats). A job whose
    /// lease ran out while active becomes `uncertain`. nil when not active.
    public var leaseOwner: String?
    public var leaseUntil: Date?

    public init(state: State = .ready, createdAt: Date = Date(), sendAt: Date? = nil, intakeID: Int64?, sender: String,
                senderName: String?, extensionName: String, language: String, number: String, dialString: String,
                subject: String, pages: Int, fine: Bool, sffPath: String, requestMessageID: String?) {
        self.state = state; self.createdAt = createdAt; self.sendAt = sendAt ?? createdAt; self.nextAttemptAt = sendAt ?? createdAt
        self.intakeID = intakeID; self.sender = sender; self.senderName = senderName; self.extensionName = extensionName
        self.language = language; self.number = number; self.dialString = dialString; self.subject = subject
        self.pages = pages; self.fine = fine; self.sffPath = sffPath; self.requestMessageID = requestMessageID
    }
}

/// The ledger entry that makes mail intake exactly-once: one row per message taken from a mailbox,
/// written (with the raw message safely on disk) before the message is moved away on the server.
public struct IntakeRecord: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable, CaseIterable {
        case fetched    // raw message stored; not yet decided
        case accepted   // jobs created
        case rejected   // refused; a reply is in the outbox
        case ignored    // automatic mail, never answered
    }
    public var id: Int64?
    public var source: String        // mailbox name, or "drop" for CLI submissions
    public var uidValidity: Int64
    public var uid: Int64
    public var messageID: String?
    public var receivedAt: Date
    public var rawPath: String
    public var state: State
    public var detail: String?
    /// The message was moved to Processed/Rejected on the server.
    public var moved: Bool = false
    /// What became of the refusal reply (nil: not refused, or decided before this was recorded).
    public var reply: ReplyDisposition?
    /// The From address that was answered, or would have been (lowercased); the key of the per-recipient limit.
    public var replyAddress: String?
    public var decidedAt: Date?
    /// The MTA failed to strip an Authentication-Results header claiming to be its own; the admin was told.
    public var adminAlert: Bool = false
    /// The admin digest that reported this refusal (suppressed or rate-limited replies, alerts).
    public var digestID: String?

    /// Backscatter protection: a refusal is answered only when the address is proven or allowed and authenticated.
    public enum ReplyDisposition: String, Sendable, Codable, CaseIterable {
        case sent
        /// Not answered: the address was neither proven nor an authenticated allowed sender.
        case suppressed
        /// Not answered: the per-recipient reply limit was reached.
        case rateLimited = "rate_limited"
    }

    public init(source: String, uidValidity: Int64, uid: Int64, messageID: String?, receivedAt: Date = Date(), rawPath: String,
                state: State = .fetched) {
        self.source = source; self.uidValidity = uidValidity; self.uid = uid; self.messageID = messageID
        self.receivedAt = receivedAt; self.rawPath = rawPath; self.state = state
    }
}
