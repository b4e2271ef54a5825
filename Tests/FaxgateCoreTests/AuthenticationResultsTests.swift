import FaxgateCore
import Foundation
import XCTest

/// RFC 8601 parsing and the trust boundary: only the trusted MTA's verdict above its own Received line counts.
final class AuthenticationResultsParserTests: XCTestCase {
    func parse(_ s: String) throws -> AuthenticationResultsHeader { try XCTUnwrap(AuthenticationResultsHeader.parse(s)) }

    func testRFC8601Examples() throws {
        let h = try parse("""
            example.com 1; dkim/1=pass (good signature) header.d=example.net header.b=ab+c/d=;
             spf=pass smtp.mailfrom=sender@example.net; iprev=pass policy.iprev=192.0.2.200; auth=pass (cram-md5) smtp.auth=sender@example.net
            """)
        XCTAssertEqual(h.authservID, "example.com")
        XCTAssertEqual(h.version, "1")
        XCTAssertFalse(h.malformed)
        XCTAssertEqual(h.results.map(\.method), ["dkim", "spf", "iprev", "auth"])
        XCTAssertEqual(h.results[0].methodVersion, "1")
        XCTAssertEqual(h.results[0].value("header", "d"), "example.net")
        XCTAssertEqual(h.results[0].value("header", "b"), "ab+c/d=")
        XCTAssertEqual(h.results[1].value("smtp", "mailfrom"), "sender@example.net")

        let none = try parse("example.org 1; none")
        XCTAssertTrue(none.results.isEmpty)
        XCTAssertFalse(none.malformed)

        let reason = try parse(#"mx.example.org; spf=fail reason="mail from \"x\"; rejected" smtp.mailfrom=example.com"#)
        XCTAssertEqual(reason.results.count, 1)
        XCTAssertEqual(reason.results[0].reason, #"mail from "x"; rejected"#)
        XCTAssertEqual(reason.results[0].value("smtp", "mailfrom"), "example.com")
    }

    func testQuotedSemicolon_neverProducesAResult() throws {
        let h = try parse(#"mx.example.test; dkim=fail header.d="x; spf=pass smtp.mailfrom=example.com""#)
        XCTAssertEqual(h.results.count, 1)
        XCTAssertEqual(h.results[0].method, "dkim")
        XCTAssertEqual(h.results[0].value("header", "d"), "x; spf=pass smtp.mailfrom=example.com")
        // An escaped quote does not end the string.
        let escaped = try parse(#"mx.example.test; dkim=fail header.d="a\"; spf=pass smtp.mailfrom=example.com""#)
        XCTAssertEqual(escaped.results.map(\.method), ["dkim"])
    }

    func testComments_nestedAndEscaped_areIgnored() throws {
        let h = try parse(#"mx.example.test (a (nested; dkim=pass header.d=example.com) \) ; spf=pass) ; dkim=fail header.d=example.com"#)
        XCTAssertEqual(h.results.map(\.method), ["dkim"])
        XCTAssertEqual(h.results[0].result, "fail")
        // The authserv-id may be followed by a comment; a comment can hide the id only if it is the id.
        XCTAssertEqual(try parse("(mx.example.test) evil.example; dkim=pass header.d=example.com").authservID, "evil.example")
    }

    func testMalformed_yieldsNoResults_butKeepsTheAuthservID() throws {
        for bad in ["mx.example.test; dkim=pass (unterminated", #"mx.example.test; dkim=pass header.d="open"#,
                    "mx.example.test; dkim", "mx.example.test; =pass", "mx.example.test; none; dkim=pass header.d=example.com",
                    "mx.example.test dkim=pass header.d=example.com"] {
            let h = try parse(bad)
            XCTAssertEqual(h.authservID, "mx.example.test", bad)
            XCTAssertTrue(h.malformed, bad)
            XCTAssertTrue(h.results.isEmpty, bad)
        }
        XCTAssertNil(AuthenticationResultsHeader.parse("   "))
        XCTAssertNil(AuthenticationResultsHeader.parse("(only a comment)"))
    }

    func testQuotedAuthservID_andQuotedLocalPart() throws {
        let h = try parse(#""mx.example.test"; spf=pass smtp.mailfrom="john doe"@example.com"#)
        XCTAssertEqual(h.authservID, "mx.example.test")
        XCTAssertEqual(h.results[0].value("smtp", "mailfrom"), "john doe@example.com")
    }
}

final class AuthenticationVerdictTests: XCTestCase {
    let mta = TrustedMTA(authservID: "mx.example.test", entryHosts: ["mx.example.test"], internalHosts: ["store.example.test"])
    let lmtp = ("Received", "from mx.example.test ([127.0.0.1]) by store.example.test with LMTP id abc (envelope-from <a@example.com>); Tue, 1 Dec 2026 10:00:00 +0000")
    let entry = ("Received", "from client.example.org (client.example.org [192.0.2.1]) by mx.example.test (Postfix) with ESMTP id 4AB12 for <fax@example.test>; Tue, 1 Dec 2026 10:00:00 +0000")

    func ar(_ v: String) -> (String, String) { ("Authentication-Results", v) }
    func verdict(_ headers: [(String, String)]) -> AuthenticationVerdict {
        AuthenticationVerdict(headers: headers.map { (name: $0.0, value: $0.1) }, mta: mta)
    }

    func testVerdictAboveTheLine_counts_withTheStoresReceivedOnTop() {
        let v = verdict([lmtp, ar("mx.example.test; spf=pass smtp.mailfrom=example.com"), entry, ("From", "a@example.com")])
        XCTAssertTrue(v.hasTrustedVerdict)
        XCTAssertTrue(v.passes("spf", alignedWith: "example.com"))
        XCTAssertFalse(v.passes("dkim", alignedWith: "example.com"))
        XCTAssertFalse(v.unstrippedBelowLine)
    }

    func testForgedHeaderBelowARealVerdict_isAStripFailure() {
        let v = verdict([lmtp, ar("mx.example.test; spf=fail smtp.mailfrom=example.com"), entry,
                         ar("mx.example.test; dkim=pass header.d=example.com")])
        XCTAssertTrue(v.unstrippedBelowLine)
        XCTAssertFalse(v.hasTrustedVerdict)
        XCTAssertFalse(v.passes("dkim", alignedWith: "example.com"))
    }

    func testSenderWrittenHeader_whenTheMTAWritesNone() {
        let v = verdict([lmtp, entry, ar("mx.example.test; dkim=pass header.d=example.com; spf=pass smtp.mailfrom=example.com")])
        XCTAssertTrue(v.unstrippedBelowLine)
        XCTAssertFalse(v.passes("dkim", alignedWith: "example.com"))
        XCTAssertFalse(v.passes("spf", alignedWith: "example.com"))
    }

    func testOtherAuthservIDs_areIgnoredAnywhere() {
        let v = verdict([lmtp, ar("evil.example; dkim=pass header.d=example.com"), entry, ar("evil.example; spf=pass smtp.mailfrom=example.com")])
        XCTAssertFalse(v.hasTrustedVerdict)
        XCTAssertFalse(v.unstrippedBelowLine)
        XCTAssertFalse(v.passes("dkim", alignedWith: "example.com"))
    }

    func testNoEntryReceived_meansNoVerdict() {
        // Delivered without our MTA (or the entry host is misconfigured): nothing is above a line we cannot find.
        let v = verdict([ar("mx.example.test; dkim=pass header.d=example.com"), ("From", "a@example.com")])
        XCTAssertEqual(v.boundary, .missing)
        XCTAssertFalse(v.passes("dkim", alignedWith: "example.com"))
    }

    func testUnknownHopAboveTheEntry_breaksTheChain_evenWithAForgedEntryBelow() {
        // The real entry is by a host not configured; the sender forged a "by mx.example.test" Received below it.
        let realButUnknown = ("Received", "from x (x [192.0.2.1]) by mx2.example.test (Postfix) with ESMTP id 1; Tue, 1 Dec 2026 10:00:00 +0000")
        let v = verdict([lmtp, ar("mx2.example.test; none"), realButUnknown, ar("mx.example.test; dkim=pass header.d=example.com"), entry])
        XCTAssertEqual(v.boundary, .brokenChain("mx2.example.test"))
        XCTAssertFalse(v.passes("dkim", alignedWith: "example.com"))
    }

    func testHELONamedBy_doesNotFoolTheReceivedParser() {
        let tricky = ("Received", "from by (by [192.0.2.1]) by mx.example.test (Postfix) with ESMTP id 2; Tue, 1 Dec 2026 10:00:00 +0000")
        let v = verdict([lmtp, ar("mx.example.test; spf=pass smtp.mailfrom=example.com"), tricky])
        XCTAssertEqual(v.boundary, .found(2))
        XCTAssertTrue(v.passes("spf", alignedWith: "example.com"))
    }

    func testSmuggledResults_inValuesAndComments_neverPass() {
        for smuggle in [#"mx.example.test; dkim=fail header.d="x; dkim=pass header.d=example.com""#,
                        "mx.example.test; dkim=neutral (dkim=pass header.d=example.com) header.d=example.com",
                        "mx.example.test; spf=none (; spf=pass smtp.mailfrom=example.com) smtp.mailfrom=example.com"] {
            let v = verdict([lmtp, ar(smuggle), entry])
            XCTAssertFalse(v.passes("dkim", alignedWith: "example.com"), smuggle)
            XCTAssertFalse(v.passes("spf", alignedWith: "example.com"), smuggle)
        }
    }

    func testFailBeatsPass_andOnlyPassIsPass() {
        let v = verdict([lmtp, ar("mx.example.test; dkim=pass header.d=example.com; spf=softfail smtp.mailfrom=example.com"), entry])
        XCTAssertTrue(v.hasFailure)
        for result in ["temperror", "permerror", "neutral", "none", "policy"] {
            let w = verdict([lmtp, ar("mx.example.test; spf=\(result) smtp.mailfrom=example.com"), entry])
            XCTAssertFalse(w.passes("spf", alignedWith: "example.com"), result)
        }
    }

    func testMultipleTrustedHeadersAboveTheLine_combine() {
        let v = verdict([lmtp, ar("mx.example.test; dkim=pass header.d=example.com"), ar("mx.example.test; spf=fail smtp.mailfrom=example.com"), entry])
        XCTAssertTrue(v.passes("dkim", alignedWith: "example.com"))
        XCTAssertTrue(v.hasFailure, "the second trusted header's fail is not lost")
    }

    func testAlignment_oneDirectionOnly() {
        XCTAssertTrue(AuthenticationVerdict.aligned("example.com", with: "example.com"))
        XCTAssertTrue(AuthenticationVerdict.aligned("example.com", with: "praxis.example.com"), "parent vouches for its subdomain (relaxed)")
        XCTAssertFalse(AuthenticationVerdict.aligned("evil.example.com", with: "example.com"), "a subdomain's pass says nothing about the parent")
        XCTAssertFalse(AuthenticationVerdict.aligned("com", with: "example.com"), "never a bare top-level domain")
        XCTAssertFalse(AuthenticationVerdict.aligned("notexample.com", with: "example.com"))
        XCTAssertFalse(AuthenticationVerdict.aligned(nil, with: "example.com"))
        let v = verdict([lmtp, ar("mx.example.test; dkim=pass header.d=evil.example.com; spf=pass smtp.mailfrom=bounce@other.example"), entry])
        XCTAssertFalse(v.passes("dkim", alignedWith: "example.com"))
        XCTAssertFalse(v.passes("spf", alignedWith: "example.com"))
    }
}

final class SenderCheckTests: XCTestCase {
    func policy(require: String = "dkim_or_spf", secret: String? = nil) throws -> SenderPolicy {
        let yaml = """
        spool_directory: /tmp/x
        smtp: {host: mail.example.test, port: 587}
        mail: {from: fax@example.test}
        extensions:
          - name: Front
            numbers: ["100"]
            email: [front@example.test]
            senders:
              allow: [alice@example.com, "@praxis.example"]
              require_authentication: \(require)
        \(secret.map { "      secret: \($0)" } ?? "")
        outgoing:
          trusted_mta: {authserv_id: mx.example.test, entry_hosts: [mx.example.test], internal_hosts: [store.example.test]}
        """
        let config = try ConfigLoader.parse(yaml)
        return SenderPolicy(extensions: config.extensions, trustedMTA: config.outgoing.trustedMTA)
    }

    func mail(from: String, above: [String] = [], below: [String] = [], subject: String = "x") -> IncomingMail {
        let entry = (name: "Received", value: "from c.example.org (c.example.org [192.0.2.1]) by mx.example.test (Postfix) with ESMTP id 1; Tue, 1 Dec 2026 10:00:00 +0000")
        let headers = [(name: "Received", value: "from mx.example.test by store.example.test with LMTP id 2; Tue, 1 Dec 2026 10:00:01 +0000")]
            + above.map { (name: "Authentication-Results", value: $0) } + [entry] + below.map { (name: "Authentication-Results", value: $0) }
            + [(name: "From", value: from)]
        return IncomingMail(fromAddress: from, to: [], subject: subject, headers: headers)
    }

    func testDefaultIsAuthenticationRequired() throws {
        let yaml = """
        spool_directory: /tmp/x
        smtp: {host: mail.example.test, port: 587}
        mail: {from: fax@example.test}
        extensions: [{name: Front, numbers: ["100"], email: [front@example.test]}]
        """
        XCTAssertEqual(try ConfigLoader.parse(yaml).extensions[0].senders.requireAuthentication, "dkim_or_spf")
    }

    func testProvenAllowedSender_isGranted_withTheMatchingEntry() throws {
        let c = try policy().evaluate(mail(from: "dr.x@praxis.example", above: ["mx.example.test; dkim=pass header.d=praxis.example"]), secrets: [])
        XCTAssertEqual(try c.outcome.get().allowEntry, "@praxis.example")
        XCTAssertTrue(c.mayReply)
        XCTAssertTrue(c.proven)
    }

    func testNoVerdict_isRefused_andNotAnswered() throws {
        let c = try policy().evaluate(mail(from: "alice@example.com"), secrets: [])
        XCTAssertEqual(c.outcome, .failure(.authenticationMissing(sender: "alice@example.com", required: "dkim_or_spf")))
        XCTAssertFalse(c.mayReply, "an unproven From address is never answered")
    }

    func testForgedBelowTheLine_isRefused_andTheAdminIsAlerted() throws {
        let c = try policy().evaluate(mail(from: "alice@example.com", below: ["mx.example.test; dkim=pass header.d=example.com"]), secrets: [])
        XCTAssertEqual(c.outcome, .failure(.unstrippedVerdict(sender: "alice@example.com")))
        XCTAssertFalse(c.mayReply)
        XCTAssertTrue(c.alertAdmin)
    }

    func testFailBeatsPass() throws {
        let c = try policy().evaluate(mail(from: "alice@example.com",
                                           above: ["mx.example.test; dkim=pass header.d=example.com; spf=fail smtp.mailfrom=example.com"]), secrets: [])
        XCTAssertEqual(c.outcome, .failure(.authenticationFailed(sender: "alice@example.com")))
        XCTAssertFalse(c.mayReply)
    }

    func testUnalignedPass_isNoPass() throws {
        let c = try policy().evaluate(mail(from: "alice@example.com", above: ["mx.example.test; dkim=pass header.d=evil.example.com"]), secrets: [])
        XCTAssertEqual(c.outcome, .failure(.authenticationMissing(sender: "alice@example.com", required: "dkim_or_spf")))
    }

    func testProvenStranger_mayBeToldWhy_unprovenStrangerNot() throws {
        let proven = try policy().evaluate(mail(from: "bob@other.example", above: ["mx.example.test; spf=pass smtp.mailfrom=bob@other.example"]), secrets: [])
        XCTAssertEqual(proven.outcome, .failure(.notAllowed("bob@other.example")))
        XCTAssertTrue(proven.mayReply)
        let stranger = try policy().evaluate(mail(from: "bob@other.example"), secrets: [])
        XCTAssertFalse(stranger.mayReply)
    }

    func testNone_allowedSenderIsAnswered_strangerIsNot() throws {
        let p = try policy(require: "none")
        XCTAssertTrue(p.evaluate(mail(from: "alice@example.com"), secrets: []).mayReply)
        XCTAssertNoThrow(try p.check(mail(from: "alice@example.com"), secrets: []).get())
        XCTAssertFalse(p.evaluate(mail(from: "mallory@evil.example"), secrets: []).mayReply)
    }

    func testAMisconfiguredLine_isNamedForTheAdmin() throws {
        let noEntry = IncomingMail(fromAddress: "alice@example.com", to: [], subject: "x",
                                   headers: [("Authentication-Results", "mx.example.test; dkim=pass header.d=example.com")])
        let c = try policy().evaluate(noEntry, secrets: [])
        XCTAssertFalse(c.proven)
        XCTAssertTrue(c.boundaryProblem?.contains("no Received header by an entry host") == true, c.boundaryProblem ?? "nil")
        var unknownHop = mail(from: "alice@example.com", above: ["mx.example.test; dkim=pass header.d=example.com"])
        unknownHop.headers.insert((name: "Received", value: "from store.example.test by imap.example.test with LMTP id 3; Tue, 1 Dec 2026 10:00:02 +0000"), at: 0)
        let d = try policy().evaluate(unknownHop, secrets: [])
        XCTAssertFalse(d.proven, "a hop nobody named breaks the chain")
        XCTAssertTrue(d.boundaryProblem?.contains("imap.example.test") == true, d.boundaryProblem ?? "nil")
        XCTAssertNil(try policy().evaluate(mail(from: "alice@example.com"), secrets: []).boundaryProblem)
    }

    func testWrongSecret_ofAnAuthenticatedAllowedSender_isAnswered() throws {
        let c = try policy(secret: "opensesame").evaluate(mail(from: "alice@example.com", above: ["mx.example.test; dkim=pass header.d=example.com"]), secrets: [])
        XCTAssertEqual(c.outcome, .failure(.wrongSecret))
        XCTAssertTrue(c.mayReply)
    }

    /// With `none` plus a secret, the secret is the only authentication: anyone can write the allowed From, so a
    /// wrong secret from an unproven address gets no reply (it would go to the forged address).
    func testWrongSecret_ofAnUnprovenAllowedSender_isNotAnswered() throws {
        let c = try policy(require: "none", secret: "opensesame").evaluate(mail(from: "alice@example.com"), secrets: ["guess"])
        XCTAssertEqual(c.outcome, .failure(.wrongSecret))
        XCTAssertFalse(c.mayReply)
        let right = try policy(require: "none", secret: "opensesame").evaluate(mail(from: "alice@example.com"), secrets: ["opensesame"])
        XCTAssertEqual(right.outcome.map(\.extensionName), .success("Front"))
    }
}

final class SenderConfigCheckTests: XCTestCase {
    func config(_ senders: String, outgoing: String = "", admin: String = "") -> String {
        """
        spool_directory: /tmp/x
        smtp: {host: mail.example.test, port: 587}
        mail: {from: fax@example.test\(admin)}
        extensions:
          - name: Front
            numbers: ["100"]
            email: [front@example.test]
            senders: {\(senders)}
        \(outgoing)
        """
    }

    func errors(_ yaml: String) -> [String] {
        do { _ = try ConfigLoader.parse(yaml); return [] } catch { return error.issues.map(\.description) }
    }

    func testPublicDomainWithoutAuthenticationOrSecret_isAnError() {
        for entry in ["\"@gmail.com\"", "someone@gmx.de", "\"@T-Online.de\""] {
            let e = errors(config("allow: [\(entry)], require_authentication: none"))
            XCTAssertTrue(e.contains { $0.contains("public mail domain") }, "\(entry): \(e)")
        }
        XCTAssertEqual(errors(config("allow: [\"@gmail.com\"], require_authentication: none, secret: longsecret1")), [])
        XCTAssertEqual(errors(config("allow: [\"@praxis.example\"], require_authentication: none")), [])
    }

    func testAuthenticationRequired_withoutTrustedMTA_isAnError() {
        let e = errors(config("allow: [alice@example.com]"))
        XCTAssertTrue(e.contains { $0.contains("authserv-id") }, "\(e)")
        XCTAssertTrue(e.contains { $0.contains("entry_hosts") }, "\(e)")
        // The old per-extension id alone names the MTA but not its line.
        let old = errors(config("allow: [alice@example.com], trusted_authserv_id: mx.example.test"))
        XCTAssertEqual(old.count, 1, "\(old)")
        XCTAssertTrue(old[0].contains("entry_hosts"))
        XCTAssertEqual(errors(config("allow: [alice@example.com], trusted_authserv_id: mx.example.test",
                                     outgoing: "outgoing: {trusted_mta: {entry_hosts: [mx.example.test]}}")), [])
    }

    func testNone_isLoudlyWarned() throws {
        let dir = try TemporaryDirectoryForConfig()
        let path = dir + "/c.yaml"
        try config("allow: [alice@example.com], require_authentication: none", admin: ", admin_address: admin@example.test")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let c = try ConfigLoader.load(path: path)
        let warnings = ConfigLoader.warnings(c, file: path)
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        XCTAssertTrue(warnings[0].message.hasPrefix("WARNING: require_authentication is none"))
        XCTAssertNotNil(warnings[0].line)
    }

    func TemporaryDirectoryForConfig() throws -> String {
        let dir = NSTemporaryDirectory() + "faxgate-cfg-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) }
        return dir
    }
}
