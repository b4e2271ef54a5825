extension ConfigValidator {
    static func validateOutgoing(_ c: Configuration) -> [Problem] {
        var problems: [Problem] = []
        func problem(_ path: [ConfigLoader.PathElement], _ message: String) { problems.append(Problem(path: path, message: message)) }
        let o = c.outgoing
        let base: [ConfigLoader.PathElement] = [.key("outgoing")]
        if !o.mailboxes.isEmpty && o.faxDomains.isEmpty && o.subjectAddresses.isEmpty {
            problem(base, "mailboxes are watched but neither fax_domains nor subject_addresses say how a fax is addressed")
        }
        for (i, d) in o.faxDomains.enumerated() where d.isEmpty || d.contains("@") || d.contains(" ") {
            problem(base + [.key("fax_domains"), .index(i)], "a domain like fax.example.com, without @")
        }
        for (i, a) in o.subjectAddresses.enumerated() where !MailboxSyntax.isAddress(a) {
            problem(base + [.key("subject_addresses"), .index(i)], "not an e-mail address: \(a)")
        }
        var names: Set<String> = []
        for (i, m) in o.mailboxes.enumerated() {
            let p = base + [.key("mailboxes"), .index(i)]
            if !names.insert(m.name).inserted { problem(p + [.key("name")], "mailbox name '\(m.name)' is used twice") }
            if !["starttls", "tls"].contains(m.security) {
                problem(p + [.key("security")], "must be starttls or tls: the gateway never reads mail in clear text")
            }
            if !(1...65535).contains(m.port) { problem(p + [.key("port")], "must be between 1 and 65535") }
            if m.password == nil && m.passwordFile == nil { problem(p, "needs password or password_file") }
            if m.password != nil && m.passwordFile != nil { problem(p + [.key("password_file")], "set either password or password_file, not both") }
            if m.processedFolder == m.folder || m.rejectedFolder == m.folder {
                problem(p + [.key("processed_folder")], "processed and rejected folders must differ from the watched folder")
            }
            if !(5...3600).contains(m.pollSeconds) { problem(p + [.key("poll_seconds")], "between 5 and 3600") }
        }
        let digits: (String) -> Bool = { $0.allSatisfy(\.isASCIIDigit) }
        if o.line.countryCode.isEmpty || !digits(o.line.countryCode) { problem(base + [.key("line"), .key("country_code")], "digits, e.g. 49") }
        for (key, value) in [("area_code", o.line.areaCode), ("international_prefix", o.line.internationalPrefix),
                             ("national_prefix", o.line.nationalPrefix), ("outside_line_prefix", o.line.outsideLinePrefix)]
            where !digits(value) {
            problem(base + [.key("line"), .key(key)], "digits only")
        }
        for (i, prefix) in o.policy.denyPrefixes.enumerated() where !(prefix.hasPrefix("+") && digits(String(prefix.dropFirst())) && prefix.count > 1) {
            problem(base + [.key("policy"), .key("deny_prefixes"), .index(i)], "an E.164 prefix like +49900")
        }
        if o.retry.maxTries < 1 { problem(base + [.key("retry"), .key("max_tries")], "at least 1") }
        if o.maxPages < 1 { problem(base + [.key("max_pages")], "at least 1") }

        for (i, ext) in c.extensions.enumerated() {
            let p: [ConfigLoader.PathElement] = [.key("extensions"), .index(i), .key("senders")]
            let s = ext.senders
            for (j, entry) in s.allow.enumerated() {
                let ok = entry.hasPrefix("@") ? (entry.count > 2 && !entry.dropFirst().contains("@")) : MailboxSyntax.isAddress(entry)
                if !ok { problem(p + [.key("allow"), .index(j)], "an address (alice@example.com) or a domain (@example.com)") }
            }
            if !["none", "dkim", "spf", "dkim_or_spf"].contains(s.requireAuthentication) {
                problem(p + [.key("require_authentication")], "one of none, dkim, spf, dkim_or_spf")
            } else if s.requireAuthentication != "none" && (s.trustedAuthservID ?? "").isEmpty {
                // Without it we would have to believe any Authentication-Results header, which a sender can forge.
                problem(p + [.key("trusted_authserv_id")], "needed with require_authentication: the authserv-id your MTA writes")
            }
            if let secret = s.secret, secret.count < 8 || secret.contains(where: { $0.isWhitespace || $0 == "@" }) {
                problem(p + [.key("secret")], "at least 8 characters, no spaces or @")
            }
            if let n = s.callingNumber, n.isEmpty || !digits(n) { problem(p + [.key("calling_number")], "digits only") }
        }
        return problems
    }
}
