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
            // "drop" marks the CLI's local submissions in the intake ledger, whose notify address is trusted.
            if m.name == "drop" { problem(p + [.key("name")], "the name drop is reserved for the CLI's drop directory") }
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
            } else if s.requireAuthentication != "none" && !s.allow.isEmpty {
                // Without them we would have to believe any Authentication-Results header, which a sender can forge.
                if (s.trustedAuthservID ?? o.trustedMTA?.authservID ?? "").isEmpty {
                    problem(p + [.key("require_authentication")],
                            "needs the authserv-id your MTA writes: outgoing.trusted_mta.authserv_id (or senders.trusted_authserv_id), or require_authentication: none")
                }
                if o.trustedMTA?.entryHosts.isEmpty ?? true {
                    problem(p + [.key("require_authentication")],
                            "needs outgoing.trusted_mta.entry_hosts: the host name your MTA writes after \"by\" in its Received header, so a verdict the sender wrote is not believed")
                }
            }
            if s.requireAuthentication == "none" && s.secret == nil {
                // Anyone can write any From address: these senders are only as safe as their domain is closed.
                for (j, entry) in s.allow.enumerated() {
                    let domain = entry.split(separator: "@").last.map { String($0).lowercased() } ?? ""
                    if publicMailDomains.contains(domain) {
                        problem(p + [.key("allow"), .index(j)],
                                "\(entry) is a public mail domain: anyone can send as it; require_authentication (dkim_or_spf) or a secret is needed")
                    }
                }
            }
            if let secret = s.secret, secret.count < 8 || secret.contains(where: { $0.isWhitespace || $0 == "@" }) {
                problem(p + [.key("secret")], "at least 8 characters, no spaces or @")
            }
            if let n = s.callingNumber, n.isEmpty || !digits(n) { problem(p + [.key("calling_number")], "digits only") }
        }
        if let t = o.trustedMTA {
            let tp = base + [.key("trusted_mta")]
            for (key, hosts) in [("entry_hosts", t.entryHosts), ("internal_hosts", t.internalHosts)] {
                for (j, h) in hosts.enumerated() where h.isEmpty || h.contains(where: { $0.isWhitespace || $0 == "@" || $0 == ";" }) {
                    problem(tp + [.key(key), .index(j)], "a host name as your MTA writes it after \"by\" in Received, e.g. mx.example.com")
                }
            }
            if let overlap = t.entryHosts.first(where: { e in t.internalHosts.contains { $0.lowercased() == e.lowercased() } }) {
                problem(tp + [.key("internal_hosts")], "\(overlap) is an entry host; a host cannot be both")
            }
        }
        if o.replies.maxPerRecipientPerHour < 0 { problem(base + [.key("replies"), .key("max_per_recipient_per_hour")], "0 or more") }
        if !(1...10080).contains(o.replies.adminDigestMinutes) {
            problem(base + [.key("replies"), .key("admin_digest_minutes")], "between 1 and 10080 (a week)")
        }
        if UncertainConfig.Policy(rawValue: o.uncertain.policy) == nil {
            problem(base + [.key("uncertain"), .key("policy")],
                    "one of " + UncertainConfig.Policy.allCases.map(\.rawValue).joined(separator: ", "))
        }
        if !(1...10080).contains(o.uncertain.minutes) {
            problem(base + [.key("uncertain"), .key("minutes")], "between 1 and 10080 (a week)")
        }
        return problems
    }

    /// Things that work but that an admin must know about: `config check` prints them as warnings.
    static func warnOutgoing(_ c: Configuration) -> [Problem] {
        var warnings: [Problem] = []
        for (i, ext) in c.extensions.enumerated() where !ext.senders.allow.isEmpty {
            let p: [ConfigLoader.PathElement] = [.key("extensions"), .index(i), .key("senders")]
            let s = ext.senders
            if s.requireAuthentication == "none" {
                warnings.append(Problem(path: p + [.key("require_authentication")],
                    message: "WARNING: require_authentication is none: anyone who writes an allowed From address can send faxes through '\(ext.name)'\(s.secret == nil ? " (and there is no secret)" : "")"))
            } else {
                for (j, entry) in s.allow.enumerated() where entry.hasPrefix("@") && publicMailDomains.contains(String(entry.dropFirst()).lowercased()) {
                    warnings.append(Problem(path: p + [.key("allow"), .index(j)],
                        message: "WARNING: \(entry) allows every user of a public mail service; authentication proves only the domain"))
                }
            }
        }
        if c.outgoing.trustedMTA != nil && c.mail.adminAddress == nil && !c.outgoing.mailboxes.isEmpty {
            warnings.append(Problem(path: [.key("mail")],
                message: "WARNING: no admin_address: refusals that are not answered (unproven senders, a forged verdict the MTA did not strip) are only logged"))
        }
        return warnings
    }

    /// Mail services where anyone can open an account: an allow list naming them admits strangers.
    static let publicMailDomains: Set<String> = [
        "gmail.com", "googlemail.com", "outlook.com", "outlook.de", "hotmail.com", "hotmail.de", "live.com", "live.de", "msn.com",
        "yahoo.com", "yahoo.de", "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "aol.de", "gmx.de", "gmx.net",
        "gmx.at", "gmx.ch", "gmx.com", "web.de", "t-online.de", "freenet.de", "mail.de", "posteo.de", "posteo.net",
        "mailbox.org", "proton.me", "protonmail.com", "tutanota.com", "tuta.io", "arcor.de", "online.de", "1und1.de",
        "vodafone.de", "kabelmail.de", "bluewin.ch", "mail.com", "email.de", "zoho.com", "yandex.com", "yandex.ru",
        "mail.ru", "qq.com", "163.com",
    ]
}
