import FaxDocument
import FaxRender
import Foundation
import Logging
import MailOut

/// Turns one mail into fax jobs — or into a refusal that says why. The one entry point for every intake
/// (IMAP, Maildir, the CLI's drop directory), as cleanup(8) is for Postfix.
///
/// Idempotent per intake record: a record that is no longer `fetched` is not processed again, and replies go
/// to the outbox under an id derived from the record, so a crash between steps never faxes or replies twice.
/// Refused mail never dials.
public actor SubmissionProcessor {
    public struct Settings: Sendable {
        public var spoolDirectory: String
        public var from: MailAddress
        public var hostname: String
        public init(spoolDirectory: String, from: MailAddress, hostname: String) {
            self.spoolDirectory = spoolDirectory; self.from = from; self.hostname = hostname
        }
    }

    /// A refusal: one sentence for the sender, plus details (the parts concerned). Typed reasons, rendered in
    /// the reader's language only when the reply is written, so no sentence of one language lands in the other.
    public struct Refusal: Error, Sendable, CustomStringConvertible {
        public var reason: any LocalizedReason
        public var details: [any LocalizedReason]
        /// Technical findings for the admin (log, journal), never put into the reply: they are English and may
        /// quote the mail at length.
        public var adminNotes: [String]
        public init(_ reason: any LocalizedReason, details: [any LocalizedReason] = [], adminNotes: [String] = []) {
            self.reason = reason; self.details = details; self.adminNotes = adminNotes
        }
        public init(de: String, en: String, details: [any LocalizedReason] = [], adminNotes: [String] = []) {
            self.init(LocalizedText(de: de, en: en), details: details, adminNotes: adminNotes)
        }
        /// English, for the log and the intake record (the admin's journal), never for the sender's reply.
        public var description: String { reason.text("en") }
        public var detail: [String] { details.map { $0.text("en") } + adminNotes }
    }

    private let settings: Settings
    /// The configuration given at construction; with `live`, the live one (file + office settings) instead.
    private let fixedConfig: Configuration
    /// Sender allow lists, secrets and the dial policy edited on the web apply to the next mail without a restart.
    private let live: LiveConfiguration?
    private var config: Configuration { live?.current ?? fixedConfig }
    private let storage: any Storage
    private let outbox: Outbox
    private let logger: Logger
    private let addressing: FaxAddressing
    private var senders: SenderPolicy { SenderPolicy(extensions: config.extensions, trustedMTA: config.outgoing.trustedMTA) }
    private var dialPolicy: DialPolicy { DialPolicy(config: config.outgoing.policy, plan: addressing.plan) }
    private let jobsAdded: @Sendable () -> Void

    public init(settings: Settings, config: Configuration, storage: any Storage, outbox: Outbox, logger: Logger,
                live: LiveConfiguration? = nil, jobsAdded: @escaping @Sendable () -> Void) throws {
        self.settings = settings; self.fixedConfig = config; self.live = live; self.storage = storage; self.outbox = outbox; self.logger = logger
        self.jobsAdded = jobsAdded
        let plan = NumberPlan(config.outgoing.line)
        addressing = FaxAddressing(faxDomains: config.outgoing.faxDomains, subjectAddresses: config.outgoing.subjectAddresses, plan: plan)
        for dir in ["outgoing", "rejected"] {
            try DurableFile.makeDirectory("\(settings.spoolDirectory)/\(dir)")  // 0700 whatever the umask
        }
    }

    /// Decides about one stored mail and records the decision. Returns the updated intake record.
    /// A submission from the local CLI: the admin on the machine is trusted to use the named extension,
    /// and names the numbers directly. Dial policy and limits still apply.
    public struct LocalSubmission: Sendable {
        public var extensionName: String
        public var numbers: [String]
        /// The local user who submitted (owner of the drop request): daily limits count per local user.
        public var submitterUID: UInt32?
        /// What daily limits count under instead of the local user (the web pages: "web:<login>").
        public var limitKey: String?
        public init(extensionName: String, numbers: [String], submitterUID: UInt32? = nil, limitKey: String? = nil) {
            self.extensionName = extensionName; self.numbers = numbers; self.submitterUID = submitterUID; self.limitKey = limitKey
        }
    }

    @discardableResult
    public func process(_ mail: IncomingMail, intake: IntakeRecord, local: LocalSubmission? = nil) async throws -> IntakeRecord {
        guard intake.state == .fetched, let intakeID = intake.id else { return intake }
        var record = intake
        let meta: Logger.Metadata = ["intake": "\(intakeID)", "source": "\(intake.source)"]

        if mail.isAutomatic || mail.fromAddress?.lowercased() == settings.from.address.lowercased() {
            record.state = .ignored
            record.detail = "automatic mail (bounce, auto-reply or list); not answered"
            try await storage.updateIntake(record)
            logger.notice("ignored automatic mail", metadata: meta)
            return record
        }

        let language = languageFor(mail)
        do {
            let jobs = try await plan(mail, intake: record, local: local)
            record.state = .accepted
            record.detail = "\(jobs.count) job(s)"
            let saved = try await storage.insertJobs(jobs, intake: record, event: "queued from mail \(mail.messageID ?? "-")")
            logger.info("mail accepted", metadata: meta.merging(["jobs": "\(saved.map { $0.id ?? 0 })", "pages": "\(jobs.first?.pages ?? 0)"]) { $1 })
            jobsAdded()
        } catch let refusal as Refusal {
            record = try await refuse(mail, intake: record, refusal, language: language)
        }
        return record
    }

    /// What a submitter who waits for the answer (the web pages) is told.
    public enum Answer: Sendable {
        case queued([FaxJob])
        case refused(Refusal)
    }

    /// A submission whose submitter waits on screen (the web pages): the same checks and rendering as `process`,
    /// jobs queued the same way; a refusal is recorded in the ledger (state rejected, the reason in `detail`) but
    /// answered by no mail and no digest, since the submitter reads the typed reason in their own language.
    /// nil when the record was decided already (a repeat after a crash).
    public func answer(_ mail: IncomingMail, intake: IntakeRecord, local: LocalSubmission) async throws -> Answer? {
        guard intake.state == .fetched, let intakeID = intake.id else { return nil }
        var record = intake
        let meta: Logger.Metadata = ["intake": "\(intakeID)", "source": "\(intake.source)"]
        do {
            let jobs = try await plan(mail, intake: record, local: local)
            record.state = .accepted
            record.detail = "\(jobs.count) job(s)"
            let saved = try await storage.insertJobs(jobs, intake: record, event: "queued from \(intake.source) submission")
            logger.info("submission accepted", metadata: meta.merging(["jobs": "\(saved.map { $0.id ?? 0 })", "pages": "\(jobs.first?.pages ?? 0)"]) { $1 })
            jobsAdded()
            GatewayMetrics.intakeDecided(.accepted, source: .web)
            return .queued(saved)
        } catch let refusal as Refusal {
            record.state = .rejected
            record.decidedAt = Date()
            record.detail = ([refusal.description] + refusal.detail).joined(separator: "; ")
            try await storage.updateIntake(record)
            logger.notice("submission refused: \(refusal.description)", metadata: meta)
            GatewayMetrics.intakeDecided(.rejected, source: .web)
            return .refused(refusal)
        }
    }

    /// Answers the sender with the reason — only when that address may be answered (backscatter) and has not
    /// reached its reply limit — keeps the raw mail under `rejected/`, and records the decision with what became of
    /// the reply. Refusals nobody was told about reach the admin in a digest.
    /// Also used by intakes for mail that cannot even be parsed (too large, too deeply nested).
    public func refuse(_ mail: IncomingMail, intake: IntakeRecord, _ refusal: Refusal, language: String? = nil) async throws -> IntakeRecord {
        guard intake.state == .fetched, let intakeID = intake.id else { return intake }
        var record = intake
        let meta: Logger.Metadata = ["intake": "\(intakeID)", "source": "\(intake.source)"]
        if mail.isAutomatic {
            record.state = .ignored
            record.detail = "automatic mail, not answered: " + refusal.description
            try await storage.updateIntake(record)
            return record
        }
        let now = Date()
        // With the secrets of the mail's addresses: a sender who gave the right secret met the requirement.
        let gate = senders.evaluate(mail, secrets: addressing.recipients(of: mail).secrets)
        // A local CLI submission (drop directory): the user on this machine named the address to notify.
        let local = intake.source == "drop"
        let to = mail.fromAddress.flatMap { MailboxSyntax.isAddress($0) ? $0 : nil }
        record.replyAddress = to?.lowercased()
        record.decidedAt = now
        if let problem = gate.boundaryProblem, !local {
            // Usually a trusted_mta that does not match the MTA's Received headers: every verdict is then ignored.
            logger.warning("no trusted verdict: \(problem)", metadata: meta)
        }
        if gate.alertAdmin {
            record.adminAlert = true
            logger.error("the MTA did not strip an Authentication-Results header with the trusted authserv-id (RFC 8601 §5): mail refused, check the MTA",
                         metadata: meta)
        }
        if let to, gate.mayReply || local {
            let limit = config.outgoing.replies.maxPerRecipientPerHour
            if try await storage.repliesSent(to: to, since: now.addingTimeInterval(-3600)) >= limit {
                record.reply = .rateLimited
                logger.warning("refusal not answered: reply limit per recipient reached", metadata: meta.merging(["limit": "\(limit)/h"]) { $1 })
            } else {
                let text = OutgoingMailText(language: language ?? self.language(for: gate.outcome))
                var headers: [(String, String)] = [("Auto-Submitted", "auto-replied")]
                // The sender's Message-ID is attacker-written: echoed only when it is a plain <id@host> of sane length.
                if let original = mail.messageID, Self.isPlainMessageID(original) {
                    headers += [("In-Reply-To", original), ("References", original)]
                }
                let reply = MailMessage(
                    from: settings.from, to: [MailAddress(to)], cc: [], subject: text.refusalSubject(mail.subject), date: now,
                    messageID: MailMessage.makeMessageID(domain: settings.hostname), extraHeaders: headers,
                    textBody: text.refusalBody(refusal, original: mail.subject),
                    attachments: [])
                // Empty envelope sender (RFC 3834): a reply to our reply must never come back as a mail to fax.
                _ = try await outbox.enqueue(message: reply.render(), envelopeFrom: "", recipients: [to], callID: nil,
                                             id: "refusal-\(intakeID)")
                record.reply = .sent
            }
        } else {
            // Not proven and not an authenticated allowed sender: the From address may be forged, and a reply
            // would make us a spam reflector. Journal, count, and tell the admin in the digest instead.
            record.reply = .suppressed
        }
        let rejectedPath = "\(settings.spoolDirectory)/rejected/\(intakeID).eml"
        var moveProblem: String?
        if FileManager.default.fileExists(atPath: record.rawPath) && record.rawPath != rejectedPath {
            do {
                try FileManager.default.moveItem(atPath: record.rawPath, toPath: rejectedPath)
                record.rawPath = rejectedPath
            } catch {
                // The record keeps the path where the mail really is, so retention and export still find it.
                moveProblem = "the raw mail could not be moved to rejected/: \(error)"
                logger.error("refused mail not moved to rejected/; it stays where it was", metadata: meta.merging(["error": "\(error)"]) { $1 })
            }
        }
        record.state = .rejected
        record.detail = ([refusal.description] + refusal.detail + (moveProblem.map { [$0] } ?? [])).joined(separator: "; ")
        try await storage.updateIntake(record)
        logger.notice("mail refused: \(refusal.description)", metadata: meta.merging(["reply": "\(record.reply?.rawValue ?? "-")"]) { $1 })
        if record.reply != .sent || record.adminAlert {
            do { try await sendAdminDigestIfDue(now: now) } catch {
                logger.error("admin digest not queued", metadata: ["error": "\(error)"])
            }
        }
        return record
    }

    /// At most one digest per period (`outgoing.replies.admin_digest_minutes`), to `mail.admin_address`, listing the
    /// refusals nobody was told about with redacted senders. Its outbox id is derived from the period, so a step
    /// repeated after a crash never mails twice; refusals after this period's digest wait for the next one.
    public func sendAdminDigestIfDue(now: Date = Date()) async throws {
        // Several nodes: only the leader mails it (the refusals are in the shared database; see `setDigestGate`).
        guard mailsDigest() else { return }
        let period = TimeInterval(max(1, config.outgoing.replies.adminDigestMinutes) * 60)
        let start = floor(now.timeIntervalSince1970 / period) * period
        let digestID = "admin-digest-\(Int64(start))"
        let pending = try await storage.undigestedRefusals()
        guard !pending.isEmpty else { return }
        if try await storage.digestSent(digestID) {
            scheduleDigest(at: Date(timeIntervalSince1970: start + period))
            return
        }
        guard let admin = config.mail.adminAddress, MailboxSyntax.isAddress(admin) else {
            logger.warning("refusals not answered and no mail.admin_address to tell", metadata: ["count": "\(pending.count)"])
            try await storage.markDigested(pending.compactMap(\.id), digestID: digestID)
            return
        }
        let language = config.extensions.first?.language ?? "de"
        let digest = AdminDigest(refusals: pending, language: language)
        let message = MailMessage(
            from: settings.from, to: [MailAddress(admin)], cc: [], subject: digest.subject, date: now,
            messageID: MailMessage.makeMessageID(domain: settings.hostname), extraHeaders: [("Auto-Submitted", "auto-generated")],
            textBody: digest.body, attachments: [])
        _ = try await outbox.enqueue(message: message.render(), envelopeFrom: "", recipients: [admin], callID: nil, id: digestID)
        try await storage.markDigested(pending.compactMap(\.id), digestID: digestID)
        logger.notice("admin digest queued", metadata: ["refusals": "\(pending.count)", "digest": "\(digestID)"])
    }

    private var digestScheduled = false
    private var mailsDigest: @Sendable () -> Bool = { true }

    /// Cluster seam: whether this node mails the admin digest now (the leader of the singleton `admin-digest`);
    /// the leader calls `sendAdminDigestIfDue` periodically, so refusals another node recorded are not forgotten.
    public func setDigestGate(_ gate: @escaping @Sendable () -> Bool) { mailsDigest = gate }

    /// Refusals after this period's digest go out at the start of the next period, even if no mail comes then.
    private func scheduleDigest(at date: Date) {
        guard !digestScheduled else { return }
        digestScheduled = true
        Task { [weak self] in
            try? await Task.sleep(for: .seconds(max(1, date.timeIntervalSinceNow + 1)))
            await self?.runScheduledDigest()
        }
    }

    private func runScheduledDigest() async {
        digestScheduled = false
        do { try await sendAdminDigestIfDue() } catch { logger.error("admin digest not queued", metadata: ["error": "\(error)"]) }
    }

    /// `<left@right>`, printable ASCII without spaces, at most 250 characters (RFC 5322 msg-id, conservatively).
    static func isPlainMessageID(_ id: String) -> Bool {
        let scalars = id.unicodeScalars
        guard scalars.count >= 5, scalars.count <= 250, id.hasPrefix("<"), id.hasSuffix(">"),
              scalars.filter({ $0 == "@" }).count == 1, scalars.filter({ $0 == "<" || $0 == ">" }).count == 2 else { return false }
        return scalars.allSatisfy { $0.value > 32 && $0.value < 127 }
    }

    private func languageFor(_ mail: IncomingMail) -> String {
        language(for: senders.check(mail, secrets: addressing.recipients(of: mail).secrets))
    }

    /// The language of the extension the sender was granted, else the first extension's.
    private func language(for outcome: Result<SenderPolicy.Grant, SenderPolicy.Refusal>) -> String {
        if case .success(let grant) = outcome,
           let ext = config.extensions.first(where: { $0.name == grant.extensionName }) {
            return ext.language
        }
        return config.extensions.first?.language ?? "de"
    }

    /// Every check, then rendering. Throws `Refusal` for anything the sender must hear about.
    func plan(_ mail: IncomingMail, intake: IntakeRecord, local: LocalSubmission? = nil) async throws -> [FaxJob] {
        var addressed = addressing.recipients(of: mail)
        let grant: SenderPolicy.Grant
        let check: Result<SenderPolicy.Grant, SenderPolicy.Refusal>
        if let local {
            guard let ext = config.extensions.first(where: { $0.name == local.extensionName }) else {
                throw Refusal(SubmissionReason.noSuchExtension(local.extensionName))
            }
            check = .success(SenderPolicy.Grant(extensionName: ext.name, senders: ext.senders))
            addressed = FaxAddressing.Result(subject: mail.subject)
            for written in local.numbers {
                do {
                    let e164 = try addressing.plan.e164(written)
                    addressed.recipients.append(.init(written: written, e164: e164, dialString: addressing.plan.dialString(e164)))
                } catch { addressed.invalid.append(.number(error)) }
            }
        } else {
            check = senders.check(mail, secrets: addressed.secrets)
        }
        switch check {
        case .success(let g): grant = g
        case .failure(.noSender):
            throw Refusal(de: "die Nachricht hat keine verwendbare Absenderadresse", en: "the message has no usable sender address")
        case .failure(.notAllowed(let who)):
            throw Refusal(de: "\(QuotedText.clean(who)) darf über dieses Gateway keine Faxe senden",
                          en: "\(QuotedText.clean(who)) is not allowed to send faxes through this gateway")
        case .failure(.authenticationMissing(let who, let required)):
            let method = required == "dkim_or_spf" ? "DKIM or SPF" : required.uppercased()
            throw Refusal(de: "der Absender \(QuotedText.clean(who)) konnte nicht bestätigt werden: der annehmende Mailserver hat \(required == "dkim_or_spf" ? "weder DKIM noch SPF" : required.uppercased() + " nicht") für diese Domain bestätigt",
                          en: "the sender \(QuotedText.clean(who)) could not be verified: the receiving mail server did not confirm \(method) for this domain")
        case .failure(.wrongSecret):
            throw Refusal(de: "das Fax-Kennwort fehlt oder ist falsch", en: "the fax secret is missing or wrong")
        case .failure(.authenticationFailed(let who)):
            throw Refusal(de: "der Absender \(QuotedText.clean(who)) konnte nicht bestätigt werden: der annehmende Mailserver meldet eine fehlgeschlagene Prüfung (DKIM, SPF oder DMARC) für diese Domain",
                          en: "the sender \(QuotedText.clean(who)) could not be verified: the receiving mail server reports a failed check (DKIM, SPF or DMARC) for this domain")
        case .failure(.unstrippedVerdict(let who)):
            throw Refusal(de: "der Absender \(QuotedText.clean(who)) konnte nicht bestätigt werden: die Nachricht enthält ein Prüfergebnis, das nicht vom annehmenden Mailserver stammt",
                          en: "the sender \(QuotedText.clean(who)) could not be verified: the message carries an authentication result the receiving mail server did not write",
                          adminNotes: ["an Authentication-Results header with the trusted authserv-id sits below the MTA's Received line (not stripped, RFC 8601 §5)"])
        }
        guard let ext = config.extensions.first(where: { $0.name == grant.extensionName }) else {
            throw Refusal(SubmissionReason.extensionNotConfigured(grant.extensionName))
        }
        if !addressed.invalid.isEmpty { throw Refusal(SubmissionReason.numberNotUnderstood, details: addressed.invalid) }
        guard !addressed.recipients.isEmpty else { throw Refusal(SubmissionReason.noNumber) }
        // The final E.164 and the dial string this line makes of it, both against the deny prefixes.
        var refusals: [DialPolicy.Refusal] = []
        for (n, r) in addressed.recipients.enumerated() {
            switch dialPolicy.checkDestination(e164: r.e164, allowInternational: grant.senders.allowInternational) {
            case .success(let dial): addressed.recipients[n].dialString = dial.digits
            case .failure(let refusal): refusals.append(refusal)
            }
        }
        if !refusals.isEmpty { throw Refusal(SubmissionReason.numberNotDiallable, details: refusals) }

        // A damaged message (broken boundaries, bad base64) would be faxed as a guess; the sender must know instead.
        if !mail.damage.isEmpty {
            throw Refusal(SubmissionReason.damaged, adminNotes: mail.damage)
        }
        let fine = (mail.header("X-Fax-Resolution").first?.lowercased()).map { $0 != "normal" && $0 != "standard" } ?? ext.fine
        var options = RenderOptions()
        options.resolution = fine ? .fine : .normal
        options.timeoutSeconds = config.outgoing.renderTimeoutSeconds
        options.memoryLimitMB = config.outgoing.renderMemoryMB
        options.sandbox = config.outgoing.renderSandbox
        options.maxPages = config.outgoing.maxPages
        let skipUnsupported = mail.header("X-Fax-Skip-Unsupported").first?.lowercased() == "yes"

        // Attachments first: whether the mail's text is faxed depends on whether there is a document.
        var documentPages: [FaxPage] = []
        var skipped: [String] = []
        for part in mail.attachments {
            // Signatures are not documents; faxing them would only print gibberish.
            if ["application/pkcs7-signature", "application/x-pkcs7-signature", "application/pgp-signature"].contains(part.contentType) {
                continue
            }
            guard let input = FaxRenderer.detect(mimeType: part.contentType, filename: part.filename, bytes: part.data) else {
                if skipUnsupported { skipped.append(part.label); continue }
                throw Refusal(SubmissionReason.unsupportedAttachment(.attachment(filename: part.filename, contentType: part.contentType)),
                              details: [SubmissionReason.skipUnsupportedHint])
            }
            documentPages += try await render(input, options, part: .attachment(filename: part.filename, contentType: part.contentType))
            if documentPages.count > config.outgoing.maxPages { break }
        }

        // The mail's own text (never quotes or the signature): with a cover page, a short text is its message;
        // otherwise a page of its own only when there is no document or the sender/extension asks for it.
        let subject = SenderPolicy.strippingSecret(addressed.subject, secret: grant.senders.secret)
        let wantsCover = mail.header("X-Fax-Cover").first.map { $0.lowercased() == "yes" } ?? grant.senders.coverPage
        let bodyMode: SenderConfig.FaxBody = switch mail.header("X-Fax-Body").first?.trimmingCharacters(in: .whitespaces).lowercased() {
        case "yes"?, "always"?: .always
        case "no"?, "never"?: .never
        default: grant.senders.faxBody
        }
        var comment: String?
        var textPages: [FaxPage] = []
        if bodyMode != .never, let body = mail.ownBodyText {
            if wantsCover && CoverPage.commentFits(body, paper: options.paper) {
                comment = body
            } else if bodyMode == .always || documentPages.isEmpty {
                textPages = try await render(.text(body), options, part: mail.meaningfulText != nil ? .text : .html)
            }
            // auto with a document and no room on a cover page: the text was for us ("please fax"), not a page.
        }
        var pages = textPages + documentPages
        guard !pages.isEmpty || comment != nil else {
            throw Refusal(bodyMode == .never && mail.ownBodyText != nil ? SubmissionReason.textNotFaxed : SubmissionReason.nothingToFax)
        }
        guard pages.count <= config.outgoing.maxPages else {
            throw Refusal(SubmissionReason.tooManyPages(limit: config.outgoing.maxPages))
        }
        // The send report's thumbnail shows the document, not the cover page or the text page.
        var documentPage = documentPages.isEmpty ? 0 : textPages.count
        if wantsCover {
            let cover = try await renderCover(mail: mail, ext: ext, subject: subject, recipients: addressed.recipients,
                                              pages: pages.count + 1, comment: comment, options: options)
            pages.insert(cover, at: 0)
            if pages.count > 1 { documentPage += 1 }
        }

        let sender = mail.fromAddress!.lowercased()
        let startOfDay = Calendar.current.startOfDay(for: Date())
        // Per address, per allow-list domain when a domain entry let the sender in, per local user for the CLI.
        let limitKey = local.map { $0.limitKey ?? DialRules.localLimitKey(uid: $0.submitterUID ?? getuid()) }
            ?? DialRules.limitKey(sender: sender, allowEntry: grant.allowEntry)
        let used = try await storage.usage(limitKey: limitKey, since: startOfDay)
        if let limit = dialPolicy.checkLimits(jobsToday: used.jobs, pagesToday: used.pages,
                                              newJobs: addressed.recipients.count, newPages: pages.count * addressed.recipients.count) {
            throw Refusal(limit)
        }

        var sendAt = Date()
        if let at = mail.header("X-Fax-Send-At").first {
            guard let date = ISO8601DateFormatter().date(from: at.trimmingCharacters(in: .whitespaces)) else {
                throw Refusal(SubmissionReason.badSendAt(at))
            }
            sendAt = max(date, sendAt)
        }

        let sffPath = "\(settings.spoolDirectory)/outgoing/intake-\(intake.id!).sff"
        try DurableFile.write(SFFWriter.write(pages), to: sffPath)
        if !skipped.isEmpty { logger.notice("skipped unsupported parts at the sender's request", metadata: ["parts": "\(skipped.count)"]) }
        return addressed.recipients.map { r in
            var job = FaxJob(sendAt: sendAt, intakeID: intake.id, sender: sender, senderName: mail.fromName, extensionName: ext.name,
                             language: ext.language, number: r.e164, dialString: r.dialString,
                             subject: subject, pages: pages.count, fine: fine, sffPath: sffPath,
                             requestMessageID: mail.messageID)
            job.limitKey = limitKey
            job.documentPage = documentPage
            return job
        }
    }

    private func render(_ input: RenderInput, _ options: RenderOptions, part: MailPart) async throws -> [FaxPage] {
        let start = ContinuousClock.now
        defer { GatewayMetrics.render(.mailToFax, seconds: GatewayMetrics.seconds(since: start)) }
        do {
            return try await FaxRenderer.render(input, options: options)
        } catch {
            throw Refusal(SubmissionReason.notConverted(part, error), adminNotes: [error.description])
        }
    }

    private func renderCover(mail: IncomingMail, ext: ExtensionConfig, subject: String, recipients: [FaxAddressing.Recipient],
                             pages: Int, comment: String?, options: RenderOptions) async throws -> FaxPage {
        do {
            return try await CoverPage.render(
                sender: mail.fromName ?? mail.fromAddress ?? "", recipient: recipients.map(\.written).joined(separator: ", "),
                recipientNumber: recipients.map(\.e164).joined(separator: ", "), subject: subject, pages: pages, date: Date(),
                comment: comment, language: ext.language, options: options)
        } catch {
            throw Refusal(SubmissionReason.coverFailed(error), adminNotes: [error.description])
        }
    }
}
