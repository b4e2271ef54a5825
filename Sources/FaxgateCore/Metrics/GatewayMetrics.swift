import Foundation
import Metrics

/// Every metric the gateway reports, in one place, through swift-metrics. Without a bootstrapped factory (the CLI,
/// unit tests) they go nowhere; `faxgate serve` bootstraps Prometheus once per process (FaxgateWeb.MetricsEndpoint).
///
/// Labels are small fixed enums only (direction, kind, outcome, state, decision, result, stage, source, category):
/// never a number, address, name, subject or id — they would leak personal data into the monitoring system and
/// grow its series without bound. Each metric keeps one fixed set of label names (the Prometheus registry refuses
/// a second set under the same name).
public enum GatewayMetrics {
    public enum Name {
        public static let calls = "faxgate_calls_total"
        public static let pages = "faxgate_pages_total"
        public static let bytes = "faxgate_bytes_total"
        public static let jobs = "faxgate_jobs_total"
        public static let queueJobs = "faxgate_queue_jobs"
        public static let intake = "faxgate_mail_intake_total"
        public static let intakeLatency = "faxgate_mail_intake_seconds"
        public static let outbox = "faxgate_outbox_total"
        public static let outboxBacklog = "faxgate_outbox_backlog"
        public static let outboxOldest = "faxgate_outbox_oldest_seconds"
        public static let outboxDelivery = "faxgate_outbox_delivery_seconds"
        public static let render = "faxgate_render_seconds"
        public static let capiRegistered = "faxgate_capi_registered"
        public static let channelsInUse = "faxgate_bchannels_in_use"
        public static let channelsTotal = "faxgate_bchannels_total"
        public static let mailboxes = "faxgate_intake_mailboxes"
        public static let mailboxesConnected = "faxgate_intake_mailboxes_connected"
        public static let retentionDeleted = "faxgate_retention_deleted_total"
        public static let spoolFree = "faxgate_spool_free_bytes"
    }

    // MARK: Calls (ReceptionPipeline, VoicemailPipeline, SendQueue)

    /// An incoming call is over (or was rejected when decided).
    public static func incomingCall(kind: CallRecord.Kind, outcome: CallRecord.Outcome, pages: Int, bytes: Int) {
        Counter(label: Name.calls, dimensions: [("direction", "incoming"), ("kind", kind.rawValue), ("outcome", outcome.rawValue)]).increment()
        if pages > 0 { Counter(label: Name.pages, dimensions: [("direction", "incoming")]).increment(by: pages) }
        if bytes > 0 { Counter(label: Name.bytes, dimensions: [("direction", "incoming")]).increment(by: bytes) }
    }

    /// One dial attempt of a job is over.
    public static func outgoingCall(cause: SendOutcome.Cause, pages: Int, bytes: Int) {
        Counter(label: Name.calls, dimensions: [("direction", "outgoing"), ("kind", "fax"), ("outcome", outcomeLabel(cause))]).increment()
        if pages > 0 { Counter(label: Name.pages, dimensions: [("direction", "outgoing")]).increment(by: pages) }
        if bytes > 0 { Counter(label: Name.bytes, dimensions: [("direction", "outgoing")]).increment(by: bytes) }
    }

    /// snake_case of the cause, so label values read like the others.
    public static func outcomeLabel(_ cause: SendOutcome.Cause) -> String {
        switch cause {
        case .success: "success"
        case .busy: "busy"
        case .noAnswer: "no_answer"
        case .faxProtocolError: "fax_protocol_error"
        case .networkFailure: "network_failure"
        case .invalidNumber: "invalid_number"
        case .rejected: "rejected"
        case .localError: "local_error"
        case .blockedByPolicy: "blocked_by_policy"
        }
    }

    /// A job reached a final state (done, failed, canceled).
    public static func jobFinished(_ state: FaxJob.State) {
        guard state.isFinal else { return }
        Counter(label: Name.jobs, dimensions: [("outcome", state.rawValue)]).increment()
    }

    /// Jobs per state now (set before each scrape from storage).
    public static func queueDepth(_ state: FaxJob.State, _ count: Int) {
        Gauge(label: Name.queueJobs, dimensions: [("state", state.rawValue)]).record(count)
    }

    // MARK: Mail intake (IMAPIntake, DropDirectory via SubmissionProcessor)

    /// imap = a watched mailbox, drop = the CLI's `faxgate send`, web = the send page.
    public enum IntakeSource: String, Sendable { case imap, drop, web }

    /// A mail was decided: `accepted` (jobs queued), `rejected` (refused, maybe answered), `ignored` (automatic, duplicate).
    public static func intakeDecided(_ state: IntakeRecord.State, source: IntakeSource) {
        guard state != .fetched else { return }
        Counter(label: Name.intake, dimensions: [("source", source.rawValue), ("decision", state.rawValue)]).increment()
    }

    /// From the moment the intake saw the message (IMAP search/EXISTS → fetch) to its decision (jobs queued).
    public static func intakeLatency(_ seconds: Double, source: IntakeSource) {
        Timer(label: Name.intakeLatency, dimensions: [("source", source.rawValue)]).recordNanoseconds(nanos(seconds))
    }

    // MARK: Outbox

    public enum OutboxResult: String, Sendable { case sent, failed, retried }

    public static func outbox(_ result: OutboxResult) {
        Counter(label: Name.outbox, dimensions: [("result", result.rawValue)]).increment()
    }

    /// Queued → accepted by the SMTP server.
    public static func outboxDelivered(after seconds: Double) {
        Timer(label: Name.outboxDelivery, dimensions: []).recordNanoseconds(nanos(seconds))
    }

    public static func outboxBacklog(count: Int, oldestAgeSeconds: Double) {
        Gauge(label: Name.outboxBacklog, dimensions: []).record(count)
        Gauge(label: Name.outboxOldest, dimensions: []).record(oldestAgeSeconds)
    }

    // MARK: Rendering

    public enum RenderStage: String, Sendable {
        /// A mail's documents and text → fax pages (SubmissionProcessor).
        case mailToFax = "mail_to_fax"
        /// A received fax → PDF/TIFF attachments (ReceptionPipeline).
        case faxToMail = "fax_to_mail"
        /// A recording → WAV/MP3 (VoicemailPipeline).
        case voiceToMail = "voice_to_mail"
    }

    public static func render(_ stage: RenderStage, seconds: Double) {
        Timer(label: Name.render, dimensions: [("stage", stage.rawValue)]).recordNanoseconds(nanos(seconds))
    }

    // MARK: Line, intake and disk state (set before each scrape)

    public static func transport(_ snapshot: TransportSnapshot) {
        Gauge(label: Name.capiRegistered, dimensions: []).record(snapshot.registered ? 1 : 0)
        Gauge(label: Name.channelsInUse, dimensions: []).record(snapshot.channelsInUse)
        Gauge(label: Name.channelsTotal, dimensions: []).record(snapshot.channelsTotal)
    }

    public static func mailboxes(_ snapshots: [MailboxSnapshot]) {
        Gauge(label: Name.mailboxes, dimensions: []).record(snapshots.count)
        Gauge(label: Name.mailboxesConnected, dimensions: []).record(snapshots.filter(\.connected).count)
    }

    public static func spoolFree(bytes: Int64) {
        Gauge(label: Name.spoolFree, dimensions: []).record(bytes)
    }

    // MARK: Retention

    /// Items deleted by retention; `category` is a retention category's fixed key (received_faxes, journal, …).
    public static func retentionDeleted(category: String, count: Int) {
        guard count > 0 else { return }
        // Category names are fixed keys; anything else (a future plugin's odd name) is not let into a label.
        let safe = !category.isEmpty && category.utf8.allSatisfy { (0x61...0x7A).contains($0) || $0 == 0x5F } ? category : "other"
        Counter(label: Name.retentionDeleted, dimensions: [("category", safe)]).increment(by: count)
    }

    // MARK: Helpers

    public static func seconds(since start: ContinuousClock.Instant) -> Double {
        let d = ContinuousClock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }

    static func nanos(_ seconds: Double) -> Int64 { Int64(max(0, seconds) * 1e9) }
}
