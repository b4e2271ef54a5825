import BasicRedaction
import FaxgateCore
import FaxgateWeb
import Foundation

/// The admin pages' actions on the running gateway: the same pipeline, queue and outbox `serve` runs, so a mail
/// sent again or a job moved follows exactly the path of the first one.
struct WebAdminOperations: AdminOperations {
    /// nil when the web runs without the gateway's parts (then those actions answer "not running").
    let pipeline: ReceptionPipeline?
    let queue: SendQueue?
    let storage: any Storage
    /// The effective configuration now (extensions edited on the web take effect without a restart).
    let configuration: @Sendable () -> Configuration

    func resendMail(callID: Int64, by actor: WebActor) async throws -> MailResendResult {
        // The extension as configured now: its current addresses and formats, not those at start.
        let config = configuration()
        let call = try await storage.call(id: callID)
        let current = call?.extensionName.flatMap { name in config.extensions.first { $0.name == name } }.map(Extension.init)
        if let call, call.extensionName != nil, current == nil { return .extensionGone(call.extensionName ?? "-") }
        guard let pipeline else { throw UnavailableAdminOperations.NotRunning() }
        return try await pipeline.resendMail(callID: callID, extension: current, requestedBy: "web:\(actor.user.name)")
    }

    func retryNow(jobID: Int64, by actor: WebActor) async throws -> SendQueue.RetryNowResult {
        guard let queue else { throw UnavailableAdminOperations.NotRunning() }
        return try await queue.retryNow(jobID: jobID, by: "web:\(actor.user.name)")
    }

    func logDays() async -> [String] { LogSearch.days(in: configuration().logDirectory) }

    func logLines(day: String, search: String, limit: Int) async throws -> LogExcerpt {
        let config = configuration()
        // Every rule, as for a support snapshot: the page never shows more than a snapshot would.
        let pseudonyms = try PrivacyAssembly.pseudonymizer(config, createKey: false)
        let redactor = try BasicRedaction.snapshotRedactor(pseudonyms: pseudonyms, privacy: config.privacy)
        let found = try await Task.detached {
            try LogSearch.search(directory: config.logDirectory, day: day, query: search, limit: limit, redactor: redactor)
        }.value
        return LogExcerpt(day: day, lines: found.lines, omitted: found.omitted, scanned: found.scanned)
    }
}
