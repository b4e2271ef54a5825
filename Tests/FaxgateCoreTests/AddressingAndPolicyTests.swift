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
        let r = addressing.recipients(of: mail(to: ["fax@example.test"], subject: "Fax an 030 1234567: Befund Müller"))
        XCTAssertEqual(r.recipients.map(\.e164), ["+49301234567"])
        XCTAssertEqual(r.subject, "Befund Müller")
        // "030 123" is a complete number already: "45 67" could be anything (a page count, a case number).
        let grouped = addressing.recipients(of: mail(to: ["fax@example.test"], subject: "Fax an 030 123 45 67: Befund Müller"))
        XCTAssertTrue(grouped.recipients.isEmpty)
        XCTAssertEqual(grouped.invalid, [.digitsAfterNumber(number: "030 123", following: "45 67")])
        let missing = addressing.recipients(of: mail(to: ["fax@example.test"], subject: "Befund Müller"))
        XCTAssertTrue(missing.recipients.isEmpty)
        XCTAssertEqual(missing.invalid.count, 1)
    }

    func testBadNumber_isReportedNotDialled() {
        let r = addressing.recipients(of: mail(to: ["hello@fax.example.test"]))
        XCTAssertTrue(r.recipients.isEmpty)
        XCTAssertEqual(r.invalid, [.number(.invalidCharacters("hello"))])
        XCTAssertEqual(r.invalid.first?.text("en"), "'hello' is not a telephone number")
        XCTAssertEqual(r.invalid.first?.text("de"), "„hello“ ist keine Telefonnummer")
    }

    func subject(_ text: String) -> FaxAddressing.Result {
        addressing.recipients(of: mail(to: ["fax@example.test"], subject: text))
    }

    /// The grammar, case by case: what is taken, what is refused and why. Each refused case was a wrong
    /// number before (the following digits were merged into it) or a number nobody wrote.
    func testSubjectGrammar_takesOnlyAnUnambiguousNumber() {
        let accepted: [(String, String, String)] = [
            ("Fax an 030 1234567: Befund", "+49301234567", "Befund"),
            ("fax to +49 30 1234567 - Report", "+49301234567", "Report"),
            ("Fax: 0301234567 – Befund", "+49301234567", "Befund"),
            ("FAX 030-1234567 Befund vom 23.11.2026", "+49301234567", "Befund vom 23.11.2026"),
            ("0301234567", "+49301234567", ""),
            ("Fax an 030/1234567:Befund", "+49301234567", "Befund"),
            ("030 1234567 #geheim Befund", "+49301234567", "#geheim Befund"),
            ("030 1234567 Mu\u{0308}ller", "+49301234567", "Mu\u{0308}ller"),
            ("0049 30 1234567: 3 Seiten", "+49301234567", "3 Seiten"),
        ]
        for (text, e164, rest) in accepted {
            let r = subject(text)
            XCTAssertEqual(r.recipients.map(\.e164), [e164], "\(text): \(r.invalid)")
            XCTAssertEqual(r.subject, rest, text)
        }
        let refused: [(String, FaxAddressing.Problem)] = [
            ("Fax an 030 1234567 3 Seiten", .digitsAfterNumber(number: "030 1234567", following: "3")),
            ("0301234567 2026 11 23 Befund", .digitsAfterNumber(number: "0301234567", following: "2026 11 23")),
            ("030 1234567 2026-11-23: Befund", .digitsAfterNumber(number: "030 1234567", following: "2026-11-23")),
            ("030 1234567 und 040 7654321: Befund", .severalNumbers),
            ("030 1234567, 040 7654321", .severalNumbers),
            ("030 1234567 / 040 7654321", .severalNumbers),
            ("0301234567Befund", .numberGluedToText("0301234567Befund")),
            ("030 1234567 3Seiten", .numberGluedToText("3Seiten")),
            ("Befund Müller", .subjectWithoutNumber),
            ("Faxnummer 0301234567", .subjectWithoutNumber),
            ("Fax an 030 1234567 * Befund", .unclearEnd("*")),
            ("Fax an 030 123\u{0663}4567: Befund", .subjectNotASCII(scalar: 0x0663)),
            ("Fax an 030 1234567\u{200B}: Befund", .subjectNotASCII(scalar: 0x200B)),
            ("Fax an 030\u{00A0}1234567: Befund", .subjectNotASCII(scalar: 0x00A0)),
            ("\u{202E}Fax an 030 1234567: Befund", .subjectNotASCII(scalar: 0x202E)),
            ("Fax an 030 1234567 \u{0663} Seiten", .subjectNotASCII(scalar: 0x0663)),
            ("Fax an 0\u{0301}30 1234567: Befund", .subjectNotASCII(scalar: 0x0301)),
            ("Fax an \u{FF10}\u{FF13}\u{FF10} 1234567: Befund", .subjectNotASCII(scalar: 0xFF10)),
        ]
        for (text, problem) in refused {
            let r = subject(text)
            XCTAssertTrue(r.recipients.isEmpty, "\(text) gave \(r.recipients)")
            XCTAssertEqual(r.invalid, [problem], text)
        }
        // The reply shows how to write it, in the sender's language.
        let problem = FaxAddressing.Problem.digitsAfterNumber(number: "030 1234567", following: "3")
        XCTAssertTrue(problem.text("de").contains("„Fax an 030 1234567: Befund“"), problem.text("de"))
        XCTAssertTrue(problem.text("en").contains("\"Fax to 030 1234567: Report\""), problem.text("en"))
        XCTAssertFalse(problem.text("de").contains("without"), "German is German throughout")
    }

    /// Unicode in the local part, in FAX= and in the CLI's numbers: refused on scalars, before any stripping.
    func testUnicodeInNumbers_isRefusedBeforeNormalisation() {
        let attacks: [(String, UInt32)] = [
            ("030123\u{0664}567@fax.example.test", 0x0664),          // Arabic-Indic digit four
            ("0301234\u{200B}567@fax.example.test", 0x200B),         // zero-width space
            ("0\u{0301}301234567@fax.example.test", 0x0301),          // combining acute on a digit
            ("\u{202E}7654321030@fax.example.test", 0x202E),          // right-to-left override
            ("FAX=+49\u{0966}301234567@fax.example.test", 0x0966),    // Devanagari zero
            ("FAX=+4930\u{2011}1234567@fax.example.test", 0x2011),    // non-breaking hyphen (stripped "-" before)
            ("0301234567+geh\u{00E9}im@fax.example.test", 0x00E9),    // the whole local part is ASCII or nothing
        ]
        for (address, scalar) in attacks {
            let r = addressing.recipients(of: mail(to: [address]))
            XCTAssertTrue(r.recipients.isEmpty, "\(address) gave \(r.recipients)")
            guard case .addressNotASCII(_, let found)? = r.invalid.first else { return XCTFail("\(address): \(r.invalid)") }
            XCTAssertEqual(found, scalar, address)
        }
        let plan = addressing.plan
        for written in ["030 123\u{0663}4567", "\u{1D7CE}301234567", "030\u{00A0}1234567", "030\u{2009}1234567", "\u{00A0}0301234567",
                        "030 1234567\u{FE0F}", "0301234567\u{2066}", "\u{FF10}301234567"] {
            XCTAssertThrowsError(try plan.e164(written), written) { error in
                guard case .notASCII(let shown, _)? = error as? NumberPlan.Failure else { return XCTFail("\(written): \(error)") }
                XCTAssertTrue(shown.unicodeScalars.allSatisfy { $0.isASCII }, "shown escaped: \(shown)")
            }
        }
        XCTAssertThrowsError(try plan.e164("030\t1234567")) { XCTAssertEqual($0 as? NumberPlan.Failure, .invalidCharacters("030<U+0009>1234567")) }
        XCTAssertEqual(try plan.e164(" 030 1234567 "), "+49301234567")
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

    /// Deny prefixes are E.164; the dial string is checked in this line's dial forms too.
    func testDialPolicy_deniesThePrefixInTheDialStringForm() throws {
        let direct = NumberPlan(LineConfig(countryCode: "49", areaCode: "30"))
        let pbx = NumberPlan(LineConfig(countryCode: "49", areaCode: "30", outsideLinePrefix: "0"))
        XCTAssertEqual(direct.dialPrefixes(forE164Prefix: "+49900"), ["0049900", "0900"])
        XCTAssertEqual(pbx.dialPrefixes(forE164Prefix: "+49900"), ["00049900", "00900"])
        XCTAssertEqual(pbx.dialPrefixes(forE164Prefix: "+881"), ["000881"])
        XCTAssertEqual(direct.dialPrefixes(forE164Prefix: "+4"), ["004", "0"], "shorter than the country code: every national call")
        for plan in [direct, pbx] {
            let policy = DialPolicy(config: DialPolicyConfig(), plan: plan)
            for digits in ["09001234567", "00499001234567"] {
                let dial = try XCTUnwrap(DialString(plan.line.outsideLinePrefix + digits))
                XCTAssertEqual(policy.check(dialString: dial), .blockedDialString(dialString: dial.digits, prefix: "+49900"), dial.digits)
            }
            XCTAssertNil(policy.check(dialString: try XCTUnwrap(DialString(plan.line.outsideLinePrefix + "0301234567"))))
            XCTAssertEqual(policy.checkDestination(e164: "+49301234567", allowInternational: nil),
                           .success(try XCTUnwrap(DialString(plan.line.outsideLinePrefix + "0301234567"))))
            XCTAssertEqual(policy.checkDestination(e164: "+499001234567", allowInternational: nil),
                           .failure(.blockedPrefix(number: "+499001234567", prefix: "+49900")))
            XCTAssertEqual(policy.checkDestination(e164: "+4930\u{0663}1234567", allowInternational: nil), .failure(.notDiallable("+4930\u{0663}1234567")))
        }
    }

    func testDialString_isASCIIDigitsOnly() throws {
        XCTAssertEqual(DialString("0301234567")?.digits, "0301234567")
        for bad in ["", "+49301234567", "030 1234567", "0\u{0301}301234567", "030\u{0663}", "\u{FF10}30", "030\u{200B}1", "03O1",
                    String(repeating: "1", count: 31)] {
            XCTAssertNil(DialString(bad), bad)
        }
        XCTAssertThrowsError(try JSONDecoder().decode(DialString.self, from: Data(#""03\u0663""#.utf8)))
        XCTAssertEqual(try JSONDecoder().decode(DialString.self, from: Data(#""0301""#.utf8)).digits, "0301")
    }

    func testLimitKey_isTheDomainWhenADomainEntryLetTheSenderIn() {
        XCTAssertEqual(DialRules.limitKey(sender: "Dr.X@Praxis.example", allowEntry: "@praxis.example"), "@praxis.example")
        XCTAssertEqual(DialRules.limitKey(sender: "Alice@Example.com", allowEntry: "alice@example.com"), "alice@example.com")
        XCTAssertEqual(DialRules.limitKey(sender: "alice@example.com", allowEntry: ""), "alice@example.com")
        XCTAssertEqual(DialRules.localLimitKey(uid: 1000), "local:1000")
    }
}

final class NumberCharacterTests: XCTestCase {
    /// Configured numbers (MSNs, prefixes) are checked with the same rule: a digit with a combining mark is no digit.
    func testConfiguredNumbers_withACombiningMark_areNoNumbers() {
        XCTAssertNotNil(NumberPattern("100"))
        XCTAssertNil(NumberPattern("10\u{0301}0"))
        XCTAssertNil(NumberPattern("\u{0661}00"))
    }
}
