import CEtpan

/// Why an IMAP operation failed, in words an administrator can act on.
public enum IMAPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// TCP connection failed (refused, unreachable, name not found, timed out).
    case connectionFailed(host: String, port: UInt16)
    /// The TLS handshake (implicit TLS or after STARTTLS) failed.
    case tls(String)
    /// The server certificate chain or name did not verify; the password was not sent.
    case certificateNotTrusted(String)
    /// The server rejected the user name or password.
    case loginFailed(user: String, serverText: String)
    /// The server answered NO or BAD to a command.
    case commandFailed(command: String, serverText: String)
    /// The connection broke or timed out in the middle of a command.
    case connectionLost(command: String)
    /// The server sent something libetpan could not parse.
    case protocolError(command: String)
    /// A method was called in the wrong state (e.g. login before a verified connect).
    case invalidState(String)
    /// The server's answer lacked what was asked for (e.g. a FETCH without the body).
    case missingData(String)
    /// The connection was closed (by `close()`) while the call waited.
    case closed

    public var description: String {
        switch self {
        case .connectionFailed(let host, let port):
            return "cannot connect to \(host):\(port) (connection refused, unreachable or timed out)"
        case .tls(let text): return "TLS failed: \(text)"
        case .certificateNotTrusted(let text): return "certificate not trusted: \(text)"
        case .loginFailed(let user, let text):
            return "login failed for \(user)" + (text.isEmpty ? "" : ": server said \"\(text)\"")
        case .commandFailed(let command, let text):
            return "server refused \(command)" + (text.isEmpty ? "" : ": \"\(text)\"")
        case .connectionLost(let command): return "connection lost during \(command) (closed by the server or timed out)"
        case .protocolError(let command): return "unparsable server response to \(command)"
        case .invalidState(let text): return "IMAP connection not ready: \(text)"
        case .missingData(let text): return "server response incomplete: \(text)"
        case .closed: return "IMAP connection closed"
        }
    }

    /// Maps a libetpan return code; `serverText` is libetpan's copy of the last response text.
    static func from(code: Int32, command: String, serverText: String) -> IMAPError {
        switch Int(code) {
        case MAILIMAP_ERROR_STREAM: return .connectionLost(command: command)
        case MAILIMAP_ERROR_PARSE: return .protocolError(command: command)
        case MAILIMAP_ERROR_SSL, MAILIMAP_ERROR_STARTTLS:
            return .tls("\(command): handshake failed" + (serverText.isEmpty ? "" : " (\(serverText))"))
        case MAILIMAP_ERROR_BAD_STATE: return .invalidState("\(command) not allowed in this state")
        default: return .commandFailed(command: command, serverText: serverText)
        }
    }
}
