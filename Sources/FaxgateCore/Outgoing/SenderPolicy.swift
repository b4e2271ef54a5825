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
        case authenticationMissing(sender: String, required: String)
        case wrongSecret
    }

    public var extensions: [ExtensionConfig]
    public init(extensions: [ExtensionConfig]) { self.extensions = extensions }

    public func check(_ mail: IncomingMail, secrets: [String]) -> Result<Grant, Refusal> {
        guard let from = mail.fromAddress?.lowercased(), MailboxSyntax.isAddress(from) else { return .failure(.noSender) }
        let domain = String(from[from.index(after: from.lastIndex(of: "@")!)...])
        func matches(_ entry: String) -> Bool {
            let e = entry.lowercased()
            return e.hasPrefix("@") ? domain == e.dropFirst() : from == e
        }
        guard let ext = extensions.first(where: { $0.senders.allow.contains(where: matches) }),
              let entry = ext.senders.allow.first(where: matches) else { return .failure(.notAllowed(from)) }
        let s = ext.senders
        if s.requireAuthentication != "none" {
            let results = AuthenticationResults.parse(mail.header("Authentication-Results"), trustedAuthservID: s.trustedAuthservID ?? "")
            let dkim = results.contains { $0.method == "dkim" && $0.result == "pass" && Self.aligned($0.domain, with: domain) }
            let spf = results.contains { $0.method == "spf" && $0.result == "pass" && Self.aligned($0.domain, with: domain) }
            let ok = switch s.requireAuthentication {
            case "dkim": dkim
            case "spf": spf
            default: dkim || spf
            }
            if !ok { return .failure(.authenticationMissing(sender: from, required: s.requireAuthentication)) }
        }
        if let secret = s.secret {
            // Secrets compare in constant time; either in the address or as "#SECRET" in the subject.
            let inSubject = mail.subject.split(separator: " ").contains { $0.hasPrefix("#") && Self.equal(String($0.dropFirst()), secret) }
            if !(secrets.contains { Self.equal($0, secret) } || inSubject) { return .failure(.wrongSecret) }
        }
        return .success(Grant(extensionName: ext.name, senders: s, allowEntry: entry.lowercased()))
    }

    /// Relaxed alignment (DMARC-style): the authenticated domain is the sender's domain or a parent of it.
    static func aligned(_ authenticated: String?, with domain: String) -> Bool {
        guard let a = authenticated?.lowercased(), !a.isEmpty else { return false }
        return domain == a || domain.hasSuffix("." + a) || a.hasSuffix("." + domain)
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

/// RFC 8601 Authentication-Results, just the parts we need: method, result and the domain it vouches for.
public enum AuthenticationResults {
    public struct Entry: Sendable, Equatable {
        public var method: String
        public var result: String
        public var domain: String?
    }

    /// Only headers whose authserv-id is the trusted MTA's count: anyone can put such a header into a mail.
    public static func parse(_ headers: [String], trustedAuthservID: String) -> [Entry] {
        var entries: [Entry] = []
        for header in headers {
            let unfolded = header.replacingOccurrences(of: "\r\n", with: " ").replacingOccurrences(of: "\n", with: " ")
            let parts = stripComments(unfolded).split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let first = parts.first else { continue }
            let authserv = first.split(separator: " ").first.map(String.init)?.lowercased() ?? ""
            guard !trustedAuthservID.isEmpty, authserv == trustedAuthservID.lowercased() else { continue }
            for resinfo in parts.dropFirst() {
                let tokens = resinfo.split(separator: " ").map(String.init)
                guard let head = tokens.first, let eq = head.firstIndex(of: "=") else { continue }
                let method = head[..<eq].lowercased()
                let result = head[head.index(after: eq)...].lowercased()
                var domain: String?
                for token in tokens.dropFirst() {
                    let kv = token.split(separator: "=", maxSplits: 1).map(String.init)
                    guard kv.count == 2 else { continue }
                    let key = kv[0].lowercased(), value = kv[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                    if method == "dkim" && (key == "header.d" || key == "header.i") {
                        domain = value.split(separator: "@").last.map(String.init)
                    } else if method == "spf" && (key == "smtp.mailfrom" || key == "smtp.helo") && domain == nil {
                        domain = value.split(separator: "@").last.map(String.init)
                    }
                }
                entries.append(Entry(method: method, result: result, domain: domain))
            }
        }
        return entries
    }

    static func stripComments(_ s: String) -> String {
        var out = "", depth = 0
        for ch in s {
            if ch == "(" { depth += 1 } else if ch == ")" { depth = max(0, depth - 1) } else if depth == 0 { out.append(ch) }
        }
        return out
    }
}
