import FaxgateCore
import XCTest

/// Caller and called numbers from type + digits, for every type under several line configurations.
final class PartyNumberFormatTests: XCTestCase {
    let berlin = PartyNumberFormat(line: LineConfig(countryCode: "49", areaCode: "30"))
    let germanyNoArea = PartyNumberFormat(line: LineConfig(countryCode: "49", areaCode: ""))
    let zurich = PartyNumberFormat(line: LineConfig(countryCode: "41", areaCode: "44"))
    let newYork = PartyNumberFormat(line: LineConfig(countryCode: "1", areaCode: "212", internationalPrefix: "011", nationalPrefix: "1"))

    func n(_ digits: String, _ type: PartyNumber.NumberType, _ presentation: PartyNumber.Presentation = .allowed) -> PartyNumber {
        PartyNumber(digits: digits, type: type, presentation: presentation)
    }

    /// (format, number, E.164, international form, national dial-back form, mail text)
    func table() -> [(PartyNumberFormat, PartyNumber, String?, String?, String?, String)] {
        [
            // National: the network leaves out the trunk prefix.
            (berlin, n("301234567", .national), "+49301234567", "+49 30 1234567", "030 1234567", "+49 30 1234567 / 030 1234567"),
            (berlin, n("891234567", .national), "+49891234567", "+49 891234567", "0891234567", "+49 891234567 / 0891234567"),
            (germanyNoArea, n("301234567", .national), "+49301234567", "+49 301234567", "0301234567", "+49 301234567 / 0301234567"),
            (zurich, n("441234567", .national), "+41441234567", "+41 44 1234567", "044 1234567", "+41 44 1234567 / 044 1234567"),
            (newYork, n("2125550123", .national), "+12125550123", "+1 212 5550123", "1212 5550123", "+1 212 5550123 / 1212 5550123"),
            // International: own country and abroad.
            (berlin, n("49301234567", .international), "+49301234567", "+49 30 1234567", "030 1234567", "+49 30 1234567 / 030 1234567"),
            (berlin, n("33123456789", .international), "+33123456789", "+33123456789", "0033123456789", "+33123456789 / 0033123456789"),
            (zurich, n("49301234567", .international), "+49301234567", "+49301234567", "0049301234567", "+49301234567 / 0049301234567"),
            (newYork, n("49301234567", .international), "+49301234567", "+49301234567", "01149301234567", "+49301234567 / 01149301234567"),
            // Subscriber: the line's area code goes in front; without one the number stays as received.
            (berlin, n("1234567", .subscriber), "+49301234567", "+49 30 1234567", "030 1234567", "+49 30 1234567 / 030 1234567"),
            (zurich, n("1234567", .subscriber), "+41441234567", "+41 44 1234567", "044 1234567", "+41 44 1234567 / 044 1234567"),
            (germanyNoArea, n("1234567", .subscriber), nil, nil, nil, "1234567"),
            // Unknown: exactly as received, whatever it looks like.
            (berlin, n("301234567", .unknown), nil, nil, nil, "301234567"),
            (berlin, n("+49301112223", .unknown), nil, nil, nil, "+49301112223"),
            (berlin, n("0301234567", .unknown), nil, nil, nil, "0301234567"),
            (newYork, n("5550123", .unknown), nil, nil, nil, "5550123"),
            // Digits that do not fit their type are not reinterpreted.
            (berlin, n("0301234567", .national), nil, nil, nil, "0301234567"),
            (berlin, n("0049301234567", .international), nil, nil, nil, "0049301234567"),
            (berlin, n("+49301234567", .international), nil, nil, nil, "+49301234567"),
            (berlin, n("12", .subscriber), nil, nil, nil, "12"),
            (berlin, n("1234567890123456", .international), nil, nil, nil, "1234567890123456"),
        ]
    }

    func testEveryTypeUnderEveryLine() {
        for (format, number, e164, international, national, text) in table() {
            let what = "\(number) on \(format.line.countryCode)/\(format.line.areaCode)"
            XCTAssertEqual(format.e164(number), e164, what)
            XCTAssertEqual(format.international(number), international, what)
            XCTAssertEqual(format.national(number), national, what)
            XCTAssertEqual(format.text(number, language: "en"), text, what)
            XCTAssertEqual(format.text(number, language: "de"), text, what)
            XCTAssertEqual(format.fileNamePart(number), e164 ?? number.digits.filter { $0.isNumber || $0 == "+" }, what)
        }
    }

    func testWithheldAndUnavailableNumbersAreNeverShown() {
        for format in [berlin, germanyNoArea, zurich, newYork] {
            for type in PartyNumber.NumberType.allCases {
                let withheld = n("301234567", type, .restricted)
                XCTAssertEqual(format.text(withheld, language: "de"), "unterdrückte Nummer")
                XCTAssertEqual(format.text(withheld, language: "en"), "withheld number")
                XCTAssertNil(format.e164(withheld))
                XCTAssertNil(format.national(withheld))
                XCTAssertEqual(format.fileNamePart(withheld), "")
                let unavailable = n("301234567", type, .unavailable)
                XCTAssertEqual(format.text(unavailable, language: "en"), "not available")
                XCTAssertEqual(format.text(unavailable, language: "de"), "nicht verfügbar")
                XCTAssertEqual(format.fileNamePart(unavailable), "")
            }
            XCTAssertEqual(format.text(nil, language: "de"), "unbekannt")
            XCTAssertEqual(format.text(n("", .national), language: "en"), "unknown")
        }
    }

    func testControlCharactersAreRemovedBeforeAnyoneSeesTheNumber() {
        let hostile = n("0301\r\nBcc: x@evil.example\u{202E}\u{0}567", .unknown)
        let text = berlin.text(hostile, language: "en")
        XCTAssertFalse(text.unicodeScalars.contains { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format })
        // Line breaks may become a space (PartyNumber's own cleaning) or vanish; either way they are gone.
        XCTAssertTrue(text.hasPrefix("0301") && text.hasSuffix("Bcc: x@evil.example567") && !text.contains("\n"), text)
        XCTAssertEqual(berlin.fileNamePart(hostile), "0301567")
        XCTAssertLessThanOrEqual(berlin.text(n(String(repeating: "9", count: 500), .unknown), language: "en").count, 40)
    }

    /// The mails render through the same format: a national-type caller is not its bare digits.
    func testMailsUseTheTypedNumbers() {
        var fax = ReceptionMail.Facts(callID: 1, callingNumber: "301234567", calledNumber: "1234100", extensionName: "Empfang",
                                      remoteStationID: nil, pages: 1, fine: true, bitRate: 14400, startedAt: Date(timeIntervalSince1970: 0),
                                      duration: 10, outcome: .complete, reasonText: nil, problems: [])
        fax.caller = n("301234567", .national)
        fax.called = n("1234100", .subscriber)
        let composer = ReceptionMail(language: .de, timeZone: TimeZone(identifier: "UTC")!, numbers: berlin)
        XCTAssertEqual(composer.subject(fax), "Fax von +49 30 1234567 / 030 1234567 an Empfang (1 Seite)")
        XCTAssertTrue(composer.body(fax).contains("+49 30 1234100 / 030 1234100 (Empfang)"), composer.body(fax))
        XCTAssertEqual(composer.attachmentStem(fax), "fax-19700101-000000-+49301234567")

        fax.caller = n("301234567", .national, .restricted)
        XCTAssertFalse(composer.subject(fax).contains("1234567"))
        XCTAssertFalse(composer.body(fax).contains("301234567"))
        XCTAssertEqual(composer.attachmentStem(fax), "fax-19700101-000000")

        var voice = VoicemailMail.Facts(callID: 2, callingNumber: "1234567", callingNumberRestricted: false, callerName: "Dr. Weiß",
                                        calledNumber: "100", extensionName: "Empfang", startedAt: Date(timeIntervalSince1970: 0),
                                        messageSeconds: 12, endText: "x", audioWithheld: false)
        voice.caller = n("1234567", .subscriber)
        let vm = VoicemailMail(language: .en, timeZone: TimeZone(identifier: "UTC")!, numbers: berlin)
        XCTAssertEqual(vm.subject(voice), "Voice message from Dr. Weiß (+49 30 1234567 / 030 1234567) to Empfang (0:12)")
        voice.caller = n("1234567", .subscriber, .restricted)
        XCTAssertEqual(vm.subject(voice), "Voice message from withheld number to Empfang (0:12)")
        XCTAssertEqual(vm.attachmentStem(voice), "voicemail-19700101-000000")
    }
}
