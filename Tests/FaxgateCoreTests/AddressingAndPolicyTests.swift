import FaxgateCore
import Foundation
import XCTest

final class NumberPlanTests: XCTestCase {
    let berlin = NumberPlan(LineConfig(countryCode: "49", areaCode: "30"))

    func testWrittenNumbers_becomeE164() throws {
        let cases: [(String, String)] = [
            ("030 123 45-67", "+49301234567"), ("+49 (30) 1234567", "+49301234567"), ("+49 (0)30 1234567", "+49301234567"),
            ("0049301234567", "+49301234567"), ("1234567", "+49301234567"), ("030/1234567", "+49301234567"),
            ("+1 (212) 555-1234", "+12125551234"), ("0041 44 123 45 67", "+41441234567"), ("0171.1234567", "+491711234567"),
        ]
        for (written, expected) in cases { XCTAssertEqual(try berlin.e164(written), expected, written) }
    }

    func testNonsense_isRefusedWithAReason() {
        XCTAssertThrowsError(try berlin.e164("call me")) { XCTAssertEqual($0 as? NumberPlan.Failure, .invalidCharacters("call me")) }
        XCTAssertThrowsError(try berlin.e164("12")) { XCTAssertEqual($0 as? NumberPlan.Failure, .tooShort("12")) }
        XCTAssertThrowsError(try berlin.e164("+49 1234567890123456")) { XCTAssertEqual($0 as? NumberPlan.Failure, .tooLong("+49 1234567890123456")) }
        XCTAssertThrowsError(try NumberPlan(LineConfig(countryCode: "49", areaCode: "")).e164("1234567"))
    }

    func testDialString_followsTheLinesPrefixRules() {
        XCTAssertEqual(berlin.dialString("+49301234567"), "0301234567")
        XCTAssertEqual(berlin.dialString("+12125551234"), "0012125551234")
        let pbx = NumberPlan(LineConfig(countryCode: "49", areaCode: "30", outsideLinePrefix: "0"))
        XCTAssertEqual(pbx.dialString("+49301234567"), "00301234567")
        XCTAssertTrue(berlin.isInternational("+41441234567"))
        XCTAssertFalse(berlin.isInternational("+49301234567"))
    }
}

final class FaxAddressingTests: XCTestCase {
    let addressing = FaxAddressing(faxDomains: ["fax.example.test"], subjectAddresses: ["fax@example.test"],
                                   plan: NumberPlan(LineConfig(countryCode: "49", areaCode: "30")))

    func mail(to: [String], cc: [String] = [], subject: String = "Befund") -> IncomingMail {
        IncomingMail(fromAddress: "alice@example.com", to: to, cc: cc, subject: subject)
    }

    func testNumberAtFaxDomain_andRFC3192_andSeveralRecipients() {
        let r = addressing.recipients(of: mail(to: ["0301234567@fax.example.test", "FAX=+41-44-123.45.67/T33S=12@FAX.example.test"],
                                               cc: ["bob@example.com", "0301234567@fax.example.test"]))
        XCTAssertEqual(r.recipients.map(\.e164), ["+49301234567", "+41441234567"], "duplicates collapse, other addresses ignored")
        XCTAssertEqual(r.recipients.map(\.dialString), ["0301234567", "0041441234567"])
        XCTAssertTrue(r.invalid.isEmpty)
    }

    func testSecretSuffix_isSeparatedFromTheNumber() {
        let r = addressing.recipients(of: mail(to: ["0301234567+s3cretKey@fax.example.test"]))
        XCTAssertEqual(r.recipients.map(\.e164), ["+49301234567"])
        XCTAssertEqual(r.secrets, ["s3cretKey"])
    }

    func testNumberInSubject_forTheGatewayAddress() {
        let r = addressing.recipients(of: mail(to: ["fax@example.test"], subject: "Fax an 030 123 45 67: Befund Müller"))
        XCTAssertEqual(r.recipients.map(\.e164), ["+49301234567"])
        XCTAssertEqual(r.subject, "Befund Müller")
        let missing = addressing.recipients(of: mail(to: ["fax@example.test"], subject: "Befund Müller"))
        XCTAssertTrue(missing.recipients.isEmpty)
        XCTAssertEqual(missing.invalid.count, 1)
    }

    func testBadNumber_isReportedNotDialled() {
        let r = addressing.recipients(of: mail(to: ["hello@fax.example.test"]))
        XCTAssertTrue(r.recipients.isEmpty)
        XCTAssertEqual(r.invalid, ["'hello' is not a telephone number"])
    }
}

final class SenderPolicyTests: XCTestCase {
    func extensions(require: String = "none", secret: String? = nil) throws -> [ExtensionConfig] {
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
              trusted_authserv_id: mx.example.test
        \(secret.map { "      secret: \($0)" } ?? "")
        outgoing:
          trusted_mta: {entry_hosts: [mx.example.test]}
        """
        let config = try ConfigLoader.parse(yaml)
        trustedMTA = config.outgoing.trustedMTA
        return config.extensions
    }
    var trustedMTA: TrustedMTAConfig?

    /// The verdicts as our MTA writes them: above its Received header.
    func mail(from: String, authResults: [String] = [], subject: String = "x") -> IncomingMail {
        IncomingMail(fromAddress: from, to: [], subject: subject,
                     headers: authResults.map { ("Authentication-Results", $0) }
                        + [("Received", "from c.example.org ([192.0.2.1]) by mx.example.test (Postfix) with ESMTP id 1; Tue, 1 Dec 2026 10:00:00 +0000")])
    }

    func testDefaultDeny_onlyListedAddressesAndDomains() throws {
        let policy = SenderPolicy(extensions: try extensions(), trustedMTA: trustedMTA)
        XCTAssertEqual(try policy.check(mail(from: "Alice@Example.com"), secrets: []).get().extensionName, "Front")
        XCTAssertNoThrow(try policy.check(mail(from: "dr.x@praxis.example"), secrets: []).get())
        XCTAssertEqual(policy.check(mail(from: "mallory@evil.example"), secrets: []), .failure(.notAllowed("mallory@evil.example")))
        XCTAssertEqual(policy.check(mail(from: "x@sub.praxis.example"), secrets: []), .failure(.notAllowed("x@sub.praxis.example")))
        XCTAssertEqual(policy.check(IncomingMail(fromAddress: nil, to: [], subject: ""), secrets: []), .failure(.noSender))
    }

    func testDKIMRequired_onlyTheTrustedMTAsVerdictCounts() throws {
        let policy = SenderPolicy(extensions: try extensions(require: "dkim"), trustedMTA: trustedMTA)
        let good = "mx.example.test; dkim=pass (2048-bit key) header.d=example.com header.s=sel; spf=none smtp.mailfrom=example.com"
        let forged = "attacker.example; dkim=pass header.d=example.com"
        let fail = "mx.example.test; dkim=fail header.d=example.com; spf=pass smtp.mailfrom=example.com"
        XCTAssertNoThrow(try policy.check(mail(from: "alice@example.com", authResults: [good]), secrets: []).get())
        XCTAssertEqual(policy.check(mail(from: "alice@example.com", authResults: [forged]), secrets: []),
                       .failure(.authenticationMissing(sender: "alice@example.com", required: "dkim")))
        XCTAssertEqual(policy.check(mail(from: "alice@example.com", authResults: [fail]), secrets: []),
                       .failure(.authenticationFailed(sender: "alice@example.com")))
        // A fail in the trusted verdict beats any pass, also for a policy that only asks for SPF.
        let spfPolicy = SenderPolicy(extensions: try extensions(require: "spf"), trustedMTA: trustedMTA)
        XCTAssertEqual(spfPolicy.check(mail(from: "alice@example.com", authResults: [fail]), secrets: []),
                       .failure(.authenticationFailed(sender: "alice@example.com")))
    }

    func testSecret_inAddressOrSubject() throws {
        let policy = SenderPolicy(extensions: try extensions(secret: "opensesame"), trustedMTA: trustedMTA)
        XCTAssertEqual(policy.check(mail(from: "alice@example.com"), secrets: []), .failure(.wrongSecret))
        XCTAssertNoThrow(try policy.check(mail(from: "alice@example.com"), secrets: ["opensesame"]).get())
        XCTAssertNoThrow(try policy.check(mail(from: "alice@example.com", subject: "Befund #opensesame"), secrets: []).get())
        XCTAssertEqual(SenderPolicy.strippingSecret("Befund #opensesame", secret: "opensesame"), "Befund")
    }

    func testDialPolicy_blocksPremiumAndInternationalAndLimits() {
        let policy = DialPolicy(config: DialPolicyConfig(), plan: NumberPlan(LineConfig(countryCode: "49", areaCode: "30")))
        XCTAssertEqual(policy.check(e164: "+499001234567", allowInternational: nil), .blockedPrefix(number: "+499001234567", prefix: "+49900"))
        XCTAssertEqual(policy.check(e164: "+41441234567", allowInternational: nil), .international("+41441234567"))
        XCTAssertNil(policy.check(e164: "+41441234567", allowInternational: true))
        XCTAssertNil(policy.check(e164: "+49301234567", allowInternational: nil))
        XCTAssertEqual(policy.checkLimits(jobsToday: 50, pagesToday: 0, newJobs: 1, newPages: 1), .jobLimit(limit: 50))
        XCTAssertEqual(policy.checkLimits(jobsToday: 1, pagesToday: 499, newJobs: 1, newPages: 2), .pageLimit(limit: 500, used: 499, wanted: 2))
        XCTAssertNil(policy.checkLimits(jobsToday: 1, pagesToday: 10, newJobs: 1, newPages: 2))
    }
}
