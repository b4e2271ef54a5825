/// MIME parameter values as mail clients really write file names. libetpan leaves RFC 2231
/// (`filename*=UTF-8''%E2%82%AC.pdf`, continuations `filename*0*=` …) and RFC 2047 inside quoted
/// `filename="=?UTF-8?B?…?="` undecoded; this does both.
enum RFC2231 {
    /// The decoded value of parameter `name` from `parameters` (names compared case-insensitively), or nil.
    /// Precedence: `name*` (extended), `name*0`/`name*0*`… (continuations), plain `name`.
    static func value(of name: String, in parameters: [(name: String, value: [UInt8])]) -> String? {
        let base = name.lowercased()
        var extended: [UInt8]?
        var plain: [UInt8]?
        var sections: [Int: (value: [UInt8], encoded: Bool)] = [:]
        for (rawName, value) in parameters {
            let n = rawName.lowercased()
            if n == base { plain = plain ?? value; continue }
            if n == base + "*" { extended = extended ?? value; continue }
            guard n.hasPrefix(base + "*") else { continue }
            var rest = n.dropFirst(base.count + 1)
            let encoded = rest.hasSuffix("*")
            if encoded { rest = rest.dropLast() }
            guard let number = Int(rest), number >= 0, number < 1000, sections[number] == nil else { continue }
            sections[number] = (value, encoded)
        }
        if let extended { return decodeExtended(extended) }
        if let first = sections[0] {
            var charset = "us-ascii"
            var bytes: [UInt8] = []
            var number = 0
            while let section = sections[number] {
                if section.encoded {
                    var value = section.value[...]
                    if number == 0 {
                        let (cs, rest) = splitCharsetAndLanguage(value)
                        if let cs { charset = cs }
                        value = rest
                    }
                    bytes += percentDecoded(value)
                } else {
                    bytes += section.value
                }
                number += 1
            }
            if first.encoded, let text = HeaderDecoding.convert(bytes, from: charset) { return text }
            return HeaderDecoding.decode(bytes)
        }
        if let plain { return HeaderDecoding.decode(plain) }
        return nil
    }

    /// `charset'language'percent-encoded` → text.
    static func decodeExtended(_ value: [UInt8]) -> String {
        let (charset, rest) = splitCharsetAndLanguage(value[...])
        let bytes = percentDecoded(rest)
        if let charset, let text = HeaderDecoding.convert(bytes, from: charset) { return text }
        return HeaderDecoding.text(bytes, fromcode: HeaderDecoding.rawCharset(bytes))
    }

    private static func splitCharsetAndLanguage(_ value: ArraySlice<UInt8>) -> (String?, ArraySlice<UInt8>) {
        guard let q1 = value.firstIndex(of: UInt8(ascii: "'")),
              let q2 = value[(q1 + 1)...].firstIndex(of: UInt8(ascii: "'")) else { return (nil, value) }
        let charset = String(decoding: value[..<q1], as: UTF8.self)
        return (charset.isEmpty ? nil : charset, value[(q2 + 1)...])
    }

    private static func percentDecoded(_ value: ArraySlice<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.count)
        var i = value.startIndex
        while i < value.endIndex {
            if value[i] == UInt8(ascii: "%"), i + 2 < value.endIndex, let hi = hex(value[i + 1]), let lo = hex(value[i + 2]) {
                out.append(hi << 4 | lo)
                i += 3
            } else {
                out.append(value[i])
                i += 1
            }
        }
        return out
    }

    private static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: return c - 0x30
        case 0x41...0x46: return c - 0x41 + 10
        case 0x61...0x66: return c - 0x61 + 10
        default: return nil
        }
    }
}
