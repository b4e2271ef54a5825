import FaxgateCore
import Foundation

/// The running gateway's state for the dashboard and `/health/ready`: lines, queue, intake, outbox, disk.
/// Implemented in FaxgateApp (WebStatusOperations) over the running transport, intakes, outbox and storage.
public protocol StatusOperations: Sendable {
    /// Everything the admin dashboard shows, taken now.
    func dashboard() async -> DashboardStatus
    /// The checks of `/health/ready`.
    func readiness() async -> Readiness
    /// Sets the gauges (queue depth, backlog, registration, channels, mailboxes) from the running parts right
    /// before `/metrics` is emitted, so a scrape always sees the present state.
    func refreshGauges() async
}

/// The admin dashboard's values. Typed; the page formats them. No caller numbers, addresses or subjects.
public struct DashboardStatus: Sendable {
    public var takenAt: Date
    /// Lines per controller, registration (from the transport's `statusSnapshot()`).
    public var transport: TransportSnapshot
    /// Jobs per state; every state is present (0 when none).
    public var queue: [QueueDepth]
    public var callsToday: CallsToday
    /// Recent failed calls and jobs, newest first.
    public var lastErrors: [RecentFailure]
    public var disk: DiskStatus
    /// One entry per configured mailbox, in configuration order.
    public var intake: [MailboxSnapshot]
    public var outbox: OutboxBacklog

    public init(takenAt: Date, transport: TransportSnapshot, queue: [QueueDepth], callsToday: CallsToday,
                lastErrors: [RecentFailure], disk: DiskStatus, intake: [MailboxSnapshot], outbox: OutboxBacklog) {
        self.takenAt = takenAt; self.transport = transport; self.queue = queue; self.callsToday = callsToday
        self.lastErrors = lastErrors; self.disk = disk; self.intake = intake; self.outbox = outbox
    }
}

public struct QueueDepth: Sendable, Equatable {
    public var state: FaxJob.State
    public var count: Int
    public init(state: FaxJob.State, count: Int) { self.state = state; self.count = count }
}

/// Calls since local midnight. Incoming from the journal, outgoing = jobs dialled today.
public struct CallsToday: Sendable, Equatable {
    public var faxIn: Int
    public var voiceIn: Int
    /// Incoming calls that ended failed or partial (rejected calls are not errors).
    public var failedIn: Int
    public var faxOut: Int
    /// Jobs whose last try today did not succeed.
    public var failedOut: Int
    public init(faxIn: Int = 0, voiceIn: Int = 0, failedIn: Int = 0, faxOut: Int = 0, failedOut: Int = 0) {
        self.faxIn = faxIn; self.voiceIn = voiceIn; self.failedIn = failedIn; self.faxOut = faxOut; self.failedOut = failedOut
    }
}

/// A failed call or job, with a typed reason. The id links to /admin/calls/<id> or the queue; no numbers.
public struct RecentFailure: Sendable, Equatable {
    public enum Item: Sendable, Equatable {
        /// An incoming call: its outcome and how it ended.
        case call(id: Int64, kind: CallRecord.Kind, outcome: CallRecord.Outcome, endCause: CallRecord.EndCause?)
        /// A job's last try (or its final failure): the transport's typed cause.
        case job(id: Int64, state: FaxJob.State, cause: SendOutcome.Cause?)
        /// The SMTP outbox gave up on a mail about a call or job.
        case mail(callID: Int64?, jobID: Int64?)
    }
    public var at: Date
    public var item: Item
    public init(at: Date, item: Item) { self.at = at; self.item = item }
}

/// The spool's file system.
public struct DiskStatus: Sendable, Equatable {
    public var path: String
    /// Bytes used by the spool directory itself (incoming, outgoing, outbox, …), nil when not measured.
    public var spoolBytes: Int64?
    public var freeBytes: Int64
    public var totalBytes: Int64
    /// web.min_free_disk_mb in bytes: below it `/health/ready` fails.
    public var minFreeBytes: Int64
    public init(path: String, spoolBytes: Int64?, freeBytes: Int64, totalBytes: Int64, minFreeBytes: Int64) {
        self.path = path; self.spoolBytes = spoolBytes; self.freeBytes = freeBytes; self.totalBytes = totalBytes; self.minFreeBytes = minFreeBytes
    }
    public var belowMinimum: Bool { freeBytes < minFreeBytes }
}

/// The result of `/health/ready`: every check with ok or not and why, in words (for people and probes).
public struct Readiness: Sendable, Equatable, Codable {
    public struct Check: Sendable, Equatable, Codable {
        /// One of `Readiness.checkNames`.
        public var name: String
        public var ok: Bool
        public var reason: String
        public init(name: String, ok: Bool, reason: String) { self.name = name; self.ok = ok; self.reason = reason }
    }
    public static let checkNames = ["database", "capi", "smtp", "imap", "disk"]
    public var checks: [Check]
    public init(checks: [Check]) { self.checks = checks }
    public var ready: Bool { checks.allSatisfy(\.ok) }
}
