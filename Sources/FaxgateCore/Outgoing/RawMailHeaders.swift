import Foundation

/// Raw header lookup for messages we refuse to hand to the MIME parser (too large, too deep) and for
/// stored mails whose sender a retention run needs.
public enum RawMailHeaders {
    /// The first header `name` (unfolded), read without parsing MIME: for mail we will not or cannot parse.
    public static func value(of name: String, in raw: [UInt8]) -> String? {
        let text = String(decoding: raw.prefix(256 * 1024), as: UTF8.self)
        var current: String?
        var value = ""
        // "\r\n" is one Character in Swift: split on both forms of line end.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            let l = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if l.isEmpty { break }
            if l.first == " " || l.first == "\t" {
                if current != nil { value += " " + l.trimmingCharacters(in: .whitespaces) }
                continue
            }
            if current != nil { return value }
            if let colon = l.firstIndex(of: ":"), l[..<colon].caseInsensitiveCompare(name) == .orderedSame {
                current = name
                value = l[l.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return current != nil ? value : nil
    }
}
