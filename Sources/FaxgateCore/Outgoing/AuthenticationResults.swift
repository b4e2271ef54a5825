import Foundation

/// One Authentication-Results header field (RFC 8601 §2.2), parsed strictly: CFWS comments (nested, with
/// backslash escapes), quoted-strings with escapes, authserv-id with optional version, `none`,
/// method[/version]=result, reason=, ptype.property=value. A `;` inside a quoted value or a comment is text,
/// never a new result. A header that does not follow the grammar yields no results at all: a verdict we
/// cannot read is no verdict.
public struct AuthenticationResultsHeader: Sendable, Equatable {
    public struct Property: Sendable, Equatable {
        public var ptype: String      // lowercased: smtp, header, body, policy
        public var property: String   // lowercased: mailfrom, d, i, from, ...
        public var value: String      // unquoted, unescaped
    }

    public struct Result: Sendable, Equatable {
        public var method: String     // lowercased
        public var methodVersion: String?
        public var result: String     // lowercased
        public var reason: String?
        public var properties: [Property]

        public func value(_ ptype: String, _ property: String) -> String? {
            properties.first { $0.ptype == ptype && $0.property == property }?.value
        }
    }

    /// Lowercased. Known even when the rest of the header is malformed (so a failed strip can be recognised).
    public var authservID: String
    public var version: String?
    public var results: [Result]
    /// The header did not follow the grammar after the authserv-id; `results` is empty then.
    public var malformed: Bool

    /// nil when not even an authserv-id can be read.
    public static func parse(_ value: String) -> AuthenticationResultsHeader? {
        var s = Scanner(value)
        guard (try? s.skipCFWS()) != nil, let id = try? s.value(), !id.isEmpty else { return nil }
        var header = AuthenticationResultsHeader(authservID: id.lowercased(), version: nil, results: [], malformed: false)
        do {
            try s.skipCFWS()
            if let v = s.digits() {
                header.version = v
                try s.skipCFWS()
            }
            header.results = try s.resinfos()
        } catch {
            header.results = []
            header.malformed = true
        }
        return header
    }

    struct SyntaxError: Error {}

    /// A hand-written scanner over Unicode scalars; every loop consumes input or stops, so it always ends.
    struct Scanner {
        let chars: [Unicode.Scalar]
        var i = 0
        init(_ text: String) { chars = Array(text.unicodeScalars) }

        var atEnd: Bool { i >= chars.count }
        var peek: Unicode.Scalar? { atEnd ? nil : chars[i] }

        static func isWSP(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\r" || c == "\n" }
        /// RFC 2045 token characters: any visible ASCII except tspecials.
        static func isTokenChar(_ c: Unicode.Scalar) -> Bool {
            guard c.value > 32 && c.value < 127 else { return c.value >= 128 }  // UTF-8 (RFC 6532) counts as text
            return !"()<>@,;:\\\"/[]?=".unicodeScalars.contains(c)
        }
        static func isKeywordChar(_ c: Unicode.Scalar) -> Bool {
            (c.value < 128) && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == "_")
        }

        /// Skips whitespace and (possibly nested) comments; an unterminated comment is a syntax error.
        mutating func skipCFWS() throws {
            while let c = peek {
                if Self.isWSP(c) { i += 1; continue }
                if c == "(" { try comment(); continue }
                break
            }
        }

        mutating func comment() throws {
            var depth = 0
            while let c = peek {
                i += 1
                switch c {
                case "\\":
                    guard !atEnd else { throw SyntaxError() }
                    i += 1
                case "(": depth += 1
                case ")":
                    depth -= 1
                    if depth == 0 { return }
                default: break
                }
            }
            throw SyntaxError()
        }

        mutating func quoted() throws -> String {
            guard peek == "\"" else { throw SyntaxError() }
            i += 1
            var out = String.UnicodeScalarView()
            while let c = peek {
                i += 1
                switch c {
                case "\\":
                    guard let next = peek else { throw SyntaxError() }
                    out.append(next); i += 1
                case "\"": return String(out)
                default: out.append(c)
                }
            }
            throw SyntaxError()
        }

        mutating func run(_ allowed: (Unicode.Scalar) -> Bool) -> String {
            var out = String.UnicodeScalarView()
            while let c = peek, allowed(c) { out.append(c); i += 1 }
            return String(out)
        }

        mutating func digits() -> String? {
            let d = run { ("0"..."9").contains($0) }
            return d.isEmpty ? nil : d
        }

        /// value = token / quoted-string (RFC 2045).
        mutating func value() throws -> String {
            if peek == "\"" { return try quoted() }
            let t = run(Self.isTokenChar)
            if t.isEmpty { throw SyntaxError() }
            return t
        }

        mutating func keyword() throws -> String {
            let k = run(Self.isKeywordChar)
            if k.isEmpty { throw SyntaxError() }
            return k.lowercased()
        }

        mutating func expect(_ c: Unicode.Scalar) throws {
            guard peek == c else { throw SyntaxError() }
            i += 1
        }

        /// pvalue = value / [ [ local-part ] "@" ] domain-name. Read as adjacent quoted-strings and runs of
        /// characters that are neither space, ';', '(' nor '"' (DKIM's header.b carries '/', '+' and '=').
        mutating func pvalue() throws -> String {
            var out = ""
            while let c = peek {
                if c == "\"" { out += try quoted(); continue }
                if Self.isWSP(c) || c == ";" || c == "(" || c == ")" { break }
                guard c.value > 32 && c.value != 127 else { throw SyntaxError() }
                out.unicodeScalars.append(c); i += 1
            }
            return out
        }

        /// ( no-result / 1*resinfo ) up to the end.
        mutating func resinfos() throws -> [Result] {
            var results: [Result] = []
            var sawNone = false
            while true {
                try skipCFWS()
                if atEnd { break }
                try expect(";")
                try skipCFWS()
                if atEnd { break }  // a trailing ';' is common and harmless
                let method = try keyword()
                try skipCFWS()
                if method == "none" && (atEnd || peek == ";") {
                    guard results.isEmpty else { throw SyntaxError() }
                    sawNone = true
                    continue
                }
                guard !sawNone else { throw SyntaxError() }
                var methodVersion: String?
                if peek == "/" {
                    i += 1
                    try skipCFWS()
                    guard let v = digits() else { throw SyntaxError() }
                    methodVersion = v
                    try skipCFWS()
                }
                try expect("=")
                try skipCFWS()
                let result = try keyword()
                var r = Result(method: method, methodVersion: methodVersion, result: result, reason: nil, properties: [])
                try skipCFWS()
                // reasonspec and propspecs until the next ';'.
                while !atEnd && peek != ";" {
                    let ptype = try keyword()
                    try skipCFWS()
                    if ptype == "reason" && peek == "=" {
                        guard r.reason == nil, r.properties.isEmpty else { throw SyntaxError() }
                        i += 1
                        try skipCFWS()
                        r.reason = try value()
                        try skipCFWS()
                        continue
                    }
                    try expect(".")
                    try skipCFWS()
                    let property = try keyword()
                    try skipCFWS()
                    try expect("=")
                    try skipCFWS()
                    let v = try pvalue()
                    r.properties.append(Property(ptype: ptype, property: property, value: v))
                    try skipCFWS()
                }
                results.append(r)
            }
            return results
        }
    }
}

/// The trusted MTA as the configuration describes it: which Authentication-Results are its own, and where it
/// took the mail from outside.
public struct TrustedMTA: Sendable, Equatable {
    public var authservID: String
    /// Names after "by" in the Received header our MTA writes when it accepts mail from outside.
    public var entryHosts: [String]
    /// Names after "by" in the Received headers of our own later hops (e.g. the mail store's LMTP delivery).
    public var internalHosts: [String]
    public init(authservID: String, entryHosts: [String], internalHosts: [String] = []) {
        self.authservID = authservID.lowercased(); self.entryHosts = entryHosts.map { $0.lowercased() }
        self.internalHosts = internalHosts.map { $0.lowercased() }
    }
}

/// What the trusted MTA said about a mail, read by position (RFC 8601 §5): only Authentication-Results headers
/// with the trusted authserv-id that sit ABOVE the Received header with which the MTA took the mail from outside
/// count. Everything below that line was in the mail before our MTA saw it, i.e. written by the sender.
public struct AuthenticationVerdict: Sendable, Equatable {
    public enum Boundary: Sendable, Equatable {
        /// The entry Received header was found at this header index, and every Received above it is ours.
        case found(Int)
        /// No Received header by the entry host: the mail did not come in through our MTA (or the config is wrong).
        case missing
        /// A Received header above the entry line is by a host we do not know: the chain is not ours.
        case brokenChain(String)
    }

    public var boundary: Boundary
    /// Results from trusted headers above the line.
    public var results: [AuthenticationResultsHeader.Result]
    /// A header with the trusted authserv-id below the line: the MTA did not strip it. Refuse and tell the admin.
    public var unstrippedBelowLine: Bool
    /// A trusted header above the line could not be parsed (its results do not count).
    public var malformedTrusted: Bool

    public var hasTrustedVerdict: Bool {
        if case .found = boundary { return !results.isEmpty && !unstrippedBelowLine }
        return false
    }

    public init(headers: [(name: String, value: String)], mta: TrustedMTA) {
        results = []
        unstrippedBelowLine = false
        malformedTrusted = false
        var boundary = Boundary.missing
        for (index, header) in headers.enumerated() where header.name.lowercased() == "received" {
            let by = Self.receivedBy(header.value)
            if let by, mta.entryHosts.contains(by) { boundary = .found(index); break }
            if let by, mta.internalHosts.contains(by) { continue }
            boundary = .brokenChain(by ?? "?")
            break
        }
        self.boundary = boundary
        let line: Int
        switch boundary {
        case .found(let i): line = i
        case .missing, .brokenChain: line = -1  // nothing is above a line we cannot find
        }
        for (index, header) in headers.enumerated() where header.name.lowercased() == "authentication-results" {
            guard let parsed = AuthenticationResultsHeader.parse(header.value), parsed.authservID == mta.authservID else { continue }
            if index < line {
                if parsed.malformed { malformedTrusted = true }
                results += parsed.results
            } else if line >= 0 {
                unstrippedBelowLine = true
            }
        }
        if unstrippedBelowLine { results = [] }
    }

    /// The host after "by" in a Received header (RFC 5321 §4.4 Stamp), read pair by pair after removing
    /// comments, so a HELO name "by" in the from-clause is not mistaken for the by-clause.
    static func receivedBy(_ value: String) -> String? {
        var s = AuthenticationResultsHeader.Scanner(value)
        var tokens: [String] = []
        while true {
            guard (try? s.skipCFWS()) != nil else { return nil }
            if s.atEnd { break }
            let t = s.run { !AuthenticationResultsHeader.Scanner.isWSP($0) && $0 != "(" }
            if t.isEmpty { return nil }
            tokens.append(t)
        }
        var i = 0
        while i + 1 < tokens.count {
            let key = tokens[i].lowercased()
            if key == "by" { return tokens[i + 1].lowercased() }
            i += ["from", "via", "with", "id", "for"].contains(key) ? 2 : 1
        }
        return nil
    }

    /// Results for one method that are a pass for an identity aligned with `domain`.
    public func passes(_ method: String, alignedWith domain: String) -> Bool {
        guard hasTrustedVerdict else { return false }
        return results.contains { $0.method == method && $0.result == "pass" && Self.aligned(Self.identity(of: $0), with: domain) }
    }

    /// A fail in the trusted verdict beats any pass: fail, softfail (and SPF's old hardfail) of DKIM, SPF or DMARC.
    public var hasFailure: Bool {
        results.contains { ["dkim", "spf", "dmarc"].contains($0.method) && ["fail", "softfail", "hardfail"].contains($0.result) }
    }

    /// The domain a result vouches for: DKIM's signing domain, SPF's MAIL FROM domain, DMARC's From domain.
    static func identity(of r: AuthenticationResultsHeader.Result) -> String? {
        let raw: String? = switch r.method {
        case "dkim": r.value("header", "d") ?? r.value("header", "i")
        case "spf": r.value("smtp", "mailfrom")
        case "dmarc": r.value("header", "from")
        default: nil
        }
        guard let raw else { return nil }
        return raw.split(separator: "@").last.map { String($0).lowercased() }
    }

    /// The authenticated domain is the From domain, or a parent of it with at least two labels (DMARC-style
    /// relaxed alignment). Never the other way round: a pass for evil.example.com says nothing about example.com.
    public static func aligned(_ authenticated: String?, with domain: String) -> Bool {
        guard let a = authenticated?.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: ".")), !a.isEmpty else { return false }
        let d = domain.lowercased()
        if d == a { return true }
        return a.contains(".") && d.hasSuffix("." + a)
    }
}
