import Foundation

// Generic status values the running parts report for the admin dashboard and `/health/ready`. They name no
// concrete plugin: a transport reports controllers and channels, an intake reports mailboxes, the outbox its backlog.

/// One controller (card, router, PBX port) of a line.
public struct LineSnapshot: Sendable, Equatable, Codable {
    /// The transport's controller number (CAPI: 1…). Shown on the dashboard, never used as a metric label.
    public var controller: Int
    public var registered: Bool
    public var channelsTotal: Int
    public var channelsInUse: Int
    public init(controller: Int, registered: Bool, channelsTotal: Int, channelsInUse: Int) {
        self.controller = controller; self.registered = registered; self.channelsTotal = channelsTotal; self.channelsInUse = channelsInUse
    }
}

/// What a transport says about itself now.
public struct TransportSnapshot: Sendable, Equatable, Codable {
    /// The transport's name (e.g. "capi").
    public var name: String
    /// Registered with the line (CAPI: CAPI_REGISTER done and LISTEN confirmed).
    public var registered: Bool
    /// Since when `registered` has had its current value; nil when unknown.
    public var since: Date?
    public var lines: [LineSnapshot]
    /// The last problem in words (no numbers of callers: transports report their own errors only).
    public var lastError: String?
    public init(name: String, registered: Bool, since: Date? = nil, lines: [LineSnapshot] = [], lastError: String? = nil) {
        self.name = name; self.registered = registered; self.since = since; self.lines = lines; self.lastError = lastError
    }
    public var channelsTotal: Int { lines.reduce(0) { $0 + $1.channelsTotal } }
    public var channelsInUse: Int { lines.reduce(0) { $0 + $1.channelsInUse } }
}

/// One watched mailbox of a mail intake.
public struct MailboxSnapshot: Sendable, Equatable, Codable {
    /// Position in `outgoing.mailboxes` (metrics use no names at all).
    public var index: Int
    /// The configured name (the dashboard shows it; metrics never do).
    public var name: String
    public var connected: Bool
    /// The last time the mailbox was searched for new mail (after IDLE or a poll).
    public var lastPollAt: Date?
    public var lastError: String?
    public var lastErrorAt: Date?
    public init(index: Int, name: String, connected: Bool, lastPollAt: Date? = nil, lastError: String? = nil, lastErrorAt: Date? = nil) {
        self.index = index; self.name = name; self.connected = connected; self.lastPollAt = lastPollAt
        self.lastError = lastError; self.lastErrorAt = lastErrorAt
    }
}

/// A mail intake that can say how its mailbox is doing (IMAPIntake implements it).
public protocol MailIntakeStatusReporting: Sendable {
    func intakeStatus() async -> MailboxSnapshot
}

/// The SMTP outbox's queue.
public struct OutboxBacklog: Sendable, Equatable, Codable {
    /// Mails waiting for the SMTP server.
    public var count: Int
    /// `queuedAt` of the oldest waiting mail.
    public var oldestQueuedAt: Date?
    /// Since when deliveries have been failing without a success in between; nil when the last attempt worked.
    public var failingSince: Date?
    public var lastError: String?
    /// Mails given up (kept in outbox/failed).
    public var failed: Int
    /// How long the outbox keeps retrying before it gives up (smtp.give_up_after_hours).
    public var retryBudget: TimeInterval
    public init(count: Int, oldestQueuedAt: Date?, failingSince: Date?, lastError: String?, failed: Int, retryBudget: TimeInterval) {
        self.count = count; self.oldestQueuedAt = oldestQueuedAt; self.failingSince = failingSince; self.lastError = lastError
        self.failed = failed; self.retryBudget = retryBudget
    }
    /// Failing for longer than the retry budget: the SMTP server is not reachable in the sense of readiness.
    public func overBudget(now: Date = Date()) -> Bool {
        guard let failingSince else { return false }
        return now.timeIntervalSince(failingSince) > retryBudget
    }
}

extension FaxTransport {
    /// A transport that does not report its state is not known to be registered.
    public func statusSnapshot() async -> TransportSnapshot {
        TransportSnapshot(name: name, registered: false, lastError: "this transport reports no status")
    }
}
