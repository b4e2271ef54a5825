/// Where and how to reach the IMAP mailbox the gateway takes fax orders from.
public struct IMAPSettings: Sendable, Equatable {
    public enum Security: String, Sendable, Equatable {
        /// Plain TCP, then STARTTLS before anything else is sent.
        case starttls
        /// TLS from the first byte (IMAPS, usually port 993).
        case implicitTLS
    }

    public var host: String
    public var port: UInt16
    public var security: Security
    public var username: String
    public var password: String
    /// PEM file with the CA certificates to trust; nil means the system store.
    public var caFile: String?
    /// The name the server certificate must carry (DNS name or IP address); defaults to `host`.
    public var serverName: String
    /// Network timeout for connecting and for every command (not for IDLE, which has its own).
    public var timeoutSeconds: Int

    public init(
        host: String, port: UInt16, security: Security, username: String, password: String,
        caFile: String? = nil, serverName: String? = nil, timeoutSeconds: Int = 30
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.caFile = caFile
        self.serverName = serverName ?? host
        self.timeoutSeconds = timeoutSeconds
    }
}

extension IMAPSettings: CustomStringConvertible {
    /// Never shows the password (settings end up in logs).
    public var description: String {
        "imap\(security == .implicitTLS ? "s" : "")://\(username)@\(host):\(port) (\(security.rawValue), name \(serverName), CA \(caFile ?? "system store"))"
    }
}
