// HTML mail bodies reduced to readable plain text for the fax: block elements become line breaks,
// list items get a marker, table cells a separator, entities are decoded, scripts and styles vanish.
import Foundation

enum HTMLText {
    static let dropped: Set<String> = ["script", "style", "head", "noscript", "template", "svg", "object", "iframe", "title"]
    static let blocks: Set<String> = [
        "p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "dt", "dd", "table", "tr", "thead",
        "tbody", "tfoot", "blockquote", "pre", "section", "article", "header", "footer", "nav", "aside", "form",
        "fieldset", "address", "figure", "figcaption", "main", "center", "caption", "hr", "body", "html",
    ]

    /// `withoutQuotes`: for a mail body, drop what the mail program quoted from earlier messages (a reply thread
    /// can carry other people's data): `<blockquote>` and everything from a reply container on (Gmail's
    /// `gmail_quote`, Outlook's `divRplyFwdMsg`, Thunderbird's `moz-cite-prefix`).
    static func text(_ html: String, withoutQuotes: Bool = false) -> String {
        let s = Array(html.unicodeScalars)
        var out = ""
        var i = 0
        var preDepth = 0
        var pendingSpace = false
        var listCounters: [Int?] = []  // nil: unordered list; n: next number of an ordered list
        var cellInRow = 0

        func newline(_ count: Int = 1) {
            pendingSpace = false
            // Never more than one empty line in a row, and none at the start.
            let trailing = out.reversed().prefix(while: { $0 == "\n" }).count
            if out.isEmpty { return }
            if trailing < count { out += String(repeating: "\n", count: count - trailing) }
        }
        func emit(_ text: String) {
            if preDepth > 0 {
                out += text
                return
            }
            for ch in text {
                if ch == " " || ch == "\n" || ch == "\t" || ch == "\r" || ch == "\u{0C}" {
                    pendingSpace = true
                } else {
                    if pendingSpace, let last = out.last, last != "\n", last != " " { out += " " }
                    pendingSpace = false
                    out.append(ch == "\u{A0}" ? " " : ch)
                }
            }
        }

        while i < s.count {
            if s[i] == "<" {
                // Comments and declarations.
                if matches(s, i, "<!--") {
                    i = find(s, from: i + 4, "-->").map { $0 + 3 } ?? s.count
                    continue
                }
                if i + 1 < s.count, s[i + 1] == "!" || s[i + 1] == "?" {
                    i = (s[i...].firstIndex(of: ">") ?? s.count - 1) + 1
                    continue
                }
                guard let (name, closing, attributes, end) = tag(s, at: i) else {
                    emit("<")
                    i += 1
                    continue
                }
                i = end
                if withoutQuotes && !closing {
                    let classes = (attributes["class"] ?? "").lowercased().split(separator: " ").map(String.init)
                    let id = (attributes["id"] ?? "").lowercased()
                    if ["gmail_quote", "gmail_attr", "moz-cite-prefix", "yahoo_quoted"].contains(where: classes.contains)
                        || ["divrplyfwdmsg", "appendonsend"].contains(id) {
                        break
                    }
                    if name == "blockquote" {
                        i = skipElement(s, from: i, name: "blockquote")
                        newline(2)
                        continue
                    }
                }
                if dropped.contains(name) && !closing {
                    // Skip to the matching end tag; script bodies are not HTML.
                    i = find(s, from: i, "</\(name)", caseInsensitive: true).map { start in
                        (s[start...].firstIndex(of: ">") ?? s.count - 1) + 1
                    } ?? s.count
                    continue
                }
                switch name {
                case "br":
                    pendingSpace = false
                    out += "\n"
                case "pre":
                    newline()
                    preDepth += closing ? -1 : 1
                    preDepth = max(0, preDepth)
                case "ul", "ol":
                    newline()
                    if closing { _ = listCounters.popLast() } else { listCounters.append(name == "ol" ? 1 : nil) }
                case "li":
                    if !closing {
                        newline()
                        let depth = max(0, listCounters.count - 1)
                        let indent = String(repeating: "  ", count: depth)
                        if let counter = listCounters.last, let number = counter {
                            out += "\(indent)\(number). "
                            listCounters[listCounters.count - 1] = number + 1
                        } else {
                            out += "\(indent)* "
                        }
                    }
                case "tr":
                    newline()
                    cellInRow = 0
                case "td", "th":
                    if !closing {
                        if cellInRow > 0 { out += " | " }
                        pendingSpace = false
                        cellInRow += 1
                    }
                case "img":
                    if let alt = attributes["alt"], !alt.isEmpty { emit("[\(decodeEntities(alt))]") }
                case "hr":
                    newline()
                    out += String(repeating: "-", count: 40)
                    newline()
                case "h1", "h2", "h3", "p", "table", "blockquote":
                    newline(2)
                default:
                    if blocks.contains(name) { newline() }
                }
                continue
            }
            let start = i
            while i < s.count && s[i] != "<" { i += 1 }
            var chunk = String.UnicodeScalarView()
            chunk.append(contentsOf: s[start..<i])
            emit(decodeEntities(String(chunk)))
        }
        let lines = out.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        return lines.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines) + "\n"
    }

    /// Index after the end tag that closes an element opened just before `from`, counting nested ones.
    static func skipElement(_ s: [Unicode.Scalar], from: Int, name: String) -> Int {
        var depth = 1
        var i = from
        while i < s.count {
            if s[i] == "<", let (tagName, closing, _, end) = tag(s, at: i), tagName == name {
                depth += closing ? -1 : 1
                i = end
                if depth == 0 { return i }
                continue
            }
            i += 1
        }
        return s.count
    }

    /// Parses the tag at `i`: lower-cased name, whether it is a closing tag, attributes, index after `>`.
    static func tag(_ s: [Unicode.Scalar], at start: Int) -> (String, Bool, [String: String], Int)? {
        var i = start + 1
        let closing = i < s.count && s[i] == "/"
        if closing { i += 1 }
        var name = ""
        while i < s.count, s[i].properties.isAlphabetic || ("0"..."9").contains(s[i]) {
            name.unicodeScalars.append(s[i])
            i += 1
        }
        guard !name.isEmpty else { return nil }
        var attributes: [String: String] = [:]
        while i < s.count && s[i] != ">" {
            if s[i] == " " || s[i] == "\n" || s[i] == "\t" || s[i] == "\r" || s[i] == "/" { i += 1; continue }
            var key = ""
            while i < s.count, s[i] != "=", s[i] != ">", s[i] != " ", s[i] != "\n", s[i] != "\t", s[i] != "/" {
                key.unicodeScalars.append(s[i])
                i += 1
            }
            var value = ""
            if i < s.count && s[i] == "=" {
                i += 1
                if i < s.count, s[i] == "\"" || s[i] == "'" {
                    let quote = s[i]
                    i += 1
                    while i < s.count && s[i] != quote { value.unicodeScalars.append(s[i]); i += 1 }
                    i += 1
                } else {
                    while i < s.count, s[i] != ">", s[i] != " ", s[i] != "\n", s[i] != "\t" { value.unicodeScalars.append(s[i]); i += 1 }
                }
            }
            if !key.isEmpty { attributes[key.lowercased()] = value }
        }
        return (name.lowercased(), closing, attributes, min(s.count, i + 1))
    }

    static func matches(_ s: [Unicode.Scalar], _ at: Int, _ literal: String, caseInsensitive: Bool = false) -> Bool {
        let pattern = Array(literal.unicodeScalars)
        guard at + pattern.count <= s.count else { return false }
        for (k, p) in pattern.enumerated() {
            let c = s[at + k]
            if caseInsensitive ? lowerASCII(c) != lowerASCII(p) : c != p { return false }
        }
        return true
    }

    static func lowerASCII(_ c: Unicode.Scalar) -> UInt32 { ("A"..."Z").contains(c) ? c.value + 32 : c.value }

    static func find(_ s: [Unicode.Scalar], from: Int, _ literal: String, caseInsensitive: Bool = false) -> Int? {
        var i = from
        while i < s.count {
            if matches(s, i, literal, caseInsensitive: caseInsensitive) { return i }
            i += 1
        }
        return nil
    }

    static let entities: [String: String] = {
        var table: [String: String] = [
            "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": "\u{A0}", "euro": "\u{20AC}",
            "ndash": "\u{2013}", "mdash": "\u{2014}", "lsquo": "\u{2018}", "rsquo": "\u{2019}", "sbquo": "\u{201A}",
            "ldquo": "\u{201C}", "rdquo": "\u{201D}", "bdquo": "\u{201E}", "hellip": "\u{2026}", "bull": "\u{2022}",
            "trade": "\u{2122}", "minus": "\u{2212}", "thinsp": "\u{2009}", "ensp": "\u{2002}", "emsp": "\u{2003}",
            "zwnj": "", "zwj": "", "shy": "",
        ]
        // HTML 4's Latin-1 entities, U+00A0 … U+00FF in order.
        let latin1 = """
            nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 \
            acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde \
            Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc \
            Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde auml aring \
            aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml \
            divide oslash ugrave uacute ucirc uuml yacute thorn yuml
            """.split(separator: " ")
        for (offset, name) in latin1.enumerated() where table[String(name)] == nil {
            table[String(name)] = String(UnicodeScalar(UInt8(0xA0 + offset)))
        }
        return table
    }()

    static func decodeEntities(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var out = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            out += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            if let semi = after.prefix(12).firstIndex(of: ";") {
                let name = after[..<semi]
                var decoded: String?
                if name.hasPrefix("#x") || name.hasPrefix("#X") {
                    decoded = UInt32(name.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String($0) }
                } else if name.hasPrefix("#") {
                    decoded = UInt32(name.dropFirst(), radix: 10).flatMap(Unicode.Scalar.init).map { String($0) }
                } else {
                    decoded = entities[String(name)]
                }
                if let decoded {
                    out += decoded
                    rest = after[after.index(after: semi)...]
                    continue
                }
            }
            out += "&"
            rest = after
        }
        return out + rest
    }
}

/// The text a sender wrote in an HTML mail body, without the quoted earlier messages.
public enum HTMLBodyText {
    public static func text(_ html: String) -> String { HTMLText.text(html, withoutQuotes: true) }
}
