import CEtpan
import Foundation
import Synchronization

/// Flags the gateway sets on messages it has taken.
public enum IMAPFlag: String, Sendable {
    case seen = "\\Seen", deleted = "\\Deleted", flagged = "\\Flagged", answered = "\\Answered"
}

/// What `move(_:to:)` did, so an exactly-once journal can record it.
public struct MoveResult: Sendable, Equatable {
    public enum Method: String, Sendable { case moved, copiedAndExpunged }
    public var method: Method
    /// UIDPLUS COPYUID data (UIDVALIDITY and UID of the message in the target mailbox), when the server sent it.
    public var destinationUIDValidity: UInt32?
    public var destinationUID: UInt32?
}

/// One IMAP session (libetpan `mailimap`) with its own thread. Every method runs its libetpan calls on that
/// thread, one at a time, in call order. `connect()` verifies the certificate; `login()` refuses to send the
/// password unless that verification succeeded.
public final class IMAPConnection: Sendable {
    public let settings: IMAPSettings

    private struct State {
        var verified = false
        var closed = false
        var capabilities: Set<String> = []
        /// Set by task cancellation of `idle`; consumed by the idle loop.
        var idleCancelled = false
        /// Set by `interrupt()` (graceful shutdown); sticky, so a wait that has not started yet ends at once too.
        var interrupted = false
    }
    private let worker: IMAPThread
    private let state = Mutex(State())
    /// Wakes a thread that sits in IDLE's poll(): written by `close()` and task cancellation.
    private let wakeRead: Int32, wakeWrite: Int32

    public init(settings: IMAPSettings) {
        _ = ignoreSIGPIPE
        self.settings = settings
        worker = IMAPThread(name: "imap \(settings.username)@\(settings.host)")
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        wakeRead = fds[0]
        wakeWrite = fds[1]
    }

    deinit {
        worker.shutdown()
        if wakeRead >= 0 { Foundation.close(wakeRead) }
        if wakeWrite >= 0 { Foundation.close(wakeWrite) }
    }

    // MARK: Capabilities (as of the last CAPABILITY; login() refreshes them)

    public var capabilities: Set<String> { state.withLock { $0.capabilities } }
    public var supportsIdle: Bool { capabilities.contains("IDLE") }
    public var supportsMove: Bool { capabilities.contains("MOVE") }
    public var supportsUIDPlus: Bool { capabilities.contains("UIDPLUS") }

    // MARK: Session

    /// TCP connect, greeting, TLS (implicit or STARTTLS), then verification of the chain and the server name.
    /// Nothing secret has been sent when this throws.
    public func connect() async throws {
        let settings = self.settings
        let chain = try await worker.run { w -> [[UInt8]] in
            guard w.session == nil else { throw IMAPError.invalidState("already connected") }
            guard let s = mailimap_new(0, nil) else { throw IMAPError.invalidState("out of memory") }
            mailimap_set_timeout(s, time_t(settings.timeoutSeconds))
            var r: Int32
            switch settings.security {
            case .implicitTLS:
                r = mailimap_ssl_connect(s, settings.host, settings.port)
            case .starttls:
                r = mailimap_socket_connect(s, settings.host, settings.port)
                if r == MAILIMAP_NO_ERROR || r == MAILIMAP_NO_ERROR_NON_AUTHENTICATED || r == MAILIMAP_NO_ERROR_AUTHENTICATED {
                    r = mailimap_socket_starttls(s)
                    if r != MAILIMAP_NO_ERROR {
                        let text = responseText(s)
                        mailimap_free(s)
                        throw IMAPError.tls("STARTTLS failed" + (text.isEmpty ? "" : ": \(text)"))
                    }
                }
            }
            switch Int(r) {
            case MAILIMAP_NO_ERROR, MAILIMAP_NO_ERROR_NON_AUTHENTICATED, MAILIMAP_NO_ERROR_AUTHENTICATED: break
            case MAILIMAP_ERROR_CONNECTION_REFUSED:
                mailimap_free(s)
                throw IMAPError.connectionFailed(host: settings.host, port: settings.port)
            case MAILIMAP_ERROR_SSL:
                mailimap_free(s)
                throw IMAPError.tls("handshake with \(settings.host):\(settings.port) failed")
            case MAILIMAP_ERROR_DONT_ACCEPT_CONNECTION:
                let text = responseText(s)
                mailimap_free(s)
                throw IMAPError.commandFailed(command: "connection (greeting)", serverText: text)
            default:
                let error = IMAPError.from(code: r, command: "connect", serverText: responseText(s))
                mailimap_free(s)
                throw error
            }
            w.session = s
            guard let certs = mailstream_get_certificate_chain(s.pointee.imap_stream) else {
                throw IMAPError.certificateNotTrusted("the TLS layer returned no certificate chain")
            }
            defer { mailstream_certificate_chain_free(certs) }
            var chain: [[UInt8]] = []
            for i in 0..<Int(certs.pointee.len) {
                guard let item = certs.pointee.array[i]?.assumingMemoryBound(to: MMAPString.self),
                      let bytes = item.pointee.str else { continue }
                chain.append(Array(UnsafeRawBufferPointer(start: bytes, count: item.pointee.len)))
            }
            return chain
        }
        do {
            try await CertificateVerification.verify(
                chainDER: chain, serverName: settings.serverName, caFile: settings.caFile)
        } catch {
            // Hang up without a word: no LOGOUT, certainly no LOGIN.
            _ = try? await worker.run { w in
                if let s = w.session { mailimap_free(s) }
                w.session = nil
            }
            throw error
        }
        state.withLock { $0.verified = true }
    }

    /// LOGIN, then CAPABILITY again (MOVE, UIDPLUS, IDLE are announced only to authenticated users).
    public func login() async throws {
        guard state.withLock({ $0.verified }) else {
            throw IMAPError.invalidState("login() before connect() verified the server certificate")
        }
        let settings = self.settings
        try await worker.run { w in
            let s = try session(w)
            let r = mailimap_login(s, settings.username, settings.password)
            switch Int(r) {
            case MAILIMAP_NO_ERROR, MAILIMAP_NO_ERROR_AUTHENTICATED: return
            case MAILIMAP_ERROR_STREAM: throw IMAPError.connectionLost(command: "LOGIN")
            case MAILIMAP_ERROR_PARSE: throw IMAPError.protocolError(command: "LOGIN")
            default: throw IMAPError.loginFailed(user: settings.username, serverText: responseText(s))
            }
        }
        _ = try await capability()
    }

    /// CAPABILITY; the result also feeds `supportsIdle`, `supportsMove`, `supportsUIDPlus`.
    @discardableResult
    public func capability() async throws -> Set<String> {
        let caps = try await worker.run { w -> Set<String> in
            let s = try session(w)
            var data: UnsafeMutablePointer<mailimap_capability_data>?
            try check(mailimap_capability(s, &data), "CAPABILITY", s)
            defer { if let data { mailimap_capability_data_free(data) } }
            var caps: Set<String> = []
            for cap in clistItems(data?.pointee.cap_list, as: mailimap_capability.self) {
                if Int(cap.pointee.cap_type) == MAILIMAP_CAPABILITY_AUTH_TYPE {
                    if let t = cap.pointee.cap_data.cap_auth_type { caps.insert("AUTH=" + String(cString: t).uppercased()) }
                } else if let n = cap.pointee.cap_data.cap_name {
                    caps.insert(String(cString: n).uppercased())
                }
            }
            return caps
        }
        state.withLock { $0.capabilities = caps }
        return caps
    }

    /// SELECT. `uidValidity` and the UIDs together identify a message for good (RFC 3501 2.3.1.1).
    public func select(_ mailbox: String) async throws -> (uidValidity: UInt32, uidNext: UInt32, exists: Int) {
        let status = try await worker.run { w -> SelectStatus in
            let s = try session(w)
            try check(mailimap_select(s, mailbox), "SELECT \(mailbox)", s)
            guard let info = s.pointee.imap_selection_info else {
                throw IMAPError.missingData("SELECT \(mailbox) returned no mailbox status")
            }
            return SelectStatus(
                uidValidity: info.pointee.sel_uidvalidity, uidNext: info.pointee.sel_uidnext,
                exists: Int(info.pointee.sel_exists))
        }
        return (status.uidValidity, status.uidNext, status.exists)
    }

    /// Creates `mailbox` unless LIST finds it. Returns true when it was created.
    @discardableResult
    public func create(_ mailbox: String) async throws -> Bool {
        try await worker.run { w -> Bool in
            let s = try session(w)
            var list: UnsafeMutablePointer<clist>?
            try check(mailimap_list(s, "", mailbox, &list), "LIST \(mailbox)", s)
            let exists = !clistItems(list, as: mailimap_mailbox_list.self).isEmpty
            if let list { mailimap_list_result_free(list) }
            if exists { return false }
            try check(mailimap_create(s, mailbox), "CREATE \(mailbox)", s)
            return true
        }
    }

    public func uidSearchAll() async throws -> [UInt32] {
        try await uidSearch("UID SEARCH ALL") { mailimap_search_key_new_all() }
    }

    public func uidSearchUnseen() async throws -> [UInt32] {
        try await uidSearch("UID SEARCH UNSEEN") { faxgate_etpan_search_key_unseen() }
    }

    private func uidSearch(
        _ command: String, _ makeKey: @escaping @Sendable () -> UnsafeMutablePointer<mailimap_search_key>?
    ) async throws -> [UInt32] {
        try await worker.run { w -> [UInt32] in
            let s = try session(w)
            guard let key = makeKey() else { throw IMAPError.invalidState("out of memory") }
            defer { mailimap_search_key_free(key) }
            var result: UnsafeMutablePointer<clist>?
            try check(mailimap_uid_search(s, nil, key, &result), command, s)
            defer { if let result { mailimap_search_result_free(result) } }
            return clistItems(result, as: UInt32.self).map { $0.pointee }.sorted()
        }
    }

    /// The whole message as stored (UID FETCH BODY.PEEK[]: does not set \Seen).
    public func fetchRaw(_ uid: UInt32) async throws -> [UInt8] {
        try await fetch(uid, command: "UID FETCH \(uid) BODY.PEEK[]") { mailimap_fetch_att_new_body_peek_section(mailimap_section_new(nil)) } extract: { st in
            guard Int(st.att_type) == MAILIMAP_MSG_ATT_BODY_SECTION, let section = st.att_data.att_body_section else { return nil }
            guard let bytes = section.pointee.sec_body_part else { return [UInt8]() }
            return Array(UnsafeRawBufferPointer(start: bytes, count: section.pointee.sec_length))
        }
    }

    /// RFC822.SIZE: lets the caller refuse a huge message before downloading it.
    public func fetchSize(_ uid: UInt32) async throws -> Int {
        try await fetch(uid, command: "UID FETCH \(uid) RFC822.SIZE") { mailimap_fetch_att_new_rfc822_size() } extract: { st in
            Int(st.att_type) == MAILIMAP_MSG_ATT_RFC822_SIZE ? Int(st.att_data.att_rfc822_size) : nil
        }
    }

    private func fetch<T: Sendable>(
        _ uid: UInt32, command: String,
        attribute: @escaping @Sendable () -> UnsafeMutablePointer<mailimap_fetch_att>?,
        extract: @escaping @Sendable (mailimap_msg_att_static) -> T?
    ) async throws -> T {
        try await worker.run { w -> T in
            let s = try session(w)
            guard let set = mailimap_set_new_single(uid), let type = mailimap_fetch_type_new_fetch_att_list_empty() else {
                throw IMAPError.invalidState("out of memory")
            }
            defer { mailimap_set_free(set); mailimap_fetch_type_free(type) }
            mailimap_fetch_type_new_fetch_att_list_add(type, attribute())
            mailimap_fetch_type_new_fetch_att_list_add(type, mailimap_fetch_att_new_uid())
            var result: UnsafeMutablePointer<clist>?
            try check(mailimap_uid_fetch(s, set, type, &result), command, s)
            defer { if let result { mailimap_fetch_list_free(result) } }
            // The server may add unsolicited FETCH responses for other messages: pick ours by UID.
            for message in clistItems(result, as: mailimap_msg_att.self) {
                var found: T?
                var messageUID: UInt32?
                for item in clistItems(message.pointee.att_list, as: mailimap_msg_att_item.self)
                where Int(item.pointee.att_type) == MAILIMAP_MSG_ATT_ITEM_STATIC {
                    guard let st = item.pointee.att_data.att_static else { continue }
                    if Int(st.pointee.att_type) == MAILIMAP_MSG_ATT_UID { messageUID = st.pointee.att_data.att_uid }
                    if let value = extract(st.pointee) { found = value }
                }
                if messageUID == uid, let found { return found }
            }
            throw IMAPError.missingData("\(command): no such message in the selected mailbox")
        }
    }

    /// Adds `flag` (UID STORE +FLAGS.SILENT).
    public func setFlag(_ uid: UInt32, _ flag: IMAPFlag) async throws {
        try await worker.run { w in
            let s = try session(w)
            try storeFlag(s, uid, flag)
        }
    }

    /// Moves one message: UID MOVE when the server has MOVE, else UID COPY + \Deleted + UID EXPUNGE
    /// (plain EXPUNGE without UIDPLUS, which also removes other messages already marked \Deleted).
    public func move(_ uid: UInt32, to mailbox: String) async throws -> MoveResult {
        let caps = capabilities
        return try await worker.run { w -> MoveResult in
            let s = try session(w)
            guard let set = mailimap_set_new_single(uid) else { throw IMAPError.invalidState("out of memory") }
            defer { mailimap_set_free(set) }
            var validity: UInt32 = 0
            var source: UnsafeMutablePointer<mailimap_set>?, dest: UnsafeMutablePointer<mailimap_set>?
            defer {
                if let source { mailimap_set_free(source) }
                if let dest { mailimap_set_free(dest) }
            }
            let method: MoveResult.Method
            if caps.contains("MOVE") {
                if caps.contains("UIDPLUS") {
                    try check(mailimap_uidplus_uid_move(s, set, mailbox, &validity, &source, &dest), "UID MOVE \(uid) \(mailbox)", s)
                } else {
                    try check(mailimap_uid_move(s, set, mailbox), "UID MOVE \(uid) \(mailbox)", s)
                }
                method = .moved
            } else {
                if caps.contains("UIDPLUS") {
                    try check(mailimap_uidplus_uid_copy(s, set, mailbox, &validity, &source, &dest), "UID COPY \(uid) \(mailbox)", s)
                } else {
                    try check(mailimap_uid_copy(s, set, mailbox), "UID COPY \(uid) \(mailbox)", s)
                }
                try storeFlag(s, uid, .deleted)
                if caps.contains("UIDPLUS") {
                    try check(mailimap_uid_expunge(s, set), "UID EXPUNGE \(uid)", s)
                } else {
                    try check(mailimap_expunge(s), "EXPUNGE", s)
                }
                method = .copiedAndExpunged
            }
            let destUID = clistItems(dest?.pointee.set_list, as: mailimap_set_item.self).first?.pointee.set_first
            return MoveResult(method: method, destinationUIDValidity: validity == 0 ? nil : validity, destinationUID: destUID)
        }
    }

    /// Waits in IDLE until the server announces new mail (EXISTS): true; false when `timeout` passes first.
    /// Other untagged news (flag changes, "still here") is absorbed and the wait continues. DONE is always sent
    /// before returning, so the session is ready for commands. Task cancellation and `close()` end the wait.
    public func idle(timeout: Duration) async throws -> Bool {
        guard supportsIdle else { throw IMAPError.invalidState("the server does not offer IDLE") }
        let wakeRead = self.wakeRead
        let deadline = ContinuousClock.now + timeout
        return try await withTaskCancellationHandler {
            try await worker.run { [self] w -> Bool in
                let s = try session(w)
                drain(wakeRead)
                while true {
                    try self.throwIfInterrupted()
                    if self.isInterrupted { return false }
                    try check(mailimap_idle(s), "IDLE", s)
                    s.pointee.imap_selection_info?.pointee.sel_has_exists = 0
                    var fds = [
                        pollfd(fd: mailimap_idle_get_fd(s), events: Int16(POLLIN), revents: 0),
                        pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
                    ]
                    var serverSpoke = faxgate_etpan_buffered_bytes(s) > 0
                    var woken = false
                    if !serverSpoke {
                        let remaining = ContinuousClock.now.duration(to: deadline)
                        let ms = max(0, Int32(clamping: remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
                        var n: Int32
                        repeat { n = poll(&fds, 2, ms) } while n < 0 && errno == EINTR
                        serverSpoke = fds[0].revents != 0
                        woken = fds[1].revents != 0
                    }
                    try check(mailimap_idle_done(s), "IDLE (DONE)", s)
                    let newMail = s.pointee.imap_selection_info?.pointee.sel_has_exists != 0
                    if newMail { return true }
                    if woken {
                        try self.throwIfInterrupted()
                        // DONE is sent above, so the session is ready for LOGOUT on this same thread.
                        if self.isInterrupted { return false }
                    }
                    if !serverSpoke || ContinuousClock.now >= deadline { return false }
                }
            }
        } onCancel: {
            self.state.withLock { $0.idleCancelled = true }
            self.wake()
        }
    }

    /// Ends a waiting (or the next) `idle` early with `false`, from any thread: graceful shutdown must not wait
    /// for `poll_seconds`. Unlike `close()` the session stays usable: the IDLE thread sends DONE itself (libetpan
    /// sessions are not thread-safe, so only the connection's own thread touches the socket), then LOGOUT works.
    public func interrupt() {
        state.withLock { $0.interrupted = true }
        wake()
    }

    /// True once `interrupt()` was called.
    public var isInterrupted: Bool { state.withLock { $0.interrupted } }

    /// LOGOUT (polite end of session); `close()` still has to be called.
    public func logout() async throws {
        try await worker.run { w in
            guard let s = w.session else { return }
            let r = mailimap_logout(s)
            if r != MAILIMAP_NO_ERROR && r != MAILIMAP_ERROR_STREAM { throw IMAPError.from(code: r, command: "LOGOUT", serverText: responseText(s)) }
        }
    }

    /// Drops the connection and ends the thread. Interrupts a waiting `idle`. Idempotent.
    public func close() async {
        let first = state.withLock { s -> Bool in
            defer { s.closed = true; s.verified = false }
            return !s.closed
        }
        guard first else { return }
        wake()
        _ = try? await worker.run { w in
            if let s = w.session { mailimap_free(s) }
            w.session = nil
        }
        worker.shutdown()
    }

    private func throwIfInterrupted() throws {
        let (closed, cancelled) = state.withLock { s in
            defer { s.idleCancelled = false }
            return (s.closed, s.idleCancelled)
        }
        if closed { throw IMAPError.closed }
        if cancelled { throw CancellationError() }
    }

    private func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWrite, &byte, 1)
    }
}

private struct SelectStatus: Sendable { var uidValidity: UInt32, uidNext: UInt32, exists: Int }

/// A write to a socket the server has closed must become an error code, not kill the gateway.
private let ignoreSIGPIPE: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

private func session(_ w: IMAPThread) throws -> UnsafeMutablePointer<mailimap> {
    guard let s = w.session else { throw IMAPError.invalidState("not connected") }
    return s
}

private func responseText(_ s: UnsafeMutablePointer<mailimap>) -> String {
    s.pointee.imap_response.map { String(cString: $0) } ?? ""
}

private func check(_ code: Int32, _ command: String, _ s: UnsafeMutablePointer<mailimap>) throws {
    if code == MAILIMAP_NO_ERROR { return }
    throw IMAPError.from(code: code, command: command, serverText: responseText(s))
}

private func storeFlag(_ s: UnsafeMutablePointer<mailimap>, _ uid: UInt32, _ flag: IMAPFlag) throws {
    guard let set = mailimap_set_new_single(uid), let list = mailimap_flag_list_new_empty() else {
        throw IMAPError.invalidState("out of memory")
    }
    defer { mailimap_set_free(set) }
    let f: UnsafeMutablePointer<mailimap_flag>? = switch flag {
    case .seen: mailimap_flag_new_seen()
    case .deleted: mailimap_flag_new_deleted()
    case .flagged: mailimap_flag_new_flagged()
    case .answered: mailimap_flag_new_answered()
    }
    mailimap_flag_list_add(list, f)
    guard let att = mailimap_store_att_flags_new_add_flags_silent(list) else { throw IMAPError.invalidState("out of memory") }
    defer { mailimap_store_att_flags_free(att) }
    try check(mailimap_uid_store(s, set, att), "UID STORE \(uid) +FLAGS (\(flag.rawValue))", s)
}

private func drain(_ fd: Int32) {
    var buffer = [UInt8](repeating: 0, count: 64)
    while read(fd, &buffer, buffer.count) > 0 {}
}
