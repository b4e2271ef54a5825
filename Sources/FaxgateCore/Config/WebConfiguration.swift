import Foundation

/// `web:` — the admin and user pages, `/metrics` and `/health` (Sources/FaxgateWeb).
public struct WebSettings: Sendable, Codable, Equatable {
    /// false = `serve` starts no HTTP server.
    public var enabled: Bool = true
    /// "host:port". Plain HTTP only on a loopback address; anything else needs `tls_certificate` and `tls_key`.
    public var listen: String = "127.0.0.1:8025"
    /// PEM certificate chain and key for HTTPS.
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// Addresses of reverse proxies whose `X-Forwarded-For` / `X-Forwarded-Proto` are believed. Empty = none.
    public var trustedProxies: [String] = []
    /// The URL users type (for links in mails and the TOTP label), e.g. "https://fax.example.com".
    public var publicURL: String?
    /// Sessions end after this long without a request, and after `session_absolute_hours` in any case.
    public var sessionIdleMinutes: Int = 30
    public var sessionAbsoluteHours: Int = 12
    /// Failed logins before the account is locked; each further failure doubles the lock, up to `lockout_max_minutes`.
    public var lockoutThreshold: Int = 5
    public var lockoutMinutes: Int = 1
    public var lockoutMaxMinutes: Int = 60
    /// Largest upload (send a fax, greeting) in megabytes.
    public var maxUploadMB: Int = 25
    /// `/health/ready` fails when the spool's file system has less free space than this.
    public var minFreeDiskMB: Int = 500
    /// Addresses and CIDR ranges (besides loopback) that may read `/metrics` and `/health/*` without a login
    /// (the Prometheus server, the load balancer). Everyone else gets 403.
    public var metricsAllow: [String] = []

    enum CodingKeys: String, CodingKey {
        case enabled, listen, tlsCertificate = "tls_certificate", tlsKey = "tls_key", trustedProxies = "trusted_proxies"
        case publicURL = "public_url", sessionIdleMinutes = "session_idle_minutes", sessionAbsoluteHours = "session_absolute_hours"
        case lockoutThreshold = "lockout_threshold", lockoutMinutes = "lockout_minutes", lockoutMaxMinutes = "lockout_max_minutes"
        case maxUploadMB = "max_upload_mb", minFreeDiskMB = "min_free_disk_mb"
        case metricsAllow = "metrics_allow"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? enabled
        listen = try c.decodeIfPresent(String.self, forKey: .listen) ?? listen
        tlsCertificate = try c.decodeIfPresent(String.self, forKey: .tlsCertificate)
        tlsKey = try c.decodeIfPresent(String.self, forKey: .tlsKey)
        trustedProxies = try c.decodeIfPresent([String].self, forKey: .trustedProxies) ?? []
        publicURL = try c.decodeIfPresent(String.self, forKey: .publicURL)
        sessionIdleMinutes = try c.decodeIfPresent(Int.self, forKey: .sessionIdleMinutes) ?? sessionIdleMinutes
        sessionAbsoluteHours = try c.decodeIfPresent(Int.self, forKey: .sessionAbsoluteHours) ?? sessionAbsoluteHours
        lockoutThreshold = try c.decodeIfPresent(Int.self, forKey: .lockoutThreshold) ?? lockoutThreshold
        lockoutMinutes = try c.decodeIfPresent(Int.self, forKey: .lockoutMinutes) ?? lockoutMinutes
        lockoutMaxMinutes = try c.decodeIfPresent(Int.self, forKey: .lockoutMaxMinutes) ?? lockoutMaxMinutes
        maxUploadMB = try c.decodeIfPresent(Int.self, forKey: .maxUploadMB) ?? maxUploadMB
        minFreeDiskMB = try c.decodeIfPresent(Int.self, forKey: .minFreeDiskMB) ?? minFreeDiskMB
        metricsAllow = try c.decodeIfPresent([String].self, forKey: .metricsAllow) ?? []
    }

    /// Host and port of `listen`; nil when it does not parse. `[::1]:8025` and `127.0.0.1:8025` both work.
    public var hostAndPort: (host: String, port: Int)? {
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(listen[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    /// Whether `listen` is a loopback address (plain HTTP allowed, cookies without `Secure`).
    public var isLoopback: Bool {
        guard let host = hostAndPort?.host else { return false }
        return host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    public var usesTLS: Bool { tlsCertificate != nil || tlsKey != nil }
}
