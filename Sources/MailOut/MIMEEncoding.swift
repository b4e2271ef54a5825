/// Header and body encodings for RFC 5322 / MIME: sanitizing, RFC 2047 encoded words, folding,
/// RFC 2231 parameters, quoted-printable and base64. Everything emits CRLF line endings.
public enum MIMEEncoding {
    /// Longest header line we emit (RFC 5322 recommends 78; 998 is the hard limit).
    static let foldWidth = 78
    /// RFC 2047: an encoded word is at most 75 characters; "=?UTF-8?X?" + "?=" take 12 of them.
    static let encodedWordPayload = 75 - 12

    /// Makes text safe for a header value. Remote fax station ids and names are attacker-controlled,
    /// so CR/LF (header injection), other controls, C1 controls and Unicode line separators never pass.
    public static func sanitizeHeaderText(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x09, 0x0A, 0x0D, 0x0B, 0x0C, 0x85, 0x2028, 0x2029: out.append(" ")
            case 0x00..<0x20, 0x7F, 0x80...0x9F, 0xFEFF: continue
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    static func isPrintableASCII(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) }
    }

    // MARK: RFC 2047

    /// RFC 2047 Q-encoding set that is valid everywhere, including in a display-name phrase (5.3).
    private static func isQSafe(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "!"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "/"):
            return true
        default: return false
        }
    }

    private static func qEncode(_ bytes: some Sequence<UInt8>) -> String {
        var out = ""
        for byte in bytes {
            if byte == 0x20 { out.append("_") } else if isQSafe(byte) { out.append(Character(Unicode.Scalar(byte))) } else { out.append(hexEscape(byte, prefix: "=")) }
        }
        return out
    }

    /// Encodes `text` as a sequence of UTF-8 encoded words, each ≤ 75 characters and each holding whole
    /// characters (never a split UTF-8 sequence). Adjacent encoded words decode without the space between them.
    /// `firstLimit` caps the first word so it fits on the header's first line after "Name: ".
    public static func encodedWords(_ text: String, firstLimit: Int = 75) -> [String] {
        let bytes = Array(text.utf8)
        let qLength = qEncode(bytes).count
        let bLength = (bytes.count + 2) / 3 * 4
        let useQ = qLength <= bLength
        var words: [String] = []
        var chunk: [UInt8] = []
        var chunkLength = 0
        func flush() {
            guard !chunk.isEmpty else { return }
            words.append(useQ ? "=?UTF-8?Q?\(qEncode(chunk))?=" : "=?UTF-8?B?\(base64(chunk))?=")
            chunk = []
            chunkLength = 0
        }
        for scalar in text.unicodeScalars {
            let scalarBytes = Array(String(scalar).utf8)
            let added = useQ ? qEncode(scalarBytes).count : 0
            // At least 12 payload characters, so every word holds one character even in a tight first line.
            let payload = words.isEmpty ? max(12, min(encodedWordPayload, firstLimit - 12)) : encodedWordPayload
            let fits = useQ ? chunkLength + added <= payload : (chunk.count + scalarBytes.count + 2) / 3 * 4 <= payload
            if !fits { flush() }
            chunk += scalarBytes
            chunkLength += added
        }
        flush()
        return words.isEmpty ? ["=?UTF-8?Q??="] : words
    }

    /// Tokens for an unstructured header value (Subject, X-…): plain words when the text is short ASCII,
    /// encoded words otherwise. Text that merely looks like an encoded word is encoded too, so a remote
    /// party cannot make a client decode something other than what it sent.
    static func unstructuredTokens(_ raw: String, headerName: String) -> [String] {
        let text = sanitizeHeaderText(raw)
        let words = text.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        if isPrintableASCII(text) && !text.contains("=?") && words.allSatisfy({ $0.count <= foldWidth - 10 }) {
            return words
        }
        return encodedWords(text, firstLimit: foldWidth - headerName.count - 2)
    }

    /// Tokens for a display-name phrase: atoms, one quoted string, or encoded words.
    static func phraseTokens(_ name: String, firstLimit: Int = 75) -> [String] {
        let atext = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~ ".unicodeScalars)
        if isPrintableASCII(name) && !name.contains("=?") && name.count <= 200 {
            if name.unicodeScalars.allSatisfy({ atext.contains($0) }) {
                return name.split(separator: " ").map(String.init)
            }
            var quoted = "\""
            for ch in name {
                if ch == "\"" || ch == "\\" { quoted.append("\\") }
                quoted.append(ch)
            }
            return [quoted + "\""]
        }
        return encodedWords(name, firstLimit: firstLimit)
    }

    /// Joins tokens into "Name: tok tok …", folding before a token when the line would pass 78 characters.
    static func foldedHeader(_ name: String, _ tokens: [String]) -> String {
        var result = ""
        var line = "\(name):"
        var lineHasToken = false
        for token in tokens {
            if lineHasToken && line.count + 1 + token.count > foldWidth {
                result += line + "\r\n"
                line = " " + token
            } else {
                line += " " + token
            }
            lineHasToken = true
        }
        return result + line + "\r\n"
    }

    // MARK: RFC 2231 parameters

    private static func isAttrChar(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default: return "!#$&+-.^_`|~".utf8.contains(byte)
        }
    }

    /// `name="value"` for short ASCII values, else RFC 2231 `name*=UTF-8''…` (with `name*0*=` continuations
    /// when long). Returned as tokens for `foldedHeader`; all but the last end in ";".
    static func parameterTokens(_ name: String, _ rawValue: String) -> [String] {
        let value = sanitizeHeaderText(rawValue)
        if isPrintableASCII(value) && value.count <= 60 {
            var quoted = "\""
            for ch in value {
                if ch == "\"" || ch == "\\" { quoted.append("\\") }
                quoted.append(ch)
            }
            return ["\(name)=\(quoted)\""]
        }
        var pieces: [String] = []
        var current = ""
        for byte in value.utf8 {
            let encoded = isAttrChar(byte) ? String(Character(Unicode.Scalar(byte))) : hexEscape(byte, prefix: "%")
            if current.count + encoded.count > 60 {
                pieces.append(current)
                current = ""
            }
            current += encoded
        }
        pieces.append(current)
        if pieces.count == 1 { return ["\(name)*=UTF-8''\(pieces[0])"] }
        return pieces.enumerated().map { index, piece in
            let head = index == 0 ? "\(name)*0*=UTF-8''" : "\(name)*\(index)*="
            return head + piece + (index == pieces.count - 1 ? "" : ";")
        }
    }

    // MARK: Bodies

    /// UTF-8 bytes of `text` with every line break (CRLF, CR, LF) turned into CRLF.
    public static func crlfNormalized(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        var previousCR = false
        for byte in text.utf8 {
            if byte == 0x0A {
                if !previousCR { out += [0x0D, 0x0A] }
                previousCR = false
            } else if byte == 0x0D {
                out += [0x0D, 0x0A]
                previousCR = true
            } else {
                out.append(byte)
                previousCR = false
            }
        }
        return out
    }

    /// Quoted-printable (RFC 2045 6.7) of CRLF-normalized bytes; output lines ≤ 76 characters.
    public static func quotedPrintable(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var i = 0
        while i < bytes.count {
            if bytes[i] == 0x0D && i + 1 < bytes.count && bytes[i + 1] == 0x0A {
                lines.append(bytes[start..<i])
                i += 2
                start = i
            } else {
                i += 1
            }
        }
        lines.append(bytes[start..<bytes.count])
        for (lineIndex, line) in lines.enumerated() {
            var lineLength = 0
            for (offset, byte) in zip(line.indices, line) {
                let isLast = offset == line.index(before: line.endIndex)
                let literal = (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "="))
                    || ((byte == 0x20 || byte == 0x09) && !isLast)  // trailing whitespace would be stripped in transit
                let piece: [UInt8] = literal ? [byte] : Array(hexEscape(byte, prefix: "=").utf8)
                // Keep room for the soft line break "=" so no line passes 76 characters.
                let limit = isLast ? 76 : 75
                if lineLength + piece.count > limit {
                    out += [UInt8(ascii: "="), 0x0D, 0x0A]
                    lineLength = 0
                }
                out += piece
                lineLength += piece.count
            }
            if lineIndex < lines.count - 1 { out += [0x0D, 0x0A] }
        }
        return out
    }

    private static let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Plain base64 without line breaks.
    public static func base64(_ bytes: some Collection<UInt8>) -> String {
        String(decoding: base64Bytes(Array(bytes)), as: UTF8.self)
    }

    private static func base64Bytes(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
            out.append(base64Alphabet[Int(b0 >> 2)])
            out.append(base64Alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
            out.append(i + 1 < bytes.count ? base64Alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)] : UInt8(ascii: "="))
            out.append(i + 2 < bytes.count ? base64Alphabet[Int(b2 & 0x3F)] : UInt8(ascii: "="))
            i += 3
        }
        return out
    }

    /// Base64 body wrapped at 76 characters per line (RFC 2045 6.8), each line ending in CRLF.
    public static func base64Lines(_ bytes: [UInt8]) -> [UInt8] {
        let encoded = base64Bytes(bytes)
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count + encoded.count / 76 * 2 + 2)
        var i = 0
        while i < encoded.count {
            let end = min(i + 76, encoded.count)
            out += encoded[i..<end]
            out += [0x0D, 0x0A]
            i = end
        }
        return out
    }

    static func hexEscape(_ byte: UInt8, prefix: String) -> String {
        let digits = Array("0123456789ABCDEF")
        return prefix + String(digits[Int(byte >> 4)]) + String(digits[Int(byte & 0x0F)])
    }
}
