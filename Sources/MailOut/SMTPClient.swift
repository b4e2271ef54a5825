import CCurl

#if canImport(Glibc)
import Glibc
#endif

/// curl_global_init is not thread-safe; a global's initializer runs exactly once, thread-safely.
private let curlGlobalInitResult: Int = Int(faxgate_curl_global_init_default().rawValue)

/// Submits one rendered message over SMTP with libcurl. Blocking: run it on a thread of your own.
public final class SMTPClient: Sendable {
    public let settings: SMTPSettings

    public init(settings: SMTPSettings) {
        self.settings = settings
    }

    /// Sends `message` (RFC 5322 bytes with CRLF line endings). An empty `envelopeFrom` sends the null
    /// reverse-path `<>`, as required for automatic replies and reports.
    public func send(envelopeFrom: String, recipients: [String], message: [UInt8]) throws(SMTPError) {
        if curlGlobalInitResult != 0 {
            throw SMTPError(isTransient: false, curlCode: curlGlobalInitResult, smtpResponseCode: nil,
                            description: "libcurl could not be initialised (curl_global_init returned \(curlGlobalInitResult))")
        }
        try Self.checkEnvelopeAddress(envelopeFrom, allowEmpty: true)
        if recipients.isEmpty {
            throw SMTPError(isTransient: false, curlCode: 0, smtpResponseCode: nil, description: "no recipients given")
        }
        for recipient in recipients { try Self.checkEnvelopeAddress(recipient, allowEmpty: false) }

        guard let handle = curl_easy_init() else {
            throw SMTPError(isTransient: true, curlCode: Int(CURLE_FAILED_INIT.rawValue), smtpResponseCode: nil,
                            description: "curl_easy_init failed")
        }
        defer { curl_easy_cleanup(handle) }

        let transfer = Transfer(message: message)
        let transferPointer = Unmanaged.passRetained(transfer).toOpaque()
        defer { Unmanaged<Transfer>.fromOpaque(transferPointer).release() }
        let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        defer { errorBuffer.deallocate() }
        var recipientList: UnsafeMutablePointer<curl_slist>? = nil
        for recipient in recipients { recipientList = curl_slist_append(recipientList, "<\(recipient)>") }
        defer { curl_slist_free_all(recipientList) }

        var setupFailure: CURLcode? = nil
        func set(_ code: CURLcode) { if code != CURLE_OK && setupFailure == nil { setupFailure = code } }
        let s = settings
        set(faxgate_curl_set_string(handle, CURLOPT_URL, url()))
        switch s.security {
        case .starttls, .implicitTLS:
            // Without CURLUSESSL_ALL curl silently continues in clear text (and skips AUTH) when STARTTLS is missing.
            set(faxgate_curl_set_long(handle, CURLOPT_USE_SSL, Int(CURLUSESSL_ALL.rawValue)))
        case .none:
            set(faxgate_curl_set_long(handle, CURLOPT_USE_SSL, Int(CURLUSESSL_NONE.rawValue)))
        }
        set(faxgate_curl_set_long(handle, CURLOPT_SSL_VERIFYPEER, 1))
        set(faxgate_curl_set_long(handle, CURLOPT_SSL_VERIFYHOST, 2))
        if let caFile = s.caFile { set(faxgate_curl_set_string(handle, CURLOPT_CAINFO, caFile)) }
        if let username = s.username {
            set(faxgate_curl_set_string(handle, CURLOPT_USERNAME, username))
            set(faxgate_curl_set_string(handle, CURLOPT_PASSWORD, s.password ?? ""))
        }
        if !envelopeFrom.isEmpty { set(faxgate_curl_set_string(handle, CURLOPT_MAIL_FROM, "<\(envelopeFrom)>")) }
        set(faxgate_curl_set_slist(handle, CURLOPT_MAIL_RCPT, recipientList))
        set(faxgate_curl_set_long(handle, CURLOPT_UPLOAD, 1))
        set(faxgate_curl_set_read_function(handle, readCallback))
        set(faxgate_curl_set_pointer(handle, CURLOPT_READDATA, transferPointer))
        // Responses are only passed to the debug callback in verbose mode; it keeps them for error messages.
        set(faxgate_curl_set_long(handle, CURLOPT_VERBOSE, 1))
        set(faxgate_curl_set_debug_function(handle, debugCallback))
        set(faxgate_curl_set_pointer(handle, CURLOPT_DEBUGDATA, transferPointer))
        set(faxgate_curl_set_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer))
        let timeout = max(1, s.timeoutSeconds)
        set(faxgate_curl_set_long(handle, CURLOPT_CONNECTTIMEOUT, timeout))
        set(faxgate_curl_set_long(handle, CURLOPT_SERVER_RESPONSE_TIMEOUT, timeout))
        // Abort an upload that stalls (< 1 byte/s for `timeout` seconds) without capping large attachments.
        set(faxgate_curl_set_long(handle, CURLOPT_LOW_SPEED_LIMIT, 1))
        set(faxgate_curl_set_long(handle, CURLOPT_LOW_SPEED_TIME, timeout))
        // Signals for DNS timeouts are not thread-safe; we run on arbitrary threads.
        set(faxgate_curl_set_long(handle, CURLOPT_NOSIGNAL, 1))
        if let setupFailure {
            throw SMTPError(isTransient: false, curlCode: Int(setupFailure.rawValue), smtpResponseCode: nil,
                            description: "libcurl rejected an option: \(String(cString: curl_easy_strerror(setupFailure)))")
        }

        let result = curl_easy_perform(handle)
        if result == CURLE_OK { return }
        var responseCode = 0
        _ = faxgate_curl_get_long(handle, CURLINFO_RESPONSE_CODE, &responseCode)
        throw Self.classify(
            code: result, responseCode: responseCode, errorText: String(cString: UnsafePointer(errorBuffer)),
            lastReply: transfer.lastReply, lastCommand: transfer.lastCommand, server: "\(s.host):\(s.port)")
    }

    /// `smtp://host:port/helo-name`: curl takes the EHLO name from the URL path.
    func url() -> String {
        let scheme = settings.security == .implicitTLS ? "smtps" : "smtp"
        let host = settings.host.contains(":") && !settings.host.hasPrefix("[") ? "[\(settings.host)]" : settings.host
        var helo = settings.heloName ?? Self.localHostName()
        helo = String(String.UnicodeScalarView(helo.unicodeScalars.filter {
            ($0.value >= 0x30 && $0.value <= 0x39) || ($0.value >= 0x41 && $0.value <= 0x5A)
                || ($0.value >= 0x61 && $0.value <= 0x7A) || $0 == "." || $0 == "-" || $0 == "[" || $0 == "]"
        }))
        return "\(scheme)://\(host):\(settings.port)/\(helo.isEmpty ? "localhost" : helo)"
    }

    static func localHostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }

    static func checkEnvelopeAddress(_ address: String, allowEmpty: Bool) throws(SMTPError) {
        if address.isEmpty && allowEmpty { return }
        let bad = address.isEmpty || address.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7F || $0 == "<" || $0 == ">" }
            || address.split(separator: "@", omittingEmptySubsequences: false).count != 2
        if bad {
            let shown = MIMEEncoding.sanitizeHeaderText(address)
            throw SMTPError(isTransient: false, curlCode: 0, smtpResponseCode: nil,
                            description: "invalid envelope address \"\(shown)\"")
        }
    }

    /// Decides between "retry later" and "give up".
    /// - A 4xx reply is the server saying "try again later" (greylisting, full disk, auth backend down): transient.
    /// - A 5xx reply is a definite refusal (unknown user, policy, bad credentials): permanent.
    /// - Without a usable reply, network trouble (refused, unreachable, timeout, dropped connection) is
    ///   transient: the server may be back soon, and the spool's maximum age still ends the retries.
    /// - Certificate and authentication failures are configuration errors: retrying sends the same
    ///   credentials to the same certificate and fails the same way, so they are permanent and worded so
    ///   the admin sees what to fix.
    static func classify(code: CURLcode, responseCode: Int, errorText: String, lastReply: String?,
                         lastCommand: String?, server: String) -> SMTPError {
        let detail = errorText.isEmpty ? String(cString: curl_easy_strerror(code)) : errorText
        var suffix = ""
        if let lastReply {
            suffix = "; server said \"\(lastReply)\""
            if let lastCommand { suffix += " in reply to \(lastCommand)" }
        }
        let smtpCode = responseCode > 0 ? responseCode : nil
        func error(_ transient: Bool, _ what: String) -> SMTPError {
            SMTPError(isTransient: transient, curlCode: Int(code.rawValue), smtpResponseCode: smtpCode,
                      description: "\(what) (\(server): \(detail))\(suffix)")
        }
        switch code {
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            return error(false, "TLS certificate not trusted — check the server certificate and the configured CA file")
        case CURLE_SSL_CACERT_BADFILE:
            return error(false, "TLS CA file cannot be read — check the configured CA file path and contents")
        case CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER, CURLE_SSL_ENGINE_NOTFOUND, CURLE_SSL_ENGINE_SETFAILED:
            return error(false, "TLS configuration error")
        case CURLE_USE_SSL_FAILED:
            return error(false, "server does not offer STARTTLS; refusing to send in clear text")
        case CURLE_LOGIN_DENIED, CURLE_AUTH_ERROR:
            if let smtpCode, (400..<500).contains(smtpCode) {
                return error(true, "SMTP authentication temporarily failed")
            }
            return error(false, "SMTP authentication failed — check username and password")
        case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL, CURLE_BAD_FUNCTION_ARGUMENT, CURLE_NOT_BUILT_IN:
            return error(false, "invalid SMTP settings")
        default:
            break
        }
        if let smtpCode, (400..<500).contains(smtpCode) { return error(true, "server temporarily refused the message") }
        if let smtpCode, (500..<600).contains(smtpCode) { return error(false, "server refused the message") }
        switch code {
        case CURLE_COULDNT_CONNECT: return error(true, "cannot connect to the SMTP server")
        case CURLE_COULDNT_RESOLVE_HOST: return error(true, "cannot resolve the SMTP server's name")
        case CURLE_OPERATION_TIMEDOUT: return error(true, "SMTP server timed out")
        case CURLE_SSL_CONNECT_ERROR: return error(true, "TLS handshake failed")
        default: return error(true, "SMTP submission failed")
        }
    }
}

/// State shared with the C callbacks: the upload cursor and the last exchange, for error messages.
private final class Transfer {
    let message: [UInt8]
    var offset = 0
    var lastReply: String?
    var lastCommand: String?
    var partialReply = ""

    init(message: [UInt8]) { self.message = message }
}

private let readCallback: @convention(c) (UnsafeMutablePointer<CChar>?, Int, Int, UnsafeMutableRawPointer?) -> Int = {
    buffer, size, count, context in
    guard let buffer, let context else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let length = min(size * count, transfer.message.count - transfer.offset)
    if length <= 0 { return 0 }
    transfer.message.withUnsafeBufferPointer { source in
        UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + transfer.offset, byteCount: length)
    }
    transfer.offset += length
    return length
}

private let debugCallback: @convention(c) (UnsafeMutableRawPointer?, curl_infotype, UnsafeMutablePointer<CChar>?, Int, UnsafeMutableRawPointer?) -> Int32 = {
    _, type, data, size, context in
    guard let data, let context, size > 0 else { return 0 }
    let transfer = Unmanaged<Transfer>.fromOpaque(context).takeUnretainedValue()
    let text = data.withMemoryRebound(to: UInt8.self, capacity: size) {
        String(decoding: UnsafeBufferPointer(start: $0, count: size), as: UTF8.self)
    }
    let lines = text.split(whereSeparator: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" }).map(String.init).filter { !$0.isEmpty }
    if type == CURLINFO_HEADER_IN {
        if let last = lines.last { transfer.lastReply = MIMEEncoding.sanitizeHeaderText(String(last.prefix(300))) }
    } else if type == CURLINFO_HEADER_OUT, let last = lines.last {
        // Never keep credentials: AUTH lines and the base64 continuation lines after them.
        let verb = last.prefix(while: { $0 != " " }).uppercased()
        switch verb {
        case "MAIL", "RCPT": transfer.lastCommand = String(last.prefix(200))
        case "EHLO", "HELO", "STARTTLS", "DATA", "QUIT", "RSET", "NOOP", "AUTH": transfer.lastCommand = verb
        default: transfer.lastCommand = "AUTH"  // SASL continuation line: credentials, never kept
        }
    }
    return 0
}
