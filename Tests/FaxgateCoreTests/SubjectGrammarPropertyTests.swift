import FaxgateCore
import Foundation
import XCTest

/// SplitMix64: a small seeded generator, so a failing case can be replayed from the seed in the message.
struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func digits(_ count: Int, firstNonZero: Bool = false) -> String {
        (0..<count).map { i in String(Int.random(in: (i == 0 && firstNonZero ? 1 : 0)...9, using: &self)) }.joined()
    }
    mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &self)] }
}

/// Property tests of the Subject grammar and the number normaliser: thousands of generated Subjects made of a
/// written number and following text, with the seed in every failure message.
final class SubjectGrammarPropertyTests: XCTestCase {
    let plan = NumberPlan(LineConfig(countryCode: "49", areaCode: "30"))
    let iterations = 6000

    /// A written number in one of the notations people use, with whether a proper prefix of its space-separated
    /// groups can never be a number by itself (then the grammar must accept it when a delimiter follows).
    func number(_ r: inout SeededRandom) -> (written: String, unambiguous: Bool) {
        let area = r.digits(Int.random(in: 2...5, using: &r), firstNonZero: true)
        let subscriber = r.digits(Int.random(in: 3...8, using: &r), firstNonZero: true)
        let shortArea = area.count <= 4
        switch Int.random(in: 0..<11, using: &r) {
        case 0: return ("0\(area)\(subscriber)", true)
        case 1: return ("0\(area) \(subscriber)", shortArea)
        case 2: return ("0\(area)-\(subscriber)", true)
        case 3: return ("0\(area)/\(subscriber)", true)
        case 4: return ("(0\(area)) \(subscriber)", shortArea)
        case 5: return ("+49 \(area) \(subscriber)", false)
        case 6: return ("+49\(area)\(subscriber)", true)
        case 7: return ("0049 \(area) \(subscriber)", false)
        case 8: return ("+49 (0)\(area) \(subscriber)", false)
        case 9: return ("0\(area) \(subscriber.prefix(2))-\(subscriber.dropFirst(2))", false)
        default: return ("\(subscriber)\(r.digits(2))", true)  // local number, area code of the line
        }
    }

    static let words = ["Befund", "Seiten", "Müller", "Mu\u{0308}ller", "Rechnung", "#geheim", "„Befund“", "[Extern]", "Az.", "vom", "Re"]
    static let digitTokens = ["3", "2026", "11", "23", "12345", "2026-11-23", "23.11.2026", "(3", "1/2", "0", "+1", "4711"]
    static let unicodeTokens = ["\u{0663}", "\u{FF13}", "\u{0969}", "\u{1D7D1}", "\u{2462}", "Ⅲ"]

    func following(_ r: inout SeededRandom) -> [String] {
        (0..<Int.random(in: 0...5, using: &r)).map { _ in
            switch Int.random(in: 0..<10, using: &r) {
            case 0..<5: return r.pick(Self.words)
            case 5..<9: return r.pick(Self.digitTokens)
            default: return r.pick(Self.unicodeTokens)
            }
        }
    }

    static let prefixes = ["", "Fax an ", "Fax to ", "Fax: ", "fax ", "FAX AN ", "Fax an: ", "  Fax to  "]

    func digits(_ s: String) -> String { String(s.unicodeScalars.filter { (0x30...0x39).contains($0.value) }.map(Character.init)) }

    func testSubjects_neverYieldANumberOtherThanTheOneWritten() throws {
        var accepted = 0, mustAccept = 0
        for seed in 1...UInt64(iterations) {
            var r = SeededRandom(seed: seed)
            let (number, unambiguous) = number(&r)
            guard let expected = try? plan.e164(number) else { continue }
            let follow = following(&r)
            let separator = follow.isEmpty ? r.pick(["", ":", " - "]) : r.pick([" ", " ", " ", ": ", ":", " - ", " – "])
            let subject = r.pick(Self.prefixes) + number + separator + follow.joined(separator: " ")
            let found = FaxAddressing.subjectNumber(subject, plan: plan)
            let why = "seed \(seed): \(subject.debugDescription) → \(found)"

            if case .success(let parsed) = found {
                accepted += 1
                // Exactly the written digits: never longer (merged), never a prefix of them (cut).
                XCTAssertEqual(digits(parsed.number), digits(number), why)
                XCTAssertEqual(try plan.e164(parsed.number), expected, why)
            }
            // Digits after the number without a delimiter: always refused.
            if separator == " ", let first = follow.first, first.unicodeScalars.first.map({ (0x30...0x39).contains($0.value) || $0 == "(" || $0 == "+" }) == true {
                XCTAssertFalse((try? found.get()) != nil, "digit group after the number was not refused; " + why)
            }
            // And the grammar is not a refusal machine: a clear delimiter after an unambiguous number is taken.
            let clearEnd = [":", ": ", " - ", " – ", ""].contains(separator)
                || (separator == " " && follow.first.map { Self.words.contains($0) } == true)
            if unambiguous && clearEnd {
                mustAccept += 1
                XCTAssertNotNil(try? found.get(), why)
            }
        }
        XCTAssertGreaterThan(mustAccept, iterations / 4, "enough unambiguous cases were generated")
        XCTAssertGreaterThan(accepted, iterations / 4)
    }

    /// One character of another script, a mark, an invisible or a Unicode space anywhere in the number:
    /// refused, whatever the number and the rest look like.
    static let hostile: [Unicode.Scalar] = [
        "\u{0660}", "\u{0663}", "\u{06F3}", "\u{0966}", "\u{09E7}", "\u{FF10}", "\u{FF19}", "\u{1D7CE}", "\u{1D7FF}", "\u{2460}",
        "\u{0301}", "\u{0308}", "\u{20DD}", "\u{200B}", "\u{200C}", "\u{200D}", "\u{2060}", "\u{FEFF}", "\u{00AD}",
        "\u{202A}", "\u{202B}", "\u{202D}", "\u{202E}", "\u{2066}", "\u{2067}", "\u{2068}", "\u{2069}", "\u{200E}", "\u{200F}",
        "\u{00A0}", "\u{2007}", "\u{2009}", "\u{202F}", "\u{3000}", "\u{2028}", "\u{2029}", "\u{0085}", "\u{FE0F}",
    ]

    func testHostileScalarsInTheNumber_areRefusedInSubjectAddressAndCLI() {
        for seed in 1...UInt64(iterations) {
            var r = SeededRandom(seed: seed &* 7919)
            let (number, _) = number(&r)
            guard (try? plan.e164(number)) != nil else { continue }
            var scalars = Array(number.unicodeScalars)
            let bad = r.pick(Self.hostile)
            scalars.insert(bad, at: Int.random(in: 0...scalars.count, using: &r))
            let tampered = String(String.UnicodeScalarView(scalars))
            let why = "seed \(seed): \(tampered.debugDescription) (U+\(String(bad.value, radix: 16)))"

            let subject = r.pick(Self.prefixes) + tampered + r.pick([": Befund", " - Befund", " Befund", ""])
            guard case .failure(let problem) = FaxAddressing.subjectNumber(subject, plan: plan) else { return XCTFail("accepted: " + why) }
            XCTAssertEqual(problem, .subjectNotASCII(scalar: bad.value), why)

            XCTAssertThrowsError(try plan.e164(tampered), why) { error in
                XCTAssertEqual((error as? NumberPlan.Failure).map { if case .notASCII(_, let s) = $0 { s == bad.value } else { false } }, true, why)
            }
            let local = tampered.unicodeScalars.filter { $0 != " " && $0 != "(" && $0 != ")" && $0 != "/" }
            let address = String(String.UnicodeScalarView(local)) + "@fax.example.test"
            let result = FaxAddressing(faxDomains: ["fax.example.test"], subjectAddresses: [], plan: plan)
                .recipients(of: IncomingMail(fromAddress: "a@example.test", to: [address], subject: "x"))
            XCTAssertTrue(result.recipients.isEmpty, why)
            XCTAssertEqual(result.invalid.count, 1, why)
        }
    }

    /// The normaliser: random strings of digits, separators and anything else. What it accepts is `+` and
    /// 7–15 ASCII digits, its digits are the written ASCII digits (minus a "(0)" or a prefix it replaced by the
    /// country code), and the dial string this line makes of it is a valid `DialString`.
    func testNumberNormaliser_acceptsOnlyASCII_andYieldsOnlyDialableDigits() {
        let separators = Array(" -./()+".unicodeScalars), digitPool = Array("0123456789".unicodeScalars)
        let others = Self.hostile + ["a", "#", "*", "\t"]
        var accepted = 0
        for seed in 1...UInt64(iterations * 2) {
            var r = SeededRandom(seed: seed &+ 0xABCDEF)
            let length = Int.random(in: 1...18, using: &r)
            // Mostly digits, so that many strings are numbers; now and then a separator or anything else.
            let scalars = (0..<length).map { _ in
                switch Int.random(in: 0..<100, using: &r) {
                case 0..<75: return r.pick(digitPool)
                case 75..<92: return r.pick(separators)
                default: return r.pick(others)
                }
            }
            let written = String(String.UnicodeScalarView(scalars))
            let why = "seed \(seed): \(written.debugDescription)"
            do {
                let e164 = try plan.e164(written)
                accepted += 1
                XCTAssertTrue(scalars.allSatisfy { $0.isASCII }, why)
                XCTAssertTrue(NumberPlan.isE164(e164), why)
                XCTAssertNotNil(plan.dial(e164), why)
                XCTAssertTrue(digits(written).hasSuffix(digits(String(e164.dropFirst())).suffix(max(0, digits(written).count - 4))), why)
            } catch {
                if let bad = scalars.first(where: { !$0.isASCII }) {
                    XCTAssertEqual(error, .notASCII(NumberPlan.shown(written), scalar: bad.value), why)
                }
            }
        }
        XCTAssertGreaterThan(accepted, iterations / 4, "many generated strings are numbers")
    }
}
