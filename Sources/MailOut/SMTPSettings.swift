/// Where and how to submit mail.
public struct SMTPSettings: Sendable {
    public enum Security: String, Sendable {
        /// Plain connection upgraded with STARTTLS; the upgrade is mandatory (never falls back to clear text).
        case starttls
        /// TLS from the first byte (`smtps://`, RFC 8314), usually port 465.
        case implicitTLS = "tls"
        /// No encryption at all. Only for a relay on the same host or a trusted network.
        case none
    }

    public var host: String
    public var port: Int
    public var security: Security
    public var username: String?
    public var password: String?
    /// PEM file with the CA(s) to trust instead of the system store, for a private CA.
    public var caFile: String?
    /// Name sent in EHLO; defaults to this machine's host name.
    public var heloName: String?
    /// Connect timeout, and the longest wait for any server reply or stalled upload.
    public var timeoutSeconds: Int

    public init(
        host: String, port: Int, security: Security = .starttls, username: String? = nil, password: String? = nil,
        caFile: String? = nil, heloName: String? = nil, timeoutSeconds: Int = 60
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.caFile = caFile
        self.heloName = heloName
        self.timeoutSeconds = timeoutSeconds
    }
}

/// Why a submission failed, and whether trying again later can help.
public struct SMTPError: Error, Sendable, CustomStringConvertible {
    /// True: keep the message queued and retry later. False: retrying cannot help; bounce or alert the admin.
    public var isTransient: Bool
    /// libcurl's CURLcode (0 when the failure happened before curl was involved).
    public var curlCode: Int
    /// Last SMTP reply code from the server, when there was one.
    public var smtpResponseCode: Int?
    /// Human-readable, including the server's last reply when available.
    public var description: String

    public init(isTransient: Bool, curlCode: Int, smtpResponseCode: Int?, description: String) {
        self.isTransient = isTransient
        self.curlCode = curlCode
        self.smtpResponseCode = smtpResponseCode
        self.description = description
    }
}
