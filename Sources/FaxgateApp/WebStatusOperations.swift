import FaxgateCore
import FaxgateWeb
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The dashboard's and `/health/ready`'s view of the running gateway, over the core's generic seams: the
/// transport's `statusSnapshot()`, each intake's `intakeStatus()`, the outbox's `backlog()`, and storage.
/// Knows no concrete plugin (the transport is `any FaxTransport`, intakes are `MailIntakeStatusReporting`).
struct WebStatusOperations: StatusOperations {
    let storage: any Storage
    let transport: any FaxTransport
    let intakes: [any MailIntakeStatusReporting]
    let outbox: Outbox
    let configuration: @Sendable () -> Configuration

    /// Final states are history, not queue: the gauge and the dashboard count only jobs still waiting or on the line.
    static let queueStates: [FaxJob.State] = [.ready, .deferred, .active]

    func dashboard() async -> DashboardStatus {
        let config = configuration()
        async let transportSnapshot = transport.statusSnapshot()
        async let backlog = outbox.backlog()
        let queue = await queueDepth()
        let (today, errors) = await callsTodayAndErrors()
        return DashboardStatus(takenAt: Date(), transport: await transportSnapshot, queue: queue, callsToday: today,
                               lastErrors: errors, disk: Self.disk(config), intake: await mailboxes(), outbox: await backlog)
    }

    func readiness() async -> Readiness {
        let config = configuration()
        var checks: [Readiness.Check] = []

        do {
            _ = try await storage.recentCalls(limit: 1)
            checks.append(.init(name: "database", ok: true, reason: "the journal answers"))
        } catch {
            checks.append(.init(name: "database", ok: false, reason: "the journal does not answer: \(error)"))
        }

        let line = await transport.statusSnapshot()
        if line.registered {
            checks.append(.init(name: "capi", ok: true, reason: "registered with \(line.lines.count) controller(s), "
                                + "\(line.channelsInUse) of \(line.channelsTotal) B-channels in use"))
        } else {
            checks.append(.init(name: "capi", ok: false, reason: "not registered with the line"
                                + (line.lastError.map { ": \($0)" } ?? "") + (line.since.map { " (since \(Self.iso($0)))" } ?? "")))
        }

        let backlog = await outbox.backlog()
        if backlog.overBudget() {
            checks.append(.init(name: "smtp", ok: false, reason: "the SMTP server has refused or been unreachable since "
                                + "\(Self.iso(backlog.failingSince!)), longer than the retry budget of \(Int(backlog.retryBudget / 3600)) h"
                                + (backlog.lastError.map { ": \($0)" } ?? "")))
        } else if let since = backlog.failingSince {
            checks.append(.init(name: "smtp", ok: true, reason: "deliveries failing since \(Self.iso(since)), within the retry budget"
                                + " (\(backlog.count) waiting)"))
        } else {
            checks.append(.init(name: "smtp", ok: true, reason: "deliveries work (\(backlog.count) waiting)"))
        }

        let boxes = await mailboxes()
        let down = boxes.filter { !$0.connected }
        if boxes.isEmpty {
            checks.append(.init(name: "imap", ok: true, reason: "no mailboxes configured"))
        } else if down.isEmpty {
            checks.append(.init(name: "imap", ok: true, reason: "\(boxes.count) mailbox(es) connected"))
        } else {
            checks.append(.init(name: "imap", ok: false, reason: down.map { box in
                "mailbox \(box.name) not connected" + (box.lastError.map { ": \($0)" } ?? "")
            }.joined(separator: "; ")))
        }

        let disk = Self.disk(config)
        let mb = { (b: Int64) in b / 1_048_576 }
        checks.append(.init(name: "disk", ok: !disk.belowMinimum, reason: disk.belowMinimum
            ? "only \(mb(disk.freeBytes)) MB free on the spool's file system, below web.min_free_disk_mb \(mb(disk.minFreeBytes))"
            : "\(mb(disk.freeBytes)) MB free on the spool's file system (minimum \(mb(disk.minFreeBytes)))"))
        return Readiness(checks: checks)
    }

    func refreshGauges() async {
        for depth in await queueDepth() { GatewayMetrics.queueDepth(depth.state, depth.count) }
        GatewayMetrics.transport(await transport.statusSnapshot())
        GatewayMetrics.mailboxes(await mailboxes())
        let backlog = await outbox.backlog()
        GatewayMetrics.outboxBacklog(count: backlog.count, oldestAgeSeconds: backlog.oldestQueuedAt.map { max(0, Date().timeIntervalSince($0)) } ?? 0)
        GatewayMetrics.spoolFree(bytes: Self.disk(configuration()).freeBytes)
    }

    // MARK: Pieces

    func queueDepth() async -> [QueueDepth] {
        let jobs: [FaxJob]
        do { jobs = try await storage.jobs(in: Set(Self.queueStates)) } catch {
            // Unknown, not zero: no gauge is set and the dashboard shows no queue; /health/ready's database check says why.
            return []
        }
        return Self.queueStates.map { state in QueueDepth(state: state, count: jobs.filter { $0.state == state }.count) }
    }

    func mailboxes() async -> [MailboxSnapshot] {
        var out: [MailboxSnapshot] = []
        for (i, intake) in intakes.enumerated() {
            var s = await intake.intakeStatus()
            s.index = i
            out.append(s)
        }
        return out
    }

    /// Counts since local midnight and the newest failures (at most 10). Incoming calls come from the journal;
    /// outgoing calls are dial attempts of jobs (the last one per job: the job row keeps its last try).
    func callsTodayAndErrors() async -> (CallsToday, [RecentFailure]) {
        let midnight = Calendar.current.startOfDay(for: Date())
        var today = CallsToday()
        var errors: [RecentFailure] = []
        do {
            today.faxIn = try await storage.countCalls(CallQuery(direction: .incoming, kinds: [.fax], from: midnight))
            today.voiceIn = try await storage.countCalls(CallQuery(direction: .incoming, kinds: [.voice], from: midnight))
            let recent = try await storage.searchCalls(CallQuery(direction: .incoming, limit: 500))
            today.failedIn = recent.filter { $0.startedAt >= midnight && ($0.outcome == .failed || $0.outcome == .partial) }.count
            for call in recent where call.outcome == .failed || call.outcome == .partial || call.state == .mailFailed {
                guard let id = call.id else { continue }
                if call.state == .mailFailed {
                    errors.append(.init(at: call.endedAt ?? call.startedAt, item: .mail(callID: id, jobID: nil)))
                } else {
                    errors.append(.init(at: call.endedAt ?? call.startedAt,
                                        item: .call(id: id, kind: call.kind, outcome: call.outcome ?? .failed, endCause: call.endCause)))
                }
            }
            let jobs = try await storage.recentJobs(limit: 500)
            for job in jobs {
                guard let id = job.id else { continue }
                let cause = job.lastCause.flatMap(SendOutcome.Cause.init(rawValue:))
                if let dialed = job.dialedAt, dialed >= midnight {
                    today.faxOut += 1
                    if cause != .success { today.failedOut += 1 }
                }
                if job.state == .failed || (job.state == .deferred && cause != nil && cause != .success) {
                    errors.append(.init(at: job.endedAt ?? job.createdAt, item: .job(id: id, state: job.state, cause: cause)))
                }
            }
        } catch {
            // The dashboard shows what it has; the database check of /health/ready names the problem.
        }
        errors.sort { $0.at > $1.at }
        return (today, Array(errors.prefix(10)))
    }

    /// Free and total bytes of the spool's file system (statvfs: what an unprivileged writer may still use), and
    /// the spool's own size (a walk, capped so a huge spool does not stall the page).
    static func disk(_ config: Configuration) -> DiskStatus {
        let path = config.spoolDirectory
        var st = statvfs()
        var free: Int64 = 0, total: Int64 = 0
        if statvfs(path, &st) == 0 {
            free = Int64(st.f_bavail) * Int64(st.f_frsize)
            total = Int64(st.f_blocks) * Int64(st.f_frsize)
        }
        return DiskStatus(path: path, spoolBytes: spoolSize(path), freeBytes: free, totalBytes: total,
                          minFreeBytes: Int64(max(0, config.web.minFreeDiskMB)) * 1_048_576)
    }

    static func spoolSize(_ path: String, limit: Int = 200_000) -> Int64? {
        guard let walker = FileManager.default.enumerator(at: URL(fileURLWithPath: path), includingPropertiesForKeys: [.fileSizeKey, .isRegularFileKey])
        else { return nil }
        var sum: Int64 = 0
        var seen = 0
        for case let url as URL in walker {
            seen += 1
            if seen > limit { return nil }  // too many files to count on a page view
            if let values = try? url.resourceValues(forKeys: [.fileSizeKey, .isRegularFileKey]), values.isRegularFile == true {
                sum += Int64(values.fileSize ?? 0)
            }
        }
        return sum
    }

    static func iso(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }
}
