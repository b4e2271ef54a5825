import CEtpan
import Foundation

/// Turning raw header bytes into UTF-8 text. Headers may carry RFC 2047 encoded words and, against the
/// rules, raw 8-bit bytes: those are read as UTF-8 when valid, else as Latin-1 (what old clients send).
enum HeaderDecoding {
    /// The charset raw 8-bit bytes in `bytes` are taken to be in.
    static func rawCharset(_ bytes: some Collection<UInt8>) -> String {
        String(validatingUTF8Bytes: bytes) != nil ? "utf-8" : "iso-8859-1"
    }

    /// Decodes RFC 2047 encoded words (libetpan) and 8-bit bytes; never fails.
    static func decode(_ bytes: some Collection<UInt8>) -> String {
        let raw = Array(bytes)
        let fromcode = rawCharset(raw)
        let hasEncodedWord = raw.count > 1 && zip(raw, raw.dropFirst()).contains { $0 == 0x3D && $1 == 0x3F }
        if hasEncodedWord, let decoded = encodedPhrase(raw, fromcode: fromcode) { return decoded }
        return text(raw, fromcode: fromcode)
    }

    /// Bytes known to be in `fromcode` as a String (Latin-1 is mapped directly: no lookup can fail).
    static func text(_ raw: [UInt8], fromcode: String) -> String {
        if fromcode == "utf-8", let s = String(validatingUTF8Bytes: raw) { return s }
        return String(raw.map { Character(Unicode.Scalar($0)) })
    }

    private static func encodedPhrase(_ raw: [UInt8], fromcode: String) -> String? {
        var index = 0
        var result: UnsafeMutablePointer<CChar>?
        let r = raw.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) {
                mailmime_encoded_phrase_parse(fromcode, $0.baseAddress, $0.count, &index, "utf-8", &result)
            }
        }
        guard r == MAILIMF_NO_ERROR, let result else { return nil }
        defer { free(result) }
        return String(cString: result)
    }

    /// Converts `bytes` from `charset` to UTF-8 with libetpan's charconv (iconv); nil for unknown charsets.
    static func convert(_ bytes: [UInt8], from charset: String) -> String? {
        let lower = charset.lowercased()
        if lower == "utf-8" || lower == "utf8" || lower == "us-ascii" || lower == "ascii" {
            return String(validatingUTF8Bytes: bytes)
        }
        if bytes.isEmpty { return "" }
        var result: UnsafeMutablePointer<CChar>?
        let r = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { charconv("utf-8", charset, $0.baseAddress, $0.count, &result) }
        }
        guard r == MAIL_CHARCONV_NO_ERROR, let result else { return nil }
        defer { free(result) }
        return String(cString: result)
    }
}

extension String {
    /// Strict UTF-8 decoding (nil on any invalid sequence), for bytes of any collection type.
    init?(validatingUTF8Bytes bytes: some Collection<UInt8>) {
        var iterator = bytes.makeIterator()
        var decoder = UTF8()
        var scalars = String.UnicodeScalarView()
        loop: while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar): scalars.append(scalar)
            case .emptyInput: break loop
            case .error: return nil
            }
        }
        self.init(scalars)
    }
}
