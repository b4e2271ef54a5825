import Foundation

extension ConfigValidator {
    /// `web:` — sessions must never travel in clear text beyond this machine: plain HTTP only on a loopback
    /// address, anything else needs a readable certificate and key. Numbers must be usable.
    static func validateWeb(_ c: Configuration) -> [Problem] {
        let w = c.web
        var problems: [Problem] = []
        func problem(_ key: String, _ message: String) { problems.append(Problem(path: [.key("web"), .key(key)], message: message)) }

        if w.hostAndPort == nil { problem("listen", "must be host:port, e.g. 127.0.0.1:8025 or [::1]:8025") }
        if w.tlsCertificate != nil && w.tlsKey == nil { problem("tls_key", "a certificate needs its key (tls_key)") }
        if w.tlsKey != nil && w.tlsCertificate == nil { problem("tls_certificate", "a key needs its certificate (tls_certificate)") }
        if w.enabled && w.hostAndPort != nil && !w.isLoopback && !w.usesTLS {
            problem("listen", "\(w.listen) is not a loopback address: plain HTTP would send passwords and session cookies in clear; "
                + "set tls_certificate and tls_key, or listen on 127.0.0.1 behind a reverse proxy (trusted_proxies)")
        }
        for (key, path) in [("tls_certificate", w.tlsCertificate), ("tls_key", w.tlsKey)] {
            guard let path else { continue }
            if !FileManager.default.fileExists(atPath: path) {
                problem(key, "\(path) does not exist")
            } else if !FileManager.default.isReadableFile(atPath: path) {
                problem(key, "cannot read \(path)")
            } else if key == "tls_key", let mode = fileMode(path), mode & 0o004 != 0 {
                problem(key, "\(path) is world-readable (mode \(String(mode, radix: 8))); chmod 0640 and chgrp to the service group")
            }
        }
        for (i, proxy) in w.trustedProxies.enumerated() where !isIPAddress(proxy) {
            problems.append(Problem(path: [.key("web"), .key("trusted_proxies"), .index(i)], message: "not an IP address: \(proxy)"))
        }
        // An entry that is no address or range would silently match nothing: say so.
        let allow = AddressAllowList(w.metricsAllow)
        for (i, entry) in w.metricsAllow.enumerated() where allow.invalid.contains(entry) {
            problems.append(Problem(path: [.key("web"), .key("metrics_allow"), .index(i)], message: "not an IP address or CIDR range: \(entry)"))
        }
        if w.sessionIdleMinutes < 1 { problem("session_idle_minutes", "must be at least 1") }
        if w.sessionAbsoluteHours < 1 { problem("session_absolute_hours", "must be at least 1") }
        if w.lockoutThreshold < 1 { problem("lockout_threshold", "must be at least 1") }
        if w.lockoutMinutes < 1 { problem("lockout_minutes", "must be at least 1") }
        if w.lockoutMaxMinutes < w.lockoutMinutes { problem("lockout_max_minutes", "must be at least lockout_minutes") }
        if !(1...2048).contains(w.maxUploadMB) { problem("max_upload_mb", "must be between 1 and 2048") }
        if w.minFreeDiskMB < 0 { problem("min_free_disk_mb", "must not be negative") }
        if let url = w.publicURL, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            problem("public_url", "must start with https:// (or http:// for a loopback test)")
        }
        return problems
    }

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }
}
