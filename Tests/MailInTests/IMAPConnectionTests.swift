import Foundation
import Synchronization
import MailIn
import TestSupport
import XCTest

/// IMAPConnection against a real Dovecot from contrib/testservers.sh (STARTTLS and IMAPS, test CA).
final class IMAPConnectionTests: XCTestCase {
    private var servers: MailServers!

    override func setUpWithError() throws {
        servers = try MailServers.start()
    }

    override func tearDown() {
        servers?.stop()
        servers = nil
    }

    private func settings(
        _ security: IMAPSettings.Security, host: String? = nil, caFile: String?? = .none, serverName: String? = nil,
        password: String? = nil
    ) -> IMAPSettings {
        IMAPSettings(
            host: host ?? servers.host,
            port: UInt16(security == .starttls ? servers.imapPort : servers.imapsPort),
            security: security, username: servers.user, password: password ?? servers.password,
            caFile: caFile ?? servers.caFile, serverName: serverName, timeoutSeconds: 10)
    }

    /// Stores `message` in `user`'s INBOX with doveadm (bypasses IMAP, like a local delivery).
    private func deliver(_ message: [UInt8], mailbox: String = "INBOX") throws {
        let conf = try XCTUnwrap(servers.environment["DOVECOT_CONF"])
        try runTool("doveadm", ["-c", conf, "save", "-u", servers.user, "-m", mailbox], stdin: Data(message))
    }

    private func message(_ n: Int) -> [UInt8] {
        Array((
            "From: Sender \(n) <sender\(n)@example.test>\r\nTo: fax@example.test\r\n" +
            "Subject: fax order \(n)\r\nMessage-ID: <order-\(n)@example.test>\r\n" +
            "Date: Mon, 1 Jan 2024 10:00:0\(n) +0000\r\nMIME-Version: 1.0\r\n" +
            "Content-Type: text/plain; charset=utf-8\r\n\r\nBody of order \(n): Grüße.\r\n"
        ).utf8)
    }

    private func dovecotLog() -> String {
        guard let path = servers.environment["DOVECOT_LOG"], let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    func testSTARTTLSFullCycle() async throws {
        try await fullCycle(settings(.starttls, host: "localhost"))
    }

    func testImplicitTLSFullCycle() async throws {
        try await fullCycle(settings(.implicitTLS))
    }

    private func fullCycle(_ settings: IMAPSettings) async throws {
        let connection = IMAPConnection(settings: settings)
        try await connection.connect()
        try await connection.login()
        XCTAssertTrue(connection.supportsIdle)
        XCTAssertTrue(connection.supportsMove, "MOVE is announced after LOGIN: \(connection.capabilities.sorted())")
        XCTAssertTrue(connection.supportsUIDPlus)

        let messages = (1...3).map(message)
        for m in messages { try deliver(m) }
        let inbox = try await connection.select("INBOX")
        XCTAssertEqual(inbox.exists, 3)
        XCTAssertGreaterThan(inbox.uidValidity, 0)
        XCTAssertEqual(inbox.uidNext, 4)

        let uids = try await connection.uidSearchAll()
        XCTAssertEqual(uids, [1, 2, 3])
        for (uid, expected) in zip(uids, messages) {
            let raw = try await connection.fetchRaw(uid)
            XCTAssertEqual(raw, expected, "UID \(uid) comes back byte for byte")
            let size = try await connection.fetchSize(uid)
            XCTAssertEqual(size, expected.count)
        }
        // BODY.PEEK leaves the messages unseen; \Seen takes one out of UNSEEN.
        let unseenBefore = try await connection.uidSearchUnseen()
        XCTAssertEqual(unseenBefore, [1, 2, 3])
        try await connection.setFlag(2, .seen)
        let unseenAfter = try await connection.uidSearchUnseen()
        XCTAssertEqual(unseenAfter, [1, 3])

        let created = try await connection.create("Processed")
        XCTAssertTrue(created)
        let createdAgain = try await connection.create("Processed")
        XCTAssertFalse(createdAgain, "an existing mailbox is left alone")

        let moved = try await connection.move(1, to: "Processed")
        XCTAssertEqual(moved.method, .moved)
        let destinationUID = try XCTUnwrap(moved.destinationUID, "UIDPLUS reports the new UID")
        XCTAssertNotNil(moved.destinationUIDValidity)
        let remaining = try await connection.uidSearchAll()
        XCTAssertEqual(remaining, [2, 3], "the message is gone from INBOX")
        do {
            _ = try await connection.fetchRaw(1)
            XCTFail("UID 1 must no longer be in INBOX")
        } catch let error as IMAPError {
            guard case .missingData = error else { return XCTFail("unexpected \(error)") }
        }

        let processed = try await connection.select("Processed")
        XCTAssertEqual(processed.exists, 1)
        XCTAssertEqual(processed.uidValidity, moved.destinationUIDValidity)
        let movedRaw = try await connection.fetchRaw(destinationUID)
        XCTAssertEqual(movedRaw, messages[0], "the message arrived in Processed unchanged")

        do {
            _ = try await connection.select("NoSuchMailbox")
            XCTFail("SELECT of a missing mailbox must fail")
        } catch let error as IMAPError {
            guard case .commandFailed(_, let text) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertFalse(text.isEmpty, "the server's words are kept: \(error)")
        }
        try await connection.logout()
        await connection.close()
    }

    func testUntrustedCertificateIsRefusedBeforeLogin() async throws {
        // The system store does not know the test CA.
        let connection = IMAPConnection(settings: settings(.implicitTLS, caFile: .some(nil)))
        do {
            try await connection.connect()
            XCTFail("a certificate from an unknown CA must be refused")
        } catch let error as IMAPError {
            guard case .certificateNotTrusted = error else { return XCTFail("unexpected \(error)") }
            XCTAssertTrue("\(error)".hasPrefix("certificate not trusted:"), "\(error)")
            print("untrusted CA: \(error)")
        }
        do {
            try await connection.login()
            XCTFail("login must refuse after a failed verification")
        } catch let error as IMAPError {
            guard case .invalidState = error else { return XCTFail("unexpected \(error)") }
        }
        await connection.close()

        // STARTTLS as well.
        let starttls = IMAPConnection(settings: settings(.starttls, caFile: .some(nil)))
        do {
            try await starttls.connect()
            XCTFail("a certificate from an unknown CA must be refused after STARTTLS")
        } catch let error as IMAPError {
            guard case .certificateNotTrusted = error else { return XCTFail("unexpected \(error)") }
        }
        await starttls.close()

        // Dovecot logs every disconnect before authentication; no login and no auth failure may appear.
        let log = try await waitForLog { $0.components(separatedBy: "no auth attempts").count - 1 >= 2 }
        XCTAssertFalse(log.contains("user=<\(servers.user)>"), "the user name never reached the server:\n\(log)")
        XCTAssertFalse(log.contains("auth failed"), log)
        XCTAssertFalse(log.contains("Login: "), log)
    }

    func testWrongServerNameIsRefused() async throws {
        let connection = IMAPConnection(settings: settings(.implicitTLS, serverName: "mail.example.org"))
        do {
            try await connection.connect()
            XCTFail("a certificate for another name must be refused")
        } catch let error as IMAPError {
            guard case .certificateNotTrusted(let text) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertTrue(text.contains("mail.example.org"), text)
            print("wrong name: \(error)")
        }
        await connection.close()
        let log = try await waitForLog { $0.contains("no auth attempts") }
        XCTAssertFalse(log.contains("user=<\(servers.user)>"), log)

        // The same server is accepted under a name its certificate carries.
        let good = IMAPConnection(settings: settings(.implicitTLS, serverName: "localhost"))
        try await good.connect()
        try await good.login()
        await good.close()
    }

    func testConnectionRefusedAndWrongPassword() async throws {
        // A port nothing listens on: the one below the test servers' block is not theirs.
        var refusedSettings = settings(.implicitTLS)
        refusedSettings.port = 1
        let refused = IMAPConnection(settings: refusedSettings)
        do {
            try await refused.connect()
            XCTFail("connect to a closed port must fail")
        } catch let error as IMAPError {
            XCTAssertEqual(error, .connectionFailed(host: servers.host, port: 1))
            XCTAssertTrue("\(error)".contains("cannot connect"), "\(error)")
        }
        await refused.close()

        let wrong = IMAPConnection(settings: settings(.starttls, password: "not-the-password"))
        try await wrong.connect()
        do {
            try await wrong.login()
            XCTFail("a wrong password must fail")
        } catch let error as IMAPError {
            guard case .loginFailed(let user, let text) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertEqual(user, servers.user)
            XCTAssertFalse(text.isEmpty, "\(error)")
            XCTAssertFalse("\(error)".contains("not-the-password"))
            print("wrong password: \(error)")
        }
        await wrong.close()
    }

    func testIdleWakesOnNewMailAndTimesOut() async throws {
        let connection = IMAPConnection(settings: settings(.implicitTLS))
        try await connection.connect()
        try await connection.login()
        _ = try await connection.select("INBOX")

        let start = ContinuousClock.now
        let quiet = try await connection.idle(timeout: .milliseconds(400))
        XCTAssertFalse(quiet, "nothing arrived")
        let waited = ContinuousClock.now - start
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(390))
        XCTAssertLessThan(waited, .seconds(2))

        // Deliver from another thread while this task waits in IDLE.
        let sent = Mutex<ContinuousClock.Instant?>(nil)
        let message = message(7)
        let conf = try XCTUnwrap(servers.environment["DOVECOT_CONF"])
        let user = servers.user
        let deliverer = Thread {
            Thread.sleep(forTimeInterval: 0.3)
            sent.withLock { $0 = ContinuousClock.now }
            _ = try? runTool("doveadm", ["-c", conf, "save", "-u", user, "-m", "INBOX"], stdin: Data(message))
        }
        deliverer.start()
        let idleStart = ContinuousClock.now
        let woke = try await connection.idle(timeout: .seconds(10))
        let wokeAt = ContinuousClock.now
        XCTAssertTrue(woke, "IDLE reports the new message")
        let sentAt = try XCTUnwrap(sent.withLock { $0 })
        let latency = wokeAt - sentAt
        print(String(format: "IDLE latency (doveadm save started → idle returned): %.1f ms", Double(latency.components.attoseconds) / 1e15 + Double(latency.components.seconds) * 1000))
        XCTAssertLessThan(latency, .seconds(2))
        XCTAssertLessThan(wokeAt - idleStart, .seconds(3))

        // DONE was sent: the session takes commands again.
        let uids = try await connection.uidSearchAll()
        XCTAssertEqual(uids, [1])
        let raw = try await connection.fetchRaw(1)
        XCTAssertEqual(raw, message)

        // close() ends a wait in IDLE at once.
        let waiter = Task { try await connection.idle(timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        let closeStart = ContinuousClock.now
        await connection.close()
        do {
            _ = try await waiter.value
            XCTFail("idle must end with an error when the connection closes")
        } catch let error as IMAPError {
            XCTAssertEqual(error, .closed)
        }
        XCTAssertLessThan(ContinuousClock.now - closeStart, .seconds(2))
    }

    func testIdleEndsOnTaskCancellation() async throws {
        let connection = IMAPConnection(settings: settings(.starttls))
        try await connection.connect()
        try await connection.login()
        _ = try await connection.select("INBOX")
        let waiter = Task { try await connection.idle(timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        let start = ContinuousClock.now
        waiter.cancel()
        do {
            _ = try await waiter.value
            XCTFail("a cancelled idle must throw")
        } catch is CancellationError {}
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(2))
        // The session is still usable after the interrupted IDLE.
        let uids = try await connection.uidSearchAll()
        XCTAssertEqual(uids, [])
        await connection.close()
    }

    private func waitForLog(_ condition: (String) -> Bool) async throws -> String {
        for _ in 0..<50 {
            let log = dovecotLog()
            if condition(log) { return log }
            try await Task.sleep(for: .milliseconds(100))
        }
        let log = dovecotLog()
        XCTFail("Dovecot log never showed the expected lines:\n\(log)")
        return log
    }
}
