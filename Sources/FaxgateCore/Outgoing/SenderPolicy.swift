import Foundation

/// Decides whether the sender of a mail may fax, and through which extension. Default deny: a sender
/// no extension lists is refused — the number-one complaint about the gateways we replace.
public struct SenderPolicy: Sendable {
    public struct Grant: Sendable, Equatable {
        public var extensionName: String
        public var senders: SenderConfig
        /// The allow-list entry that matched, as written in the configuration ("@example.com" or an address);
        /// empty for local submissions. Per-sender limits count per domain when this is a domain.
        public var allowEntry: String
        public init(extensionName: String, senders: SenderConfig, allowEntry: String = "") {
            self.extensionName = extensionName; self.senders = senders; self.allowEntry = allowEntry
        }
    }

    public enum Refusal: Error, Sendable, Equatable {
        case noSender
        case notAllowed(String)
        /// No trusted verdict, or none that passes for the sender's domain.
        case authenticationMissing(sender: String, required: String)
        /// The trusted verdict says fail/softfail: that beats any pass.
        case authenticationFailed(sender: String)
        /// A header with the trusted authserv-id sits below the MTA's line: it did not strip it (RFC 8601 §5).
        case unstrippedVerdict(sender: String)
        case wrongSecret
    }

    /// The decision, and whether the From address may be answered at all (backscatter): only a proven address
    /// (the trusted verdict passes and aligns with it) or one on an allow list that met that extension's
    /// authentication requirement, whatever level the admin chose.
    public struct SenderCheck: Sendable, Equatable {
        public var outcome: Result<Grant, Refusal>
        public var mayReply: Bool
        /// The trusted verdict passes for the From domain (DKIM or SPF, aligned, no failure).
        public var proven: Bool
        /// The MTA failed to strip a header claiming to be its own: the admin must hear about it.
        public var alertAdmin: Bool
        /// Why no verdict could be read by position (for the admin's log): no Received header by an entry host,
        /// or a hop above it that `trusted_mta` does not name. nil when the line was found or no MTA is configured.
        public var boundaryProblem: String? = nil
    }

    public var extensions: [ExtensionConfig]
    public var trustedMTA: TrustedMTAConfig?
    public init(extensions: [ExtensionConfig], trustedMTA: TrustedMTAConfig? = nil) {
        self.extensions = extensions; self.trustedMTA = trustedMTA
    }

    /// The gateway-wide MTA, with the extension's own authserv-id when it names one.
    func mta(for senders: SenderConfig?) -> TrustedMTA? {
        guard let t = trustedMTA, !t.entryHosts.isEmpty,
              let id = senders?.trustedAuthservID ?? t.authservID ?? extensions.lazy.compactMap(\.senders.trustedAuthservID).first,
              !id.isEmpty else { return nil }
        return TrustedMTA(authservID: id, entryHosts: t.entryHosts, internalHosts: t.internalHosts)
    }

    /// Kept for callers that only need the decision.
    public func check(_ mail: IncomingMail, secrets: [String]) -> Result<Grant, Refusal> {
        evaluate(mail, secrets: secrets).outcome
    }

    public func evaluate(_ mail: IncomingMail, secrets: [String]) -> SenderCheck {
        guard let from = mail.fromAddress?.lowercased(), MailboxSyntax.isAddress(from) else {
            return SenderCheck(outcome: .failure(.noSender), mayReply: false, proven: false, alertAdmin: false)
        }
        let domain = String(from[from.index(after: from.lastIndex(of: "@")!)...])
        func matches(_ entry: String) -> Bool {
            let e = entry.lowercased()
            return e.hasPrefix("@") ? domain == e.dropFirst() : from == e
        }
        let ext = extensions.first(where: { $0.senders.allow.contains(where: matches) })
        // The verdict is read even for senders on no list: a proven address may be told why it was refused.
        let verdict = mta(for: ext?.senders).map { AuthenticationVerdict(headers: mail.headers, mta: $0) }
        let dkim = verdict?.passes("dkim", alignedWith: domain) ?? false
        let spf = verdict?.passes("spf", alignedWith: domain) ?? false
        let failed = verdict?.hasFailure ?? false
        let unstripped = verdict?.unstrippedBelowLine ?? false
        let proven = (dkim || spf) && !failed && !unstripped
        let boundaryProblem: String? = switch verdict?.boundary {
        case .missing?: "no Received header by an entry host (outgoing.trusted_mta.entry_hosts)"
        case .brokenChain(let host)?: "Received header by \(host) above the entry line is not in outgoing.trusted_mta (internal_hosts?)"
        default: nil
        }
        func result(_ outcome: Result<Grant, Refusal>, authenticated: Bool) -> SenderCheck {
            SenderCheck(outcome: outcome, mayReply: !unstripped && (proven || authenticated), proven: proven, alertAdmin: unstripped,
                        boundaryProblem: boundaryProblem)
        }
        if unstripped { return result(.failure(.unstrippedVerdict(sender: from)), authenticated: false) }
        guard let ext, let entry = ext.senders.allow.first(where: matches) else {
            return result(.failure(.notAllowed(from)), authenticated: false)
        }
        let s = ext.senders
        if s.requireAuthentication != "none" {
            if failed { return result(.failure(.authenticationFailed(sender: from)), authenticated: false) }
            let ok = switch s.requireAuthentication {
            case "dkim": dkim
            case "spf": spf
            default: dkim || spf
            }
            if !ok { return result(.failure(.authenticationMissing(sender: from, required: s.requireAuthentication)), authenticated: false) }
        }
        if let secret = s.secret {
            // Secrets compare in constant time; either in the address or as "#SECRET" in the subject.
            let inSubject = mail.subject.split(separator: " ").contains { $0.hasPrefix("#") && Self.equal(String($0.dropFirst()), secret) }
            // A secret is an authentication level of its own: a wrong one is failed authentication, answered
            // only when the address is proven by the trusted verdict (a forged From must not get the reply).
            if !(secrets.contains { Self.equal($0, secret) } || inSubject) { return result(.failure(.wrongSecret), authenticated: false) }
        }
        return result(.success(Grant(extensionName: ext.name, senders: s, allowEntry: entry.lowercased())), authenticated: true)
    }

    static func equal(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// Removes a "#SECRET" token from a subject so it never reaches a cover page or a report.
    public static func strippingSecret(_ subject: String, secret: String?) -> String {
        guard let secret else { return subject }
        return subject.split(separator: " ", omittingEmptySubsequences: false).filter { $0 != "#" + secret }.joined(separator: " ")
    }
}
