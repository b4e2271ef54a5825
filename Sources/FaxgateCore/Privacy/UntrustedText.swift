/// Text that came from outside — a caller number or station id from the line, a file name or Subject from a
/// mail — made safe to show. The one sanitizer shared by log lines and mails, so a station id with a line
/// break cannot forge a log line or a header, and invisible characters cannot split a number into pieces
/// no redaction rule recognises.
public enum UntrustedText {
    /// For mails and the journal: control and invisible format characters (zero-width, bidi overrides, soft
    /// hyphen, BOM) removed, line and tab characters become spaces, runs of spaces collapse, ends trimmed.
    public static func clean(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        var lastWasSpace = true
        for v in text.unicodeScalars {
            if isInvisible(v) { continue }
            let space = isLineOrTab(v) || v.properties.generalCategory == .spaceSeparator || v.value == 0x20
            if space {
                if !lastWasSpace { out.append(" ") }
                lastWasSpace = true
            } else if isControl(v) {
                continue
            } else {
                out.append(v)
                lastWasSpace = false
            }
        }
        var s = String(out)
        while s.hasSuffix(" ") { s.removeLast() }
        return s
    }

    /// For one log line: the same, but other control characters become U+FFFD instead of vanishing, so a run
    /// of binary bytes stays recognisable to the content rule; nothing is trimmed or collapsed.
    public static func logSafe(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value >= 0x7F }) else { return text }
        var out = String.UnicodeScalarView()
        for v in text.unicodeScalars {
            if isInvisible(v) { continue }
            if isLineOrTab(v) { out.append(" ") } else if isControl(v) { out.append("\u{FFFD}") } else { out.append(v) }
        }
        return String(out)
    }

    static func isLineOrTab(_ v: Unicode.Scalar) -> Bool {
        (0x09...0x0D).contains(v.value) || v.value == 0x85 || v.value == 0x2028 || v.value == 0x2029
    }

    static func isControl(_ v: Unicode.Scalar) -> Bool { v.value < 0x20 || (0x7F...0x9F).contains(v.value) }

    /// Format characters (Cf): zero-width space/joiners, bidi embeddings/overrides/isolates, word joiner,
    /// soft hyphen, BOM … They render as nothing and exist in caller data only to mislead.
    static func isInvisible(_ v: Unicode.Scalar) -> Bool { v.properties.generalCategory == .format }
}
