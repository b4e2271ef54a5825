import FaxgateCore
import FaxgateWeb
import FaxRender
import Foundation
import Logging
import ServiceLifecycle

/// The web pages' job operations on the running gateway: cancel and resend through the `SendQueue` (the same code
/// as `faxgate cancel`/`resend`), browser submissions through the `SubmissionProcessor` (the same checks and
/// sandboxed rendering as mail → fax).
///
/// A browser submission is stored before anything else (`<spool>/intake/web-<token>.fax`, 0600: one JSON line
/// with the form's values, then the uploaded files' bytes) and recorded in the intake ledger (source `web`,
/// Message-ID `web-<token>`), then rendered in the background. A stop during rendering leaves the row `fetched`;
/// `run()` renders it at the next start. Retention removes the stored file with the submission's last job, or
/// with the refused intake (rawPath).
actor WebJobOperations: JobOperations, Service {
    private let storage: any Storage
    private let queue: SendQueue
    private let processor: SubmissionProcessor
    private let configuration: @Sendable () -> Configuration
    private let spoolDirectory: String
    private let logger: Logger
    /// Answers of this run: the typed refusal (for the user's language) and the jobs of accepted submissions.
    private var refusals: [Int64: SubmissionProcessor.Refusal] = [:]
    private var jobIDs: [Int64: [Int64]] = [:]

    init(storage: any Storage, queue: SendQueue, processor: SubmissionProcessor, configuration: @escaping @Sendable () -> Configuration,
         spoolDirectory: String, logger: Logger) {
        self.storage = storage; self.queue = queue; self.processor = processor; self.configuration = configuration
        self.spoolDirectory = spoolDirectory; self.logger = logger
    }

    /// Renders the browser submissions a stop interrupted, then waits for the end.
    func run() async throws {
        do {
            for record in try await storage.intakes(in: [.fetched]) where record.source == Self.source {
                await process(record)
            }
        } catch {
            logger.error("cannot look for unfinished browser submissions: \(error)")
        }
        try? await gracefulShutdown()
    }

    // MARK: Cancel, resend

    func cancel(jobID: Int64, by actor: WebActor) async throws -> JobCancelResult {
        guard let job = try await storage.job(id: jobID), actor.user.maySee(extensionName: job.extensionName) else { return .notFound }
        let result: JobCancelResult = switch try await queue.cancelJob(jobID: jobID, by: "web:\(actor.user.name)") {
        case .canceled: .canceled
        case .notFound: .notFound
        case .onTheLine: .onTheLine
        case .finished(let state): .finished(state)
        }
        try await audit(actor, "job.cancel", "job \(jobID)", "\(result)")
        return result
    }

    func resend(jobID: Int64, by actor: WebActor) async throws -> JobResendResult {
        guard let job = try await storage.job(id: jobID), actor.user.maySee(extensionName: job.extensionName) else { return .notFound }
        let result: JobResendResult = switch try await queue.resendJob(jobID: jobID, by: "web:\(actor.user.name)") {
        case .queued(let new): .queued(newJobID: new.id ?? 0)
        case .notFound: .notFound
        case .notFinished(let state): .notFinished(state)
        case .documentGone: .documentGone
        case .refused(let refusal): .refused(refusal)
        }
        let detail: String = switch result {
        case .queued(let id): "queued as job \(id)"
        case .refused(let reason): "refused: \(reason.text("en"))"
        default: "\(result)"
        }
        try await audit(actor, "job.resend", "job \(jobID)", detail)
        return result
    }

    // MARK: Browser submissions

    static let source = "web"

    /// What daily limits count a web user's faxes under.
    static func limitKey(_ user: WebUser) -> String { "web:\(user.name)" }

    func checkNumber(_ written: String, extensionName: String, by actor: WebActor) async throws -> (any LocalizedReason)? {
        let config = configuration()
        guard actor.user.maySee(extensionName: extensionName),
              let ext = config.extensions.first(where: { $0.name == extensionName }) else {
            return SubmissionReason.noSuchExtension(extensionName)
        }
        let plan = NumberPlan(config.outgoing.line)
        let e164: String
        switch WebNumber.parse(written, plan: plan) {
        case .failure(let problem): return problem
        case .success(let number): e164 = number
        }
        let policy = DialPolicy(config: config.outgoing.policy, plan: plan)
        if case .failure(let refusal) = policy.checkDestination(e164: e164, allowInternational: ext.senders.allowInternational) {
            return refusal
        }
        return try await DialRules(config).checkLimits(storage: storage, limitKey: Self.limitKey(actor.user), newJobs: 1, newPages: 0)
    }

    /// The form's values as stored: the first line of the submission file.
    struct Stored: Codable {
        struct File: Codable { var name: String; var contentType: String; var size: Int }
        var user: String
        var extensionName: String
        var number: String
        var subject: String
        var cover: Bool
        var message: String
        var sendAt: Date?
        var fine: Bool?
        var submittedAt: Date
        var files: [File]
    }

    func submit(_ submission: WebFaxSubmission, by actor: WebActor) async throws -> WebSubmitResult {
        if let refusal = try await checkNumber(submission.number, extensionName: submission.extensionName, by: actor) {
            return .refused(refusal)
        }
        // The type comes from the bytes, never from the name or the browser's claim.
        var files: [Stored.File] = []
        for file in submission.files {
            guard let type = WebUpload.contentType(of: file.bytes) else {
                return .refused(SubmissionReason.unsupportedAttachment(.attachment(filename: file.name, contentType: "application/octet-stream")))
            }
            files.append(.init(name: file.name, contentType: type, size: file.bytes.count))
        }
        if files.isEmpty && submission.message.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty && !submission.cover {
            return .refused(SubmissionReason.nothingToFax)
        }
        let token = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        let stored = Stored(user: actor.user.name, extensionName: submission.extensionName, number: submission.number,
                            subject: submission.subject, cover: submission.cover, message: submission.message,
                            sendAt: submission.sendAt, fine: submission.fine, submittedAt: Date(), files: files)
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        var bytes = [UInt8](try encoder.encode(stored))
        bytes.append(0x0A)
        for file in submission.files { bytes += file.bytes }
        try DurableFile.makeDirectory("\(spoolDirectory)/intake")
        let path = "\(spoolDirectory)/intake/web-\(token).fax"
        try DurableFile.write(bytes, to: path)
        let uid = Int64(bitPattern: UInt64(UInt32.random(in: 0...UInt32.max)) << 31 | UInt64(UInt32.random(in: 0...UInt32.max))) & Int64.max
        let (record, _) = try await storage.recordIntake(IntakeRecord(source: Self.source, uidValidity: 0, uid: uid,
                                                                      messageID: "web-\(token)", rawPath: path))
        try await audit(actor, "fax.send", "intake \(record.id ?? 0)",
                        "extension \(submission.extensionName), \(files.count) file(s)\(submission.cover ? ", cover page" : "")")
        // Rendering takes seconds; the status page follows it. A stop meanwhile leaves the row `fetched` for run().
        Task { await self.process(record) }
        return .accepted(intakeID: record.id ?? 0)
    }

    /// Reads the stored submission back: its values and its files.
    static func read(_ path: String) throws -> (Stored, [IncomingMail.Attachment]) {
        guard let data = FileManager.default.contents(atPath: path) else { throw StorageError("the submission \(path) is missing") }
        let bytes = [UInt8](data)
        guard let newline = bytes.firstIndex(of: 0x0A) else { throw StorageError("the submission \(path) is damaged") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let stored = try decoder.decode(Stored.self, from: Data(bytes[..<newline]))
        var offset = newline + 1
        var attachments: [IncomingMail.Attachment] = []
        for file in stored.files {
            guard offset + file.size <= bytes.count else { throw StorageError("the submission \(path) is truncated") }
            attachments.append(.init(filename: file.name, contentType: file.contentType, data: Array(bytes[offset..<offset + file.size])))
            offset += file.size
        }
        return (stored, attachments)
    }

    /// Hands a stored submission to the processor, as a mail from the web user with the form's choices as the
    /// X-Fax headers a mail would carry.
    private func process(_ record: IntakeRecord) async {
        guard let id = record.id else { return }
        do {
            let (stored, attachments) = try Self.read(record.rawPath)
            var headers: [(name: String, value: String)] = [("X-Fax-Cover", stored.cover ? "yes" : "no")]
            let message = stored.message.trimmingCharacters(in: .whitespacesAndNewlines)
            // The message goes on the cover page when it fits there, else onto a page of its own: never dropped.
            if !message.isEmpty { headers.append(("X-Fax-Body", "yes")) }
            if let fine = stored.fine { headers.append(("X-Fax-Resolution", fine ? "fine" : "normal")) }
            if let at = stored.sendAt { headers.append(("X-Fax-Send-At", ISO8601DateFormatter().string(from: at))) }
            let mail = IncomingMail(fromAddress: "web:\(stored.user)", fromName: stored.user, to: [], subject: stored.subject,
                                    messageID: record.messageID, headers: headers, textBody: message.isEmpty ? nil : message,
                                    attachments: attachments)
            let local = SubmissionProcessor.LocalSubmission(extensionName: stored.extensionName, numbers: [stored.number],
                                                            limitKey: "web:\(stored.user)")
            switch try await processor.answer(mail, intake: record, local: local) {
            case .queued(let jobs)?: jobIDs[id] = jobs.compactMap(\.id)
            case .refused(let refusal)?: refusals[id] = refusal
            case nil: break
            }
        } catch {
            logger.error("browser submission not processed; it is tried again at the next start", metadata: ["intake": "\(id)", "error": "\(error)"])
        }
    }

    func submission(id: Int64) async throws -> WebSubmissionStatus? {
        guard let record = try await storage.intakes(source: Self.source, movedOnServer: false).first(where: { $0.id == id }),
              let (stored, _) = try? Self.readHeader(record.rawPath) else { return nil }
        var jobs: [FaxJob] = []
        let state: WebSubmissionStatus.State
        switch record.state {
        case .fetched: state = .rendering
        case .accepted:
            state = .queued
            if jobIDs[id] == nil {
                // After a restart: the jobs of this intake, looked up once.
                jobIDs[id] = try await storage.jobs(in: Set(FaxJob.State.allCases)).filter { $0.intakeID == id }.compactMap(\.id)
            }
            for jobID in jobIDs[id] ?? [] { if let job = try await storage.job(id: jobID) { jobs.append(job) } }
        case .rejected, .ignored: state = .refused
        }
        return WebSubmissionStatus(intakeID: id, state: state, extensionName: stored.extensionName, userName: stored.user,
                                   number: stored.number, submittedAt: stored.submittedAt, jobs: jobs, refusal: refusals[id].map { CombinedReason($0.reason, details: $0.details) },
                                   refusalText: record.detail)
    }

    /// Only the first line (the form's values), without reading the documents.
    static func readHeader(_ path: String) throws -> (Stored, Int) {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw StorageError("the submission \(path) is missing") }
        defer { try? handle.close() }
        let head = [UInt8](try handle.read(upToCount: 256 * 1024) ?? Data())
        guard let newline = head.firstIndex(of: 0x0A) else { throw StorageError("the submission \(path) is damaged") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return (try decoder.decode(Stored.self, from: Data(head[..<newline])), newline + 1)
    }

    private func audit(_ actor: WebActor, _ action: String, _ target: String, _ detail: String) async throws {
        do {
            try await storage.appendAudit(AuditEntry(actor: actor.user.name, clientAddress: actor.clientAddress, action: action,
                                                     target: target, detail: detail))
        } catch {
            logger.error("audit entry not written: \(error)", metadata: ["action": "\(action)"])
        }
    }
}
