/// A called number an extension claims: one number or an inclusive range of equally long numbers
/// ("120-129"), as DDI blocks are sold.
public struct NumberPattern: Sendable, Equatable, CustomStringConvertible {
    public var low: String
    public var high: String

    /// Parses "100" or "120-129". Returns nil for anything else (letters, unequal lengths, low > high).
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map {
            String($0).trimmingCharacters(in: .whitespaces)
        }
        guard parts.count == 1 || parts.count == 2,
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }) else { return nil }
        low = parts[0]
        high = parts.count == 2 ? parts[1] : parts[0]
        guard low.count == high.count, low <= high else { return nil }
    }

    /// Equal-length digit strings compare numerically as strings; no overflow for long DDIs.
    public func matches(_ number: String) -> Bool {
        number.count == low.count && number >= low && number <= high
    }

    public func overlaps(_ other: NumberPattern) -> Bool {
        low.count == other.low.count && low <= other.high && other.low <= high
    }

    public var description: String { low == high ? low : "\(low)-\(high)" }
}

extension Character {
    /// One scalar, 0–9. A range test on Characters would count "1\u{0301}" (digit + combining mark) as a digit.
    var isASCIIDigit: Bool { asciiValue.map { (0x30...0x39).contains($0) } ?? false }
}
