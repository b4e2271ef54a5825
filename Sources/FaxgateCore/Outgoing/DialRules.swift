import Foundation

/// The checks a queued fax passes again after it was accepted: right before it is dialled, and when it is
/// sent again (`resend`). The configuration may have changed since the fax was accepted (a prefix blocked,
/// a sender taken off the list, an outside-line prefix added); what counts is the configuration now.
public struct DialRules: Sendable {
    public var policy: DialPolicy
    public var extensions: [ExtensionConfig]

    public init(policy: DialPolicy, extensions: [ExtensionConfig]) { self.policy = policy; self.extensions = extensions }

    public init(_ config: Configuration) {
        self.init(policy: DialPolicy(config: config.outgoing.policy, plan: NumberPlan(config.outgoing.line)), extensions: config.extensions)
    }

    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible, LocalizedReason {
        case dial(DialPolicy.Refusal)
        case noExtension(String)
        case senderNotAllowed(sender: String, extensionName: String)
        case limit(DialPolicy.Refusal)

        public var description: String { text("en") }
        public func text(_ language: String) -> String {
            let de = Self.german(language)
            switch self {
            case .dial(let r), .limit(let r): return r.text(language)
            case .noExtension(let name):
                return de ? "die Nebenstelle „\(name)“ ist nicht mehr eingerichtet" : "the extension \(name) is no longer configured"
            case .senderNotAllowed(let sender, let name):
                return de ? "\(sender) steht nicht mehr auf der Absenderliste der Nebenstelle „\(name)“"
                          : "\(sender) is no longer on the sender list of the extension \(name)"
            }
        }
    }

    /// The dial string to hand to the transport for this job, after checking its number and the dial string
    /// this line makes of it now (deny prefixes in both forms, international permission of the extension).
    public func destination(for job: FaxJob) -> Result<DialString, Refusal> {
        let international = extensions.first { $0.name == job.extensionName }?.senders.allowInternational
        return policy.checkDestination(e164: job.number, allowInternational: international).mapError { .dial($0) }
    }

    /// May this job be sent again by its sender, under today's configuration? A job that came in by mail
    /// needs its sender (or its domain) still on the extension's allow list; a CLI job (`local`) needs the
    /// extension only: the CLI's user is trusted by the drop directory's permissions.
    public func mayResend(_ job: FaxJob, local: Bool) -> Refusal? {
        guard let ext = extensions.first(where: { $0.name == job.extensionName }) else { return .noExtension(job.extensionName) }
        if local { return nil }
        if Self.allowEntry(for: job.sender, in: ext.senders) == nil {
            return .senderNotAllowed(sender: job.sender, extensionName: ext.name)
        }
        return nil
    }

    /// The allow-list entry that lets `sender` use these settings, as `SenderPolicy` matches it.
    public static func allowEntry(for sender: String, in senders: SenderConfig) -> String? {
        let from = sender.lowercased()
        guard let at = from.lastIndex(of: "@") else { return nil }
        let domain = from[from.index(after: at)...]
        return senders.allow.first { entry in
            let e = entry.lowercased()
            return e.hasPrefix("@") ? domain == e.dropFirst() : from == e
        }
    }

    /// What a daily limit counts under. A domain entry ("@example.com") makes every sender of that domain share
    /// one limit ("@example.com"); an address entry counts per address; a CLI submission per local user
    /// ("local:<uid>"). Addresses always contain "@" after their first character, so the forms never collide.
    public static func limitKey(sender: String, allowEntry: String) -> String {
        let entry = allowEntry.lowercased()
        if entry.hasPrefix("@") && entry.count > 1 { return entry }
        return sender.lowercased()
    }

    public static func localLimitKey(uid: UInt32) -> String { "local:\(uid)" }

    /// A job the CLI submitted: its key is a local user's, or (rows from before keys) it has no mail sender.
    public static func isLocal(limitKey: String, sender: String) -> Bool {
        limitKey.hasPrefix("local:") || !MailboxSyntax.isAddress(sender)
    }

    /// Today's usage under the job's key (older rows without one count by their sender address).
    public func checkLimits(storage: any Storage, limitKey: String, newJobs: Int, newPages: Int, now: Date = Date()) async throws -> Refusal? {
        let used = try await storage.usage(limitKey: limitKey, since: Calendar.current.startOfDay(for: now))
        return policy.checkLimits(jobsToday: used.jobs, pagesToday: used.pages, newJobs: newJobs, newPages: newPages).map { .limit($0) }
    }
}
