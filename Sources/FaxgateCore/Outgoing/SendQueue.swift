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
        public init(from: MailAddress, hostname: String, retry: RetryConfig, notifyEachRetry: Bool,
                    callingNumbers: [String: (number: String?, hide: Bool)], stationIDs: [String: (id: String, headline: String)],
                    rules: DialRules? = nil) {
            self.from = from; self.hostname = hostname; self.retry = retry; self.notifyEachRetry = notifyEachRetry
            self.callingNumbers = callingNumbers; self.stationIDs = stationIDs; self.rules = rules
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

    public init(settings: Settings, storage: any Storage, transport: any FaxSendingTransport, outbox: Outbox, logger: Logger,
                live: LiveConfiguration? = nil) {
        self.fixedSettings = settings; self.live = live; self.storage = storage; self.transport = transport; self.outbox = outbox; self.logger = logger
    }

    /// New work or a cancel: look at the queue now.
    public nonisolated func wake() { wakeup.signal() }

    public func run() async throws {
        // A job that was on the line when we stopped: we cannot know what the remote got. Try again, and say so.
        for var job in try await storage.jobs(in: [.active]) {
            job.state = .deferred
            job.nextAttemptAt = Date()
            job.lastText = "interrupted by a gateway restart during the call"
            try await storage.updateJob(job, expecting: .active, event: "found active at start; will retry")
        }
        await mailMissingReports()
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

    /// Starts every job that is due, has a free channel and no call to the same number. Returns when to look again.
    private func startDueJobs(group: inout TaskGroup<Void>) async -> Date? {
        let channels = await transport.channels
        let jobs: [FaxJob]
        do { jobs = try await storage.jobs(in: [.ready, .deferred]) } catch {
            logger.error("cannot read the queue: \(error)")
            return Date().addingTimeInterval(5)
        }
        var nextDue: Date?
        let now = Date()
        for job in jobs {
            let due = max(job.nextAttemptAt, job.sendAt)
            if due > now { nextDue = min(nextDue ?? due, due); continue }
            if activeNumbers.contains(job.number) { continue }
            guard activeCount < channels else {
                // All lines busy: a finishing call wakes us.
                break
            }
            var active = job
            active.state = .active
            active.tries += 1
            active.dialedAt = Date()
            do {
                try await storage.updateJob(active, expecting: job.state, event: "dialling \(job.dialString) (try \(active.tries))")
            } catch {
                continue  // cancelled meanwhile
            }
            activeNumbers.insert(job.number)
            activeCount += 1
            group.addTask { await self.attempt(active) }
        }
        if channels == 0, !jobs.isEmpty { nextDue = min(nextDue ?? now.addingTimeInterval(5), now.addingTimeInterval(5)) }
        return nextDue
    }

    private func attempt(_ job: FaxJob) async {
        let meta: Logger.Metadata = ["job": "\(job.id ?? 0)", "number": "\(job.number)", "try": "\(job.tries)"]
        var job = job
        let sff: [UInt8]
        if let data = FileManager.default.contents(atPath: job.sffPath) {
            sff = [UInt8](data)
        } else {
            sff = []
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
        finished(job.number)
    }

    private func finished(_ number: String) {
        activeNumbers.remove(number)
        activeCount -= 1
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
        for job in finished where MailboxSyntax.isAddress(job.sender) {
            let status: OutgoingMailText.Status = job.state == .done ? .sent : .failed
            guard !outbox.isKnown(Self.outboxID(status, job: job)) else { continue }
            logger.notice("status mail of a finished job was not queued before the last stop; queueing it now", metadata: ["job": "\(job.id ?? 0)"])
            await report(status, job: job, sff: [UInt8](FileManager.default.contents(atPath: job.sffPath) ?? Data()))
        }
    }

    /// The outbox id of a job's status mail: one per job and result (and per retry when each retry is reported).
    static func outboxID(_ status: OutgoingMailText.Status, job: FaxJob) -> String {
        let kind = switch status { case .sent: "done"; case .failed: "failed"; case .retrying: "retry-\(job.tries)" }
        return "job-\(job.id ?? 0)-\(kind)"
    }

    /// The status mail to the sender, with the transmission report PDF.
    func report(_ status: OutgoingMailText.Status, job: FaxJob, sff: [UInt8]) async {
        // CLI submissions without --notify have nobody to tell; the journal has the result.
        guard MailboxSyntax.isAddress(job.sender) else { return }
        let text = OutgoingMailText(language: job.language)
        var attachments: [MailAttachment] = []
        if case .retrying = status {} else {
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
}
