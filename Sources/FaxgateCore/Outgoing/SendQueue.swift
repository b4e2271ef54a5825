import FaxDocument
import FaxRender
import Foundation
import Logging
import MailOut
import ServiceLifecycle

/// Dials queued fax jobs: several lines at once, at most one call per destination, retries by cause with
/// the configured delays (HylaFAX's habits), and a status mail with a send report for every final result.
public actor SendQueue: Service {
    public struct Settings: Sendable {
        public var from: MailAddress
        public var hostname: String
        public var retry: RetryConfig
        public var notifyEachRetry: Bool
        /// Per extension: number to signal and CLIR.
        public var callingNumbers: [String: (number: String?, hide: Bool)]
        public var stationIDs: [String: (id: String, headline: String)]
        /// Dial policy, sender lists and limits as configured now: checked again right before dialling and
        /// on `resend`. nil only in tests of the queue's mechanics (then only the dial string is validated).
        public var rules: DialRules?
        /// This node's id (`node.id`): claims and leases carry it.
        public var node: String
        /// A claimed job is ours for this long; heartbeats every `heartbeatSeconds` renew it while the call lasts.
        public var leaseSeconds: Int
        public var heartbeatSeconds: Int
        /// `outgoing.uncertain`: what happens to a job a stopped node left on the line.
        public var uncertain: UncertainConfig
        public init(from: MailAddress, hostname: String, retry: RetryConfig, notifyEachRetry: Bool,
                    callingNumbers: [String: (number: String?, hide: Bool)], stationIDs: [String: (id: String, headline: String)],
                    rules: DialRules? = nil, node: String = "local", leaseSeconds: Int = 60, heartbeatSeconds: Int = 10,
                    uncertain: UncertainConfig = UncertainConfig()) {
            self.from = from; self.hostname = hostname; self.retry = retry; self.notifyEachRetry = notifyEachRetry
            self.callingNumbers = callingNumbers; self.stationIDs = stationIDs; self.rules = rules
            self.node = node; self.leaseSeconds = leaseSeconds; self.heartbeatSeconds = heartbeatSeconds; self.uncertain = uncertain
        }

        /// These settings with the node's id, lease and heartbeat (`node:`) and `outgoing.uncertain` from `config`.
        public func withNodeSettings(of config: Configuration) -> Settings {
            var out = self
            out.node = config.node.effectiveID
            out.leaseSeconds = config.node.leaseSeconds
            out.heartbeatSeconds = config.node.heartbeatSeconds
            out.uncertain = config.outgoing.uncertain
            return out
        }

        /// These settings with the office part (calling numbers, station ids, dial rules) taken from `config`.
        public func withOfficeSettings(of config: Configuration) -> Settings {
            var out = self
            out.callingNumbers = Dictionary(config.extensions.map {
                ($0.name, (number: $0.senders.callingNumber ?? $0.numbers.first.flatMap { NumberPattern($0)?.low }, hide: $0.senders.hideCallingNumber))
            }, uniquingKeysWith: { a, _ in a })
            out.stationIDs = Dictionary(config.extensions.map { ($0.name, (id: $0.stationID ?? "", headline: $0.headline ?? "")) },
                                        uniquingKeysWith: { a, _ in a })
            out.rules = DialRules(config)
            return out
        }
    }

    private let fixedSettings: Settings
    /// Station ids, calling numbers and the dial rules edited on the web apply to the next dial without a restart.
    private let live: LiveConfiguration?
    private var settings: Settings { live.map { fixedSettings.withOfficeSettings(of: $0.current) } ?? fixedSettings }
    private let storage: any Storage
    private let transport: any FaxSendingTransport
    private let outbox: Outbox
    private let logger: Logger
    private let wakeup = Wakeup()
    private var activeNumbers: Set<String> = []
    private var activeCount = 0
    /// Jobs on the line here (id → number): their leases are renewed by the heartbeat.
    private var inFlight: [Int64: String] = [:]
    /// Jobs whose lease was taken from us during the call (another node expired it): their result is not ours.
    private var lostLeases: Set<Int64> = []
    /// Why no new work is claimed now (the cluster seam: a node that lost its database is fenced); nil = go on.
    private var pausedReason: @Sendable () async -> String? = { nil }
    /// Whether this node runs the sweep that expires the leases of dead nodes (cluster seam: leader only).
    private var sweepsForOthers: @Sendable () async -> Bool = { true }
    private var lastPausedReason: String?

    public init(settings: Settings, storage: any Storage, transport: any FaxSendingTransport, outbox: Outbox, logger: Logger,
                live: LiveConfiguration? = nil,
                pausedReason: @escaping @Sendable () async -> String? = { nil },
                sweepsForOthers: @escaping @Sendable () async -> Bool = { true }) {
        self.fixedSettings = settings; self.live = live; self.storage = storage; self.transport = transport; self.outbox = outbox; self.logger = logger
        self.pausedReason = pausedReason; self.sweepsForOthers = sweepsForOthers
    }

    /// The cluster seam, for a coordinator made after the queue: `pausedReason` non-nil stops claiming (fenced);
    /// `sweepsForOthers` false leaves the dead-node lease sweep to another node (the leader).
    public func coordinate(pausedReason: @escaping @Sendable () async -> String?, sweepsForOthers: @escaping @Sendable () async -> Bool) {
        self.pausedReason = pausedReason; self.sweepsForOthers = sweepsForOthers
        wakeup.signal()
    }

    /// New work or a cancel: look at the queue now. Also the external wake-up (another node queued a job).
    public nonisolated func wake() { wakeup.signal() }

    public func run() async throws {
        // A job this node had on the line when it stopped: we cannot know what the remote got, so it is never
        // simply dialled again; it becomes uncertain and `outgoing.uncertain` (or the administrator) decides.
        let node = settings.node
        let interrupted = try await storage.expireLeases(
            now: Date(), node: node, event: "found active at start of \(node): the call was interrupted; uncertain")
        await handleUncertain(interrupted)
        await mailMissingReports()
        // Heartbeats run beside the dialling loop, also while calls finish during a graceful shutdown.
        let heartbeat = Task { [weak self] in
            while !Task.isCancelled {
                let seconds = await self?.settings.heartbeatSeconds ?? 10
                try? await Task.sleep(for: .seconds(max(1, seconds)))
                guard !Task.isCancelled, let self else { return }
                await self.heartbeat()
            }
        }
        defer { heartbeat.cancel() }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    let next = await startDueJobs(group: &group)
                    let delay = max(0.05, min(next?.timeIntervalSinceNow ?? 3600, 3600))
                    await wakeup.wait(timeout: .milliseconds(Int(delay * 1000)))
                }
                // Calls in flight finish (the transport bounds them); nothing new starts.
                await group.waitForAll()
            }
        } onGracefulShutdown: { [wakeup] in
            wakeup.signal()
        }
    }

    /// Renews the leases of the calls in flight; a job missing from the answer was taken from us. Then, unless
    /// another node does it, expires the leases of dead nodes and applies `resend_after` to uncertain jobs.
    func heartbeat() async {
        let s = settings
        let ids = Array(inFlight.keys)
        if !ids.isEmpty {
            do {
                let held = try await storage.renewLeases(node: s.node, jobIDs: ids, until: Date().addingTimeInterval(TimeInterval(s.leaseSeconds)))
                // A call that ended while the renewal ran left `inFlight` before writing its result: not lost.
                for id in ids where !held.contains(id) && !lostLeases.contains(id) && inFlight[id] != nil {
                    lostLeases.insert(id)
                    logger.error("lease lost during the call: another node took the job; its result will not be recorded as ours",
                                 metadata: ["job": "\(id)", "node": "\(s.node)"])
                }
            } catch {
                // Fail closed: unrenewed leases run out and the job becomes uncertain rather than sent twice.
                logger.error("cannot renew the leases of the calls in flight: \(error)", metadata: ["node": "\(s.node)"])
            }
        }
        guard await sweepsForOthers() else { return }
        await sweep()
    }

    /// Jobs left active by a node whose lease ran out become uncertain; `resend_after` jobs whose time came are
    /// dialled again.
    func sweep() async {
        do {
            let expired = try await storage.expireLeases(
                now: Date(), node: nil, event: "lease ran out during the call (the node stopped renewing it); uncertain")
            await handleUncertain(expired)
        } catch {
            logger.error("cannot expire the leases of stopped nodes: \(error)")
        }
        guard settings.uncertain.effectivePolicy == .resendAfter else { return }
        do {
            let now = Date()
            for var job in try await storage.jobs(in: [.uncertain]) where job.nextAttemptAt <= now {
                job.state = .deferred
                job.nextAttemptAt = now
                do {
                    try await storage.updateJob(job, expecting: .uncertain,
                                                event: "outgoing.uncertain resend_after: sent again after \(settings.uncertain.minutes) minutes")
                    logger.notice("uncertain job goes back to the queue (resend_after)", metadata: ["job": "\(job.id ?? 0)"])
                    wakeup.signal()
                } catch is JobStateConflict {
                    continue  // resolved meanwhile, or another node moved it
                }
            }
        } catch {
            logger.error("cannot read the uncertain jobs: \(error)")
        }
    }

    /// Jobs that just became uncertain: the policy acts, the sender is told, the log says so for the admin.
    func handleUncertain(_ jobs: [FaxJob]) async {
        let policy = settings.uncertain
        for var job in jobs {
            let meta: Logger.Metadata = ["job": "\(job.id ?? 0)", "number": "\(job.number)", "policy": "\(policy.effectivePolicy.rawValue)"]
            switch policy.effectivePolicy {
            case .admin:
                logger.warning("job is uncertain (interrupted on the line; the remote may have some pages): the administrator decides with faxgate queue resolve",
                               metadata: meta)
                await report(.uncertain(resendAt: nil, remaining: false), job: job, sff: [])
            case .resendAfter:
                let at = Date().addingTimeInterval(TimeInterval(policy.minutes * 60))
                job.nextAttemptAt = at
                do {
                    try await storage.updateJob(job, expecting: .uncertain, event: "outgoing.uncertain resend_after: sent again at \(Self.time(at)) unless resolved before")
                } catch {
                    logger.error("cannot schedule the uncertain job again: \(error)", metadata: meta)
                    continue
                }
                logger.warning("job is uncertain (interrupted on the line): it will be sent again at \(Self.time(at))", metadata: meta)
                await report(.uncertain(resendAt: at, remaining: false), job: job, sff: [])
            case .resendRemaining:
                do {
                    switch try await resolveUncertain(jobID: job.id ?? 0, action: .resendRemaining, by: "outgoing.uncertain resend_remaining") {
                    case .resolved(let ended, let new):
                        logger.warning("job is uncertain (interrupted on the line): the pages not confirmed go as job #\(new?.id ?? 0)", metadata: meta)
                        await report(.uncertain(resendAt: Date(), remaining: true), job: ended, sff: [])
                    case let other:
                        logger.error("uncertain job could not be split: \(other)", metadata: meta)
                    }
                } catch {
                    logger.error("uncertain job could not be split: \(error)", metadata: meta)
                }
            }
        }
    }

    static func time(_ date: Date) -> String { ISO8601DateFormatter().string(from: date) }

    /// Claims due jobs for the free channels (one transaction in the storage: no other node gets them) and
    /// starts their calls. Returns when to look again.
    private func startDueJobs(group: inout TaskGroup<Void>) async -> Date? {
        let s = settings
        let channels = await transport.channels
        let now = Date()
        if let reason = await pausedReason() {
            // Fenced (e.g. the database is lost): no new work; calls in flight go on.
            if reason != lastPausedReason { logger.warning("not taking new jobs: \(reason)") }
            lastPausedReason = reason
            return now.addingTimeInterval(TimeInterval(max(1, s.heartbeatSeconds)))
        }
        if lastPausedReason != nil { logger.notice("taking new jobs again"); lastPausedReason = nil }
        let free = channels - activeCount
        if free > 0 {
            let claimed: [FaxJob]
            do {
                claimed = try await storage.claimJobs(node: s.node, limit: free, now: now,
                                                      leaseUntil: now.addingTimeInterval(TimeInterval(s.leaseSeconds)))
            } catch {
                logger.error("cannot claim queued jobs: \(error)")
                return now.addingTimeInterval(5)
            }
            for job in claimed {
                guard let id = job.id else { continue }
                // A call here to this number outlived its lost lease: the storage no longer counts it, we do.
                if activeNumbers.contains(job.number) {
                    await giveBack(job, why: "a call to the same number is still on the line on \(s.node)")
                    continue
                }
                activeNumbers.insert(job.number)
                activeCount += 1
                inFlight[id] = job.number
                group.addTask { await self.attempt(job) }
            }
        }
        // When the next waiting job is due (claims only take due ones).
        let waiting: [FaxJob]
        do { waiting = try await storage.jobs(in: [.ready, .deferred]) } catch {
            logger.error("cannot read the queue: \(error)")
            return now.addingTimeInterval(5)
        }
        var nextDue: Date?
        for job in waiting {
            let due = max(job.nextAttemptAt, job.sendAt)
            // Due but not taken (lines busy, its number on the line): a finishing call wakes us; poll anyway.
            let look = due > now ? due : now.addingTimeInterval(TimeInterval(max(1, s.heartbeatSeconds)))
            nextDue = min(nextDue ?? look, look)
        }
        if channels == 0, !waiting.isEmpty { nextDue = min(nextDue ?? now.addingTimeInterval(5), now.addingTimeInterval(5)) }
        return nextDue
    }

    /// Puts a claimed job back unchanged (not dialled): the try does not count.
    private func giveBack(_ job: FaxJob, why: String) async {
        var back = job
        back.state = job.tries > 1 ? .deferred : .ready
        back.tries -= 1
        back.leaseOwner = nil
        back.leaseUntil = nil
        do {
            try await storage.updateJob(back, expecting: .active, event: "not dialled: \(why)")
        } catch {
            logger.error("cannot give back a claimed job: \(error)", metadata: ["job": "\(job.id ?? 0)"])
        }
    }

    private func attempt(_ job: FaxJob) async {
        let meta: Logger.Metadata = ["job": "\(job.id ?? 0)", "number": "\(job.number)", "try": "\(job.tries)"]
        var job = job
        let sff: [UInt8]
        do {
            sff = try await storage.jobDocument(job) ?? []
        } catch {
            // The storage did not answer (e.g. the database is unreachable): that says nothing about the document,
            // so the job is neither dialled nor failed; it goes back to the queue for a later try.
            logger.error("the job's document cannot be read now; not dialled, back to the queue: \(error)", metadata: meta)
            var back = job
            back.nextAttemptAt = Date().addingTimeInterval(60)
            await giveBack(back, why: "the document could not be read from the storage")
            finished(job)
            return
        }
        let outcome: SendOutcome
        // The configuration now decides, not the one the job was accepted under: number and dial string are
        // checked again, and the dial string is made afresh from the E.164 number by today's line rules.
        let destination: Result<DialString, DialRules.Refusal> = settings.rules?.destination(for: job)
            ?? DialString(job.dialString).map { .success($0) } ?? .failure(.dial(.notDiallable(job.dialString)))
        if sff.isEmpty {
            outcome = SendOutcome(cause: .localError, reason: 0, reasonB3: 0, text: "the document is missing from the spool",
                                  session: FaxSessionInfo(), pagesSent: 0, dialedAt: Date(), connectedAt: nil, endedAt: Date())
        } else if case .failure(let refusal) = destination {
            logger.warning("not dialled: the dial policy refuses it now: \(refusal)", metadata: meta)
            outcome = SendOutcome(cause: .blockedByPolicy, reason: 0, reasonB3: 0, text: "not dialled: \(refusal)",
                                  session: FaxSessionInfo(), pagesSent: 0, dialedAt: Date(), connectedAt: nil, endedAt: Date())
        } else if case .success(let dial) = destination {
            if dial.digits != job.dialString {
                logger.notice("dial string follows the current line settings", metadata: meta)
                job.dialString = dial.digits
            }
            let calling = settings.callingNumbers[job.extensionName]
            let station = settings.stationIDs[job.extensionName]
            logger.info("dialling", metadata: meta)
            // The job is active and leased in the database; the process dies as if the power went during the call.
            TestCrashPoint.reached("on-the-line")
            outcome = await transport.send(OutgoingFax(
                jobID: job.id ?? 0, dialString: dial, callingNumber: calling?.number,
                restrictCallingNumber: calling?.hide ?? false, stationID: station?.id ?? "", headline: station?.headline ?? "",
                fine: job.fine, sff: sff, modem: job.nextModem))
            // Only dialled attempts are calls; a refusal before dialling is not.
            GatewayMetrics.outgoingCall(cause: outcome.cause, pages: outcome.pagesSent, bytes: outcome.cause == .success ? sff.count : 0)
        } else {
            preconditionFailure("a Result is a success or a failure")
        }
        job.lastCause = outcome.cause.rawValue
        job.lastText = outcome.text
        job.connectedAt = outcome.connectedAt
        job.endedAt = outcome.endedAt
        if let remote = outcome.session.remoteStationID, !remote.isEmpty { job.remoteStationID = remote }
        if let rate = outcome.session.bitRate { job.bitRate = rate }
        job.pagesSent = max(job.pagesSent, outcome.pagesSent)
        job.takeEngineFacts(outcome.session)
        // A typed training or page failure is a protocol error whatever cause the transport put on it; the
        // existing cap on protocol-error retries applies to it.
        let modemFailure = outcome.cause != .success && outcome.session.failure.map { ModemFallback.changesModem($0.kind) } == true
        let protocolError = outcome.cause == .faxProtocolError || modemFailure
        if protocolError { job.protocolErrors += 1 }
        var fallbackNote = ""
        if outcome.cause != .success {
            let next = ModemFallback.next(after: outcome.session.failure, used: job.nextModem)
            if next != job.nextModem {
                fallbackNote = "; next try: \(next.summary)"
                logger.notice("modem fallback for the next try: \(next.summary)", metadata: meta)
                job.nextModem = next
            }
        }

        let r = settings.retry
        let expired = Date() > job.createdAt.addingTimeInterval(TimeInterval(r.killAfterHours * 3600))
        let causeDelay: Int? = switch outcome.cause {
        case .busy: r.busySeconds
        case .noAnswer: r.noAnswerSeconds
        case .networkFailure: r.networkFailureSeconds
        case .faxProtocolError: nil  // below, with the typed failures
        case .success, .invalidNumber, .rejected, .localError, .blockedByPolicy: nil
        }
        let retryDelay = protocolError ? (job.protocolErrors < r.maxProtocolErrors ? r.protocolErrorSeconds : nil) : causeDelay
        let status: OutgoingMailText.Status
        if outcome.cause == .success {
            job.state = .done
            status = .sent
        } else if let delay = retryDelay, job.tries < r.maxTries, !expired {
            job.state = .deferred
            job.nextAttemptAt = Date().addingTimeInterval(TimeInterval(delay))
            status = .retrying(next: job.nextAttemptAt)
        } else {
            job.state = .failed
            status = .failed
        }
        // Still ours? A job whose lease another node expired (it is uncertain now, maybe resent) is not reported
        // as ours: its result is only logged.
        guard await holdsLease(job) else {
            logger.error("lease lost during the call: result not recorded: \(outcome.cause.rawValue) (\(outcome.text)), pages \(outcome.pagesSent)/\(job.pages)",
                         metadata: meta)
            finished(job)
            return
        }
        job.leaseOwner = nil
        job.leaseUntil = nil
        if let id = job.id { inFlight[id] = nil }  // the result is written now: no more heartbeats for it
        do {
            try await storage.updateJob(job, expecting: .active, event: "\(outcome.cause.rawValue): \(outcome.text)\(fallbackNote)")
            GatewayMetrics.jobFinished(job.state)
        } catch {
            logger.error("cannot record the result: \(error)", metadata: meta)
        }
        // The result is committed (synchronous=FULL); the status mail follows. A crash here is repaired at the next
        // start by mailMissingReports, with the same outbox id.
        TestCrashPoint.reached("dial")
        logger.info("attempt ended: \(outcome.cause.rawValue) (\(outcome.text))", metadata: meta.merging([
            "pages": "\(outcome.pagesSent)/\(job.pages)", "state": "\(job.state.rawValue)",
        ]) { $1 })
        if case .retrying = status, !settings.notifyEachRetry {} else {
            await report(status, job: job, sff: sff)
        }
        finished(job)
    }

    /// Whether the job's lease is still this node's (renewed once more right before the result is written).
    private func holdsLease(_ job: FaxJob) async -> Bool {
        guard let id = job.id, !lostLeases.contains(id) else { return false }
        let s = settings
        do {
            return try await storage.renewLeases(node: s.node, jobIDs: [id], until: Date().addingTimeInterval(TimeInterval(s.leaseSeconds))).contains(id)
        } catch {
            // The database cannot confirm it: write nothing (fail closed); the lease runs out into uncertain.
            logger.error("cannot confirm the lease before recording the result: \(error)", metadata: ["job": "\(id)"])
            return false
        }
    }

    private func finished(_ job: FaxJob) {
        activeNumbers.remove(job.number)
        activeCount -= 1
        if let id = job.id { inFlight[id] = nil; lostLeases.remove(id) }
        wakeup.signal()
    }

    /// Final jobs whose status mail never reached the outbox (the gateway stopped between recording the result
    /// and queueing the mail): queue it now. The outbox id derives from the job and the result, so a mail that was
    /// queued, sent or given up is never made twice.
    func mailMissingReports() async {
        let finished: [FaxJob]
        do { finished = try await storage.jobs(in: [.done, .failed, .canceled]) } catch {
            logger.error("cannot read finished jobs to check their status mails: \(error)")
            return
        }
        // A job ended by an uncertain split told its sender then (the new job reports the rest).
        for job in finished where MailboxSyntax.isAddress(job.sender) && job.lastCause != Self.uncertainSplitCause {
            let status: OutgoingMailText.Status = job.state == .done ? .sent : .failed
            guard !(await outbox.isKnown(Self.outboxID(status, job: job))) else { continue }
            logger.notice("status mail of a finished job was not queued before the last stop; queueing it now", metadata: ["job": "\(job.id ?? 0)"])
            await report(status, job: job, sff: [UInt8](FileManager.default.contents(atPath: job.sffPath) ?? Data()))
        }
    }

    /// The outbox id of a job's status mail: one per job and result (and per retry when each retry is reported).
    static func outboxID(_ status: OutgoingMailText.Status, job: FaxJob) -> String {
        let kind = switch status {
        case .sent: "done"; case .failed: "failed"; case .retrying: "retry-\(job.tries)"; case .uncertain: "uncertain-\(job.tries)"
        }
        return "job-\(job.id ?? 0)-\(kind)"
    }

    /// The status mail to the sender, with the transmission report PDF.
    func report(_ status: OutgoingMailText.Status, job: FaxJob, sff: [UInt8]) async {
        // CLI submissions without --notify have nobody to tell; the journal has the result.
        guard MailboxSyntax.isAddress(job.sender) else { return }
        let text = OutgoingMailText(language: job.language)
        var attachments: [MailAttachment] = []
        if status.hasReport {
            var firstPage: FaxPage?
            if !sff.isEmpty {
                do {
                    // The document's first page, not the cover or the text page in front of it.
                    let pages = try SFFReader.read(sff).pages
                    firstPage = pages.indices.contains(job.documentPage) ? pages[job.documentPage] : pages.first
                } catch {
                    // The report is still sent, without the thumbnail.
                    logger.warning("send report without thumbnail: the document cannot be read: \(error)", metadata: ["job": "\(job.id ?? 0)"])
                }
            }
            let facts = SendReportFacts(
                number: job.number, remoteStationID: job.remoteStationID ?? "", start: job.dialedAt ?? job.createdAt,
                duration: job.endedAt.map { $0.timeIntervalSince(job.connectedAt ?? job.dialedAt ?? $0) } ?? 0,
                pagesSent: job.pagesSent, pagesTotal: job.pages, resolution: job.fine ? .fine : .normal,
                bitRate: job.bitRate ?? 0, resultText: text.resultText(job),
                success: job.state == .done, jobID: "\(job.id ?? 0)", sender: job.sender, language: job.language)
            do {
                var facts = facts
                facts.documentPageNumber = job.documentPage + 1
                let pdf = try await SendReport.pdf(facts, firstPage: firstPage)
                attachments.append(MailAttachment(filename: "sendebericht-\(job.id ?? 0).pdf", contentType: "application/pdf", data: pdf))
            } catch {
                logger.error("send report could not be made: \(error)", metadata: ["job": "\(job.id ?? 0)"])
            }
        }
        var headers: [(String, String)] = [("Auto-Submitted", "auto-replied"), ("X-Faxgate-Job", "\(job.id ?? 0)")]
        if let original = job.requestMessageID { headers += [("In-Reply-To", original), ("References", original)] }
        let message = MailMessage(
            from: settings.from, to: [MailAddress(job.sender, displayName: job.senderName)], cc: [],
            subject: text.statusSubject(status, job: job), date: Date(), messageID: MailMessage.makeMessageID(domain: settings.hostname),
            extraHeaders: headers, textBody: text.statusBody(status, job: job), attachments: attachments)
        do {
            _ = try await outbox.enqueue(message: message.render(), envelopeFrom: "", recipients: [job.sender], callID: nil,
                                         id: Self.outboxID(status, job: job), jobID: job.id)
        } catch {
            logger.error("status mail could not be queued: \(error)", metadata: ["job": "\(job.id ?? 0)"])
        }
    }

    /// Cancels a job that is not on the line. Returns what happened, for the CLI's answer.
    public func cancel(jobID: Int64) async throws -> String {
        switch try await cancelJob(jobID: jobID) {
        case .canceled: return "job #\(jobID) canceled"
        case .notFound: return "no job #\(jobID)"
        case .onTheLine: return "job #\(jobID) is on the line now; it cannot be stopped mid-call"
        case .finished(let state): return "job #\(jobID) is already \(state.rawValue)"
        }
    }

    /// What `cancelJob` did (the web pages say it in the reader's language).
    public enum CancelResult: Sendable, Equatable {
        case canceled
        case notFound
        case onTheLine
        case finished(FaxJob.State)
    }

    /// Cancels a waiting (ready or deferred) job. The update expects the state read, so a job the dialler takes
    /// in the same moment is never overwritten: the cancel then answers `onTheLine` and the call goes on.
    /// `by` names who canceled in the job's history (nil: the CLI's "canceled").
    public func cancelJob(jobID: Int64, by actor: String? = nil) async throws -> CancelResult {
        guard var job = try await storage.job(id: jobID) else { return .notFound }
        guard job.state == .ready || job.state == .deferred else {
            return job.state == .active ? .onTheLine : .finished(job.state)
        }
        let previous = job.state
        job.state = .canceled
        job.lastCause = "canceled"
        job.lastText = "canceled on request"
        do {
            try await storage.updateJob(job, expecting: previous, event: actor.map { "canceled by \($0)" } ?? "canceled")
            GatewayMetrics.jobFinished(.canceled)
        } catch let conflict as JobStateConflict {
            guard let actual = conflict.actual else { return .notFound }
            return actual == .active ? .onTheLine : actual.isFinal ? .finished(actual) : .onTheLine
        }
        await report(.failed, job: job, sff: [UInt8]((FileManager.default.contents(atPath: job.sffPath)) ?? Data()))
        return .canceled
    }

    /// What `retryNow` did (the web's queue page shows it in the reader's language).
    public enum RetryNowResult: Sendable, Equatable {
        case moved
        case notFound
        /// Only a waiting (deferred) job can be moved; this one is in another state now.
        case notWaiting(FaxJob.State)
    }

    /// A deferred job's next try moves to now and the queue looks at once. The update expects `deferred`, so a
    /// job the dialler took meanwhile (or a cancel) is never overwritten; the try still counts against max_tries.
    public func retryNow(jobID: Int64, by actor: String) async throws -> RetryNowResult {
        guard var job = try await storage.job(id: jobID) else { return .notFound }
        guard job.state == .deferred else { return .notWaiting(job.state) }
        job.nextAttemptAt = Date()
        do {
            try await storage.updateJob(job, expecting: .deferred, event: "retry now (\(actor))")
        } catch let conflict as JobStateConflict {
            return conflict.actual.map { .notWaiting($0) } ?? .notFound
        }
        logger.info("next try moved to now on request", metadata: ["job": "\(jobID)"])
        wake()
        return .moved
    }

    /// Queues a finished job again as a new job with the same document — through the same checks as a new
    /// submission under today's configuration: the sender must still be allowed, the number and its dial
    /// string must pass the dial policy, and the new job counts against the original daily limit.
    /// Answers starting with "refused:" make the CLI exit non-zero.
    public func resend(jobID: Int64) async throws -> String {
        switch try await resendJob(jobID: jobID) {
        case .queued(let job): return "job #\(job.id ?? 0) queued (resend of #\(jobID))"
        case .notFound: return "no job #\(jobID)"
        case .notFinished(let state): return "job #\(jobID) is still \(state.rawValue)"
        case .documentGone: return "the document of job #\(jobID) is no longer stored"
        case .refused(let refusal): return "refused: resend of job #\(jobID): \(refusal)"
        }
    }

    /// What `resendJob` did (the web pages say it in the reader's language).
    public enum ResendResult: Sendable, Equatable {
        case queued(FaxJob)
        case notFound
        case notFinished(FaxJob.State)
        case documentGone
        case refused(DialRules.Refusal)
    }

    /// `resend` with a typed answer; the one implementation of the rules (CLI and web pages).
    public func resendJob(jobID: Int64, by actor: String? = nil) async throws -> ResendResult {
        guard let old = try await storage.job(id: jobID) else { return .notFound }
        guard old.state.isFinal else { return .notFinished(old.state) }
        guard FileManager.default.fileExists(atPath: old.sffPath) else { return .documentGone }
        var job = FaxJob(intakeID: old.intakeID, sender: old.sender, senderName: old.senderName, extensionName: old.extensionName,
                         language: old.language, number: old.number, dialString: old.dialString, subject: old.subject,
                         pages: old.pages, fine: old.fine, sffPath: old.sffPath, requestMessageID: old.requestMessageID)
        job.limitKey = old.limitKey ?? old.sender.lowercased()
        job.documentPage = old.documentPage
        let meta: Logger.Metadata = ["job": "\(jobID)"]
        if let rules = settings.rules {
            if let refusal = rules.mayResend(old, local: DialRules.isLocal(limitKey: job.limitKey!, sender: old.sender)) {
                logger.notice("resend refused: \(refusal)", metadata: meta)
                return .refused(refusal)
            }
            switch rules.destination(for: old) {
            case .failure(let refusal):
                logger.notice("resend refused: \(refusal)", metadata: meta)
                return .refused(refusal)
            case .success(let dial):
                job.dialString = dial.digits
            }
            if let refusal = try await rules.checkLimits(storage: storage, limitKey: job.limitKey!, newJobs: 1, newPages: old.pages) {
                logger.notice("resend refused: \(refusal)", metadata: meta)
                return .refused(refusal)
            }
        } else if DialString(old.dialString) == nil {
            return .refused(.dial(.notDiallable(old.dialString)))
        }
        let saved = try await storage.insertJobs([job], intake: nil, event: "resend of job #\(jobID)" + (actor.map { " by \($0)" } ?? ""))
        wake()
        return .queued(saved.first ?? job)
    }

    // MARK: Uncertain jobs (issue 11)

    /// `lastCause` of a job ended because its unconfirmed pages went on as a new job.
    public static let uncertainSplitCause = "uncertain"

    /// The administrator's (or the policy's) decision on an uncertain job.
    public enum UncertainAction: String, Sendable, CaseIterable {
        /// Dial the whole document again (the same job, its tries go on).
        case resend
        /// A new job with the pages the remote had not confirmed; this one ends.
        case resendRemaining = "resend-remaining"
        /// The remote got it: the job is done (the sender gets the send report).
        case done
        /// Give up: the job failed (the sender gets the report).
        case fail
    }

    public enum ResolveResult: Sendable, Equatable {
        /// `ended`: the job as stored now; `new`: the job with the remaining pages (resendRemaining).
        case resolved(FaxJob, new: FaxJob?)
        case notFound
        case notUncertain(FaxJob.State)
        case documentGone
    }

    /// `resolveUncertain` for the CLI: one line of answer ("not …" makes `faxgate queue resolve` exit non-zero).
    public func resolve(jobID: Int64, action: UncertainAction, by actor: String) async throws -> String {
        switch try await resolveUncertain(jobID: jobID, action: action, by: actor) {
        case .resolved(let job, let new):
            if let new { return "job #\(jobID) ended; pages \(job.pagesSent + 1)–\(job.pages) queued as job #\(new.id ?? 0)" }
            return "job #\(jobID) is \(job.state.rawValue) now"
        case .notFound: return "not found: no job #\(jobID)"
        case .notUncertain(let state): return "not uncertain: job #\(jobID) is \(state.rawValue)"
        case .documentGone: return "not possible: the document of job #\(jobID) is no longer stored"
        }
    }

    /// Decides an uncertain job. Every update expects `uncertain`, so two decisions (two admins, the policy on two
    /// nodes) never both act: the second gets `notUncertain`.
    public func resolveUncertain(jobID: Int64, action: UncertainAction, by actor: String) async throws -> ResolveResult {
        guard var job = try await storage.job(id: jobID) else { return .notFound }
        guard job.state == .uncertain else { return .notUncertain(job.state) }
        let meta: Logger.Metadata = ["job": "\(jobID)", "action": "\(action.rawValue)"]
        do {
            switch action {
            case .resend:
                job.state = .deferred
                job.nextAttemptAt = Date()
                try await storage.updateJob(job, expecting: .uncertain, event: "uncertain: sent again (\(actor))")
                logger.notice("uncertain job sent again", metadata: meta)
                wake()
                return .resolved(job, new: nil)
            case .done, .fail:
                job.state = action == .done ? .done : .failed
                job.lastText = action == .done ? "confirmed as received by \(actor) after an interrupted call"
                                               : "given up by \(actor) after an interrupted call"
                if action == .done { job.pagesSent = job.pages }
                try await storage.updateJob(job, expecting: .uncertain, event: "uncertain: marked \(job.state.rawValue) (\(actor))")
                GatewayMetrics.jobFinished(job.state)
                logger.notice("uncertain job marked \(job.state.rawValue)", metadata: meta)
                await report(job.state == .done ? .sent : .failed, job: job, sff: (try? await storage.jobDocument(job)) ?? nil ?? [])
                return .resolved(job, new: nil)
            case .resendRemaining:
                return try await splitRemaining(job, by: actor)
            }
        } catch let conflict as JobStateConflict {
            return conflict.actual.map { .notUncertain($0) } ?? .notFound
        }
    }

    /// A new job with the pages after `pagesSent` (the ones the remote had not confirmed), written as a new SFF
    /// next to the old one; the old job ends (failed, cause `uncertain`, naming the new job). The header line is
    /// not in the SFF (the fax engine adds it while sending), so the new pages get theirs like any fax.
    private func splitRemaining(_ old: FaxJob, by actor: String) async throws -> ResolveResult {
        guard let id = old.id, let bytes = try await storage.jobDocument(old), !bytes.isEmpty else { return .documentGone }
        let pages = try SFFReader.read(bytes).pages
        let confirmed = min(max(0, old.pagesSent), pages.count)
        var ended = old
        ended.state = .failed
        ended.lastCause = Self.uncertainSplitCause
        guard confirmed < pages.count else {
            // Every page was confirmed: nothing remains, the fax went through.
            ended.state = .done
            ended.lastText = "all pages confirmed before the interruption"
            try await storage.updateJob(ended, expecting: .uncertain, event: "uncertain: all \(pages.count) pages were confirmed (\(actor))")
            return .resolved(ended, new: nil)
        }
        let rest = Array(pages[confirmed...])
        let base = (old.sffPath as NSString).deletingPathExtension
        let path = "\(base)-from-page-\(confirmed + 1)-\(UInt32.random(in: 0...UInt32.max)).sff"
        try DurableFile.write(SFFWriter.write(rest), to: path, mode: 0o640)
        var job = FaxJob(intakeID: old.intakeID, sender: old.sender, senderName: old.senderName, extensionName: old.extensionName,
                         language: old.language, number: old.number, dialString: old.dialString, subject: old.subject,
                         pages: rest.count, fine: old.fine, sffPath: path, requestMessageID: old.requestMessageID)
        job.limitKey = old.limitKey ?? old.sender.lowercased()
        job.documentPage = max(0, old.documentPage - confirmed)
        job.nextModem = old.nextModem
        let inserted = try await storage.insertJobs([job], intake: nil,
                                                    event: "pages \(confirmed + 1)–\(pages.count) of job #\(id) after an interrupted call (\(actor))")
        let new = inserted.first ?? job
        ended.lastText = "interrupted on the line; pages \(confirmed + 1)–\(pages.count) continue as job #\(new.id ?? 0)"
        do {
            try await storage.updateJob(ended, expecting: .uncertain, event: "uncertain: the pages not confirmed went to job #\(new.id ?? 0) (\(actor))")
        } catch {
            // Decided elsewhere meanwhile: the new job must not be dialled as well.
            var canceled = new
            canceled.state = .canceled
            canceled.lastText = "job #\(id) was decided otherwise meanwhile"
            try? await storage.updateJob(canceled, expecting: .ready, event: "canceled: job #\(id) was decided otherwise meanwhile")
            throw error
        }
        logger.notice("uncertain job split: pages \(confirmed + 1)–\(pages.count) as job #\(new.id ?? 0)", metadata: ["job": "\(id)"])
        wake()
        return .resolved(ended, new: new)
    }
}

extension OutgoingMailText.Status {
    /// Whether the mail carries a send report (a final result).
    var hasReport: Bool {
        switch self { case .sent, .failed: true; case .retrying, .uncertain: false }
    }
}
