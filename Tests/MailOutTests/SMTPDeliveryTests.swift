import Foundation
import XCTest
import MailOut
import TestSupport

/// Submission against a real Postfix + Dovecot pair (contrib/testservers.sh), read back over IMAP.
final class SMTPDeliveryTests: XCTestCase {
    var servers: MailServers!

    override func setUpWithError() throws {
        servers = try MailServers.start()
    }

    override func tearDown() {
        // Always runs, also after a failed or throwing test, so no daemon outlives the test.
        servers?.stop()
        servers = nil
    }

    func settings(_ security: SMTPSettings.Security, port: Int, password: String? = nil, caFile: String?? = nil) -> SMTPSettings {
        SMTPSettings(
            host: "127.0.0.1", port: port, security: security, username: servers.user,
            password: password ?? servers.password, caFile: caFile ?? servers.caFile, heloName: "faxgate.test", timeoutSeconds: 10)
    }

    func message(to recipient: String, subject: String, attachment: [UInt8]) -> MailMessage {
        MailMessage(
            from: MailAddress(servers.user, displayName: "Faxgate"), to: [MailAddress(recipient, displayName: "Empfänger")],
            subject: subject, messageID: MailMessage.makeMessageID(domain: "faxgate.test"),
            extraHeaders: [("Message-Context", "fax-message")],
            textBody: "Ein Fax mit 1 Seite.\n",
            attachments: [MailAttachment(filename: "fax-Müller.tiff", contentType: "image/tiff; application=faxbw", data: attachment)])
    }

    func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255) } }

    func testSendViaSTARTTLSWithAuthAndFetchOverIMAPS() throws {
        let data = randomBytes(150_000)
        let subject = "Fax von +49 30 123456 – Grüße (STARTTLS)"
        let mail = message(to: "alice@example.test", subject: subject, attachment: data)
        try SMTPClient(settings: settings(.starttls, port: servers.smtpStartTLSPort))
            .send(envelopeFrom: servers.user, recipients: ["alice@example.test"], message: mail.render())
        let fetched = try servers.fetch(user: "alice@example.test", expect: 1, security: .tls)
        XCTAssertEqual(fetched.count, 1, servers.logTail())
        let parsed = try parseWithPython(try XCTUnwrap(fetched.first))
        XCTAssertEqual(parsed.subject, subject)
        XCTAssertEqual(parsed.headers["Message-ID"], mail.messageID)
        XCTAssertEqual(parsed.attachments.first?.filename, "fax-Müller.tiff")
        XCTAssertEqual(parsed.attachments.first?.bytes, data)
        // Postfix records the authenticated TLS submission in the Received header.
        let received = String(decoding: fetched[0], as: UTF8.self)
        XCTAssertTrue(received.contains("ESMTPSA"), "expected an authenticated TLS submission:\n\(received.prefix(800))")
    }

    func testSendViaImplicitTLSAndFetchOverIMAPStartTLS() throws {
        let data = randomBytes(4_321)
        let subject = "Fax über implizites TLS – Größe 4321"
        let mail = message(to: "bob@example.test", subject: subject, attachment: data)
        try SMTPClient(settings: settings(.implicitTLS, port: servers.smtpsPort))
            .send(envelopeFrom: servers.user, recipients: ["bob@example.test"], message: mail.render())
        let fetched = try servers.fetch(user: "bob@example.test", expect: 1, security: .starttls)
        let parsed = try parseWithPython(try XCTUnwrap(fetched.first))
        XCTAssertEqual(parsed.subject, subject)
        XCTAssertEqual(parsed.attachments.first?.bytes, data)
        XCTAssertTrue(String(decoding: fetched[0], as: UTF8.self).contains("ESMTPSA"))
    }

    func testNullSenderOverPlainPortForAutomaticReplies() throws {
        var mail = message(to: "fax@example.test", subject: "Zustellbericht", attachment: [1, 2, 3])
        mail.extraHeaders.append(("Auto-Submitted", "auto-replied"))
        let plain = SMTPSettings(host: "127.0.0.1", port: servers.smtpPlainPort, security: .none, timeoutSeconds: 10)
        try SMTPClient(settings: plain).send(envelopeFrom: "", recipients: ["fax@example.test"], message: mail.render())
        let fetched = try servers.fetch(user: "fax@example.test", expect: 1)
        let parsed = try parseWithPython(try XCTUnwrap(fetched.first))
        XCTAssertEqual(parsed.headers["Return-Path"], "<>")
        XCTAssertEqual(parsed.headers["Auto-Submitted"], "auto-replied")
    }

    func testMissingCAFileIsPermanentCertificateError() throws {
        let client = SMTPClient(settings: settings(.starttls, port: servers.smtpStartTLSPort, caFile: .some(nil)))
        XCTAssertThrowsError(try client.send(envelopeFrom: servers.user, recipients: ["alice@example.test"], message: Array("Subject: x\r\n\r\nx\r\n".utf8))) { error in
            let smtpError = error as! SMTPError
            XCTAssertFalse(smtpError.isTransient, smtpError.description)
            XCTAssertEqual(smtpError.curlCode, 60, smtpError.description)  // CURLE_PEER_FAILED_VERIFICATION
            XCTAssertTrue(smtpError.description.contains("TLS certificate not trusted"), smtpError.description)
        }
        // Implicit TLS fails the same way.
        let tls = SMTPClient(settings: settings(.implicitTLS, port: servers.smtpsPort, caFile: .some(nil)))
        XCTAssertThrowsError(try tls.send(envelopeFrom: servers.user, recipients: ["alice@example.test"], message: Array("x\r\n".utf8))) { error in
            XCTAssertTrue((error as! SMTPError).description.contains("certificate"))
        }
    }

    func testWrongPasswordIsPermanent() throws {
        let client = SMTPClient(settings: settings(.starttls, port: servers.smtpStartTLSPort, password: "wrong-password"))
        XCTAssertThrowsError(try client.send(envelopeFrom: servers.user, recipients: ["alice@example.test"], message: Array("x\r\n".utf8))) { error in
            let smtpError = error as! SMTPError
            XCTAssertFalse(smtpError.isTransient, smtpError.description)
            XCTAssertEqual(smtpError.smtpResponseCode, 535, smtpError.description)
            XCTAssertTrue(smtpError.description.contains("authentication failed"), smtpError.description)
            XCTAssertTrue(smtpError.description.contains("535"), "server reply included: \(smtpError.description)")
            XCTAssertFalse(smtpError.description.contains("wrong-password"))
        }
    }

    func testServerRefusalWithout5xxTLSIsPermanent() throws {
        // The submission port demands STARTTLS; sending in clear text must be refused with a 5xx and not retried.
        var plain = settings(.none, port: servers.smtpStartTLSPort)
        plain.username = nil
        XCTAssertThrowsError(try SMTPClient(settings: plain).send(envelopeFrom: servers.user, recipients: ["alice@example.test"], message: Array("x\r\n".utf8))) { error in
            let smtpError = error as! SMTPError
            XCTAssertFalse(smtpError.isTransient, smtpError.description)
            XCTAssertEqual(smtpError.smtpResponseCode.map { $0 / 100 }, 5, smtpError.description)
        }
    }
}

/// Failures that need no server at all.
final class SMTPConnectionFailureTests: XCTestCase {
    func testClosedPortIsTransient() throws {
        // Find a port nobody listens on: bind, read the port, close.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(fd, 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = bind(fd, $0, length); _ = getsockname(fd, $0, &length) }
        }
        let port = Int(UInt16(bigEndian: address.sin_port))
        close(fd)
        XCTAssertGreaterThan(port, 0)

        let client = SMTPClient(settings: SMTPSettings(host: "127.0.0.1", port: port, security: .starttls, timeoutSeconds: 5))
        XCTAssertThrowsError(try client.send(envelopeFrom: "fax@example.test", recipients: ["a@example.test"], message: Array("x\r\n".utf8))) { error in
            let smtpError = error as! SMTPError
            XCTAssertTrue(smtpError.isTransient, smtpError.description)
            XCTAssertEqual(smtpError.curlCode, 7, smtpError.description)  // CURLE_COULDNT_CONNECT
            XCTAssertNil(smtpError.smtpResponseCode)
        }
    }

    func testInvalidEnvelopeIsRejectedBeforeConnecting() {
        let client = SMTPClient(settings: SMTPSettings(host: "127.0.0.1", port: 1, security: .none, timeoutSeconds: 1))
        XCTAssertThrowsError(try client.send(envelopeFrom: "a@example.test\r\nRCPT TO:<x@y>", recipients: ["b@example.test"], message: [])) { error in
            XCTAssertFalse((error as! SMTPError).isTransient)
            XCTAssertEqual((error as! SMTPError).curlCode, 0)
        }
        XCTAssertThrowsError(try client.send(envelopeFrom: "", recipients: [], message: []))
    }
}
