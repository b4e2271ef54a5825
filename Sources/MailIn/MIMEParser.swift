import CEtpan
import Foundation

public struct MailAddress: Sendable, Equatable, CustomStringConvertible {
    /// Display name, RFC 2047-decoded.
    public var name: String?
    public var address: String
    public init(name: String?, address: String) { self.name = name; self.address = address }
    public var description: String { name.map { "\($0) <\(address)>" } ?? address }
}

/// One leaf of the MIME tree (or a whole attached message).
public struct MailPart: Sendable, Equatable {
    /// Lowercased `type/subtype` ("application/pdf").
    public var contentType: String
    /// Decoded file name (RFC 2231, RFC 2047, Content-Type `name=` as fallback); for an attached message its
    /// subject + ".eml" or "message.eml". Not sanitized: may contain "/" or "..".
    public var filename: String?
    /// Lowercased Content-Disposition type ("attachment", "inline"), nil when absent.
    public var disposition: String?
    /// Content after transfer decoding (base64, quoted-printable).
    public var data: [UInt8]
    public var isAttachment: Bool
    /// True for an attached message (message/rfc822): `data` is the whole inner message, not parsed further.
    public var nested: Bool
    /// The Content-Type charset parameter, lowercased.
    public var charset: String?
}

public struct ParsedMail: Sendable {
    /// Every top-level header in order; values unfolded and decoded to UTF-8.
    public var headers: [(name: String, value: String)]
    public var from: MailAddress?
    public var to: [MailAddress]
    public var cc: [MailAddress]
    public var subject: String?
    /// As written, angle brackets included ("<id@host>").
    public var messageID: String?
    /// The Date header, parsed; nil when absent or unreadable (the raw text is in `headers`).
    public var date: Date?
    /// Each Authentication-Results header (added by the receiving server: trust only your own server's).
    public var authenticationResults: [String]
    /// The first text/plain and text/html parts that are not attachments, converted to UTF-8.
    public var textBody: String?
    public var htmlBody: String?
    /// All leaf parts in document order (body text parts included, with `isAttachment == false`).
    public var parts: [MailPart]
    /// What was wrong but tolerated (bad base64, unclosed boundary, unknown charset …).
    public var problems: [String]
    /// The subset of `problems` that touches the content itself (unclosed boundaries, damaged transfer
    /// encodings): what was read may not be what the sender sent. Header trouble is not in here.
    public var damage: [String] = []

    /// All values of header `name` (case-insensitive).
    public func headerValues(_ name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }
    public var attachments: [MailPart] { parts.filter(\.isAttachment) }
}

/// Parses untrusted mail into `ParsedMail`: bounds first (`MIMELimits`), then libetpan's MIME parser,
/// with the decoding libetpan lacks (RFC 2231 file names, 8-bit headers) done here.
public struct MIMEParser: Sendable {
    public var limits: MIMELimits
    public init(limits: MIMELimits = MIMELimits()) { self.limits = limits }

    public func parse(_ message: [UInt8]) throws(MIMEError) -> ParsedMail {
        guard message.count <= limits.maxBytes else {
            throw .tooLarge(what: "message", bytes: message.count, limit: limits.maxBytes)
        }
        let scan = try MIMEStructureScan(message, limits: limits)
        var mail = ParsedMail(
            headers: [], from: nil, to: [], cc: [], subject: nil, messageID: nil, date: nil,
            authenticationResults: [], textBody: nil, htmlBody: nil, parts: [], problems: scan.problems)
        let header = HeaderBlock(message)
        if header.skippedLines > 0 { mail.problems.append("\(header.skippedLines) header line(s) without a colon ignored") }
        readHeaders(header, into: &mail)

        var walker = Walker(limits: limits)
        try message.withUnsafeBufferPointer { buffer throws(MIMEError) in
            try buffer.withMemoryRebound(to: CChar.self) { chars throws(MIMEError) in
                var index = 0
                var mime: UnsafeMutablePointer<mailmime>?
                let r = mailmime_parse(chars.baseAddress, chars.count, &index, &mime)
                guard r == MAILIMF_NO_ERROR, let mime else {
                    throw .malformed("libetpan's MIME parser failed (code \(r))")
                }
                defer { mailmime_free(mime) }
                try walker.walk(mime, depth: 0)
            }
        }
        mail.parts = walker.parts
        mail.problems += walker.problems
        mail.damage = scan.problems + walker.problems
        for part in mail.parts where !part.isAttachment {
            if part.contentType == "text/plain", mail.textBody == nil { mail.textBody = walker.text(of: part, problems: &mail.problems) }
            if part.contentType == "text/html", mail.htmlBody == nil { mail.htmlBody = walker.text(of: part, problems: &mail.problems) }
        }
        return mail
    }

    private func readHeaders(_ header: HeaderBlock, into mail: inout ParsedMail) {
        for field in header.fields {
            // Trace fields are structured: RFC 2047 words are not decoded there (RFC 2047 §5), or an encoded word an
            // MTA copied from the envelope could turn into a quote or ';' and forge a result in its verdict.
            let structuredTrace = ["authentication-results", "received"].contains(field.name.lowercased())
            let value = structuredTrace ? HeaderDecoding.text(Array(field.value), fromcode: HeaderDecoding.rawCharset(field.value))
                                        : HeaderDecoding.decode(field.value)
            mail.headers.append((field.name, value))
            switch field.name.lowercased() {
            case "from" where mail.from == nil:
                mail.from = Addresses.parse(field.value, problems: &mail.problems, header: "From").first
            case "to": mail.to += Addresses.parse(field.value, problems: &mail.problems, header: "To")
            case "cc": mail.cc += Addresses.parse(field.value, problems: &mail.problems, header: "Cc")
            case "subject" where mail.subject == nil: mail.subject = value.trimmingCharacters(in: .whitespaces)
            case "message-id" where mail.messageID == nil: mail.messageID = value.trimmingCharacters(in: .whitespaces)
            case "date" where mail.date == nil: mail.date = Addresses.date(field.value)
            case "authentication-results":
                mail.authenticationResults.append(value.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " "))
            default: break
            }
        }
    }
}

/// The top-level header block split into unfolded fields (raw bytes), read here rather than through libetpan
/// so 8-bit bytes and odd lines survive.
struct HeaderBlock {
    var fields: [(name: String, value: [UInt8])] = []
    var skippedLines = 0
    /// Offset of the body (after the blank line), or the message length when there is none.
    var bodyStart: Int

    init(_ bytes: [UInt8]) {
        var lines: [ArraySlice<UInt8>] = []
        var start = 0
        var end = bytes.count
        while start < bytes.count {
            var lineEnd = start
            while lineEnd < bytes.count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > start && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            if contentEnd == start { end = min(lineEnd + 1, bytes.count); break }
            lines.append(bytes[start..<contentEnd])
            start = lineEnd + 1
        }
        bodyStart = end
        var current: [UInt8]?
        func flush(_ fieldBytes: [UInt8]?) -> (String, [UInt8])? {
            guard let f = fieldBytes, let colon = f.firstIndex(of: UInt8(ascii: ":")) else { return nil }
            let name = String(decoding: trimmed(f[..<colon]), as: UTF8.self)
            return (name, Array(trimmed(f[(colon + 1)...])))
        }
        for line in lines {
            if let first = line.first, first == 0x20 || first == 0x09 {
                if current != nil { current! += line } else { skippedLines += 1 }
                continue
            }
            if let field = flush(current) { fields.append(field) }
            let hasName = line.firstIndex(of: UInt8(ascii: ":")).map { $0 > line.startIndex } ?? false
            if hasName { current = Array(line) } else { current = nil; skippedLines += 1 }
        }
        if let field = flush(current) { fields.append(field) }
    }
}

/// Walks libetpan's tree and collects leaf parts.
private struct Walker {
    let limits: MIMELimits
    var parts: [MailPart] = []
    var problems: [String] = []

    init(limits: MIMELimits) { self.limits = limits }

    mutating func walk(_ mime: UnsafeMutablePointer<mailmime>, depth: Int) throws(MIMEError) {
        guard depth <= limits.maxDepth + 1 else { throw .tooDeep(limit: limits.maxDepth) }
        switch Int(mime.pointee.mm_type) {
        case MAILMIME_MULTIPLE:
            for child in clistItems(mime.pointee.mm_data.mm_multipart.mm_mp_list, as: mailmime.self) {
                try walk(child, depth: depth + 1)
            }
        case MAILMIME_MESSAGE where mime.pointee.mm_parent == nil:
            // The message itself: its body is the tree to read.
            if let body = mime.pointee.mm_data.mm_message.mm_msg_mime { try walk(body, depth: depth) }
        case MAILMIME_MESSAGE:
            try addNestedMessage(mime)
        default:
            try addLeaf(mime)
        }
    }

    private mutating func append(_ part: MailPart) throws(MIMEError) {
        parts.append(part)
        if parts.count > limits.maxParts { throw .tooManyParts(limit: limits.maxParts) }
    }

    private mutating func addLeaf(_ mime: UnsafeMutablePointer<mailmime>) throws(MIMEError) {
        let info = PartInfo(mime)
        let data = decodeBody(mime.pointee.mm_body, label: info.label(index: parts.count + 1))
        let isBodyText = (info.contentType == "text/plain" || info.contentType == "text/html") && info.filename == nil
        let isAttachment = info.disposition == "attachment" || !isBodyText
        try append(MailPart(
            contentType: info.contentType, filename: info.filename, disposition: info.disposition, data: data,
            isAttachment: isAttachment, nested: false, charset: info.charset))
    }

    /// An attached message stays one part: the fax content is the outer message's, and an inner message
    /// is forwarded as it is.
    private mutating func addNestedMessage(_ mime: UnsafeMutablePointer<mailmime>) throws(MIMEError) {
        let info = PartInfo(mime)
        let data = decodeBody(mime.pointee.mm_body, label: info.label(index: parts.count + 1))
        var filename = info.filename
        if filename == nil {
            let subject = HeaderBlock(data).fields.first { $0.name.lowercased() == "subject" }
                .map { HeaderDecoding.decode($0.value).trimmingCharacters(in: .whitespaces) }
            if subject?.isEmpty == false, let s = subject { filename = s + ".eml" } else { filename = "message.eml" }
        }
        try append(MailPart(
            contentType: info.contentType, filename: filename, disposition: info.disposition, data: data,
            isAttachment: true, nested: true, charset: info.charset))
    }

    private mutating func decodeBody(_ body: UnsafeMutablePointer<mailmime_data>?, label: String) -> [UInt8] {
        guard let body, Int(body.pointee.dt_type) == MAILMIME_DATA_TEXT,
              let text = body.pointee.dt_data.dt_text.dt_data else { return [] }
        let length = body.pointee.dt_data.dt_text.dt_length
        let encoding = Int(body.pointee.dt_encoding)
        guard body.pointee.dt_encoded != 0,
              encoding == MAILMIME_MECHANISM_BASE64 || encoding == MAILMIME_MECHANISM_QUOTED_PRINTABLE else {
            return Array(UnsafeRawBufferPointer(start: text, count: length))
        }
        if encoding == MAILMIME_MECHANISM_BASE64 {
            let raw = UnsafeRawBufferPointer(start: text, count: length)
            if let problem = base64Problem(raw) { problems.append("\(label): \(problem); decoded what was readable") }
        }
        var index = 0
        var result: UnsafeMutablePointer<CChar>?
        var resultLength = 0
        let r = mailmime_part_parse(text, length, &index, Int32(encoding), &result, &resultLength)
        guard r == MAILIMF_NO_ERROR, let result else {
            problems.append("\(label): transfer encoding could not be decoded; kept as is")
            return Array(UnsafeRawBufferPointer(start: text, count: length))
        }
        defer { mailmime_decoded_part_free(result) }
        return Array(UnsafeRawBufferPointer(start: result, count: resultLength))
    }

    /// libetpan skips characters outside the base64 alphabet silently; say so.
    private func base64Problem(_ raw: UnsafeRawBufferPointer) -> String? {
        var invalid = 0, valid = 0, padding = 0
        for c in raw {
            switch c {
            case 0x41...0x5A, 0x61...0x7A, 0x30...0x39, 0x2B, 0x2F: valid += 1
            case 0x3D: padding += 1
            case 0x20, 0x09, 0x0D, 0x0A: break
            default: invalid += 1
            }
        }
        if invalid > 0 { return "base64 has \(invalid) invalid character(s)" }
        if (valid + padding) % 4 != 0 { return "base64 is truncated (\(valid + padding) characters, not a multiple of 4)" }
        return nil
    }

    func text(of part: MailPart, problems: inout [String]) -> String {
        let charset = part.charset ?? HeaderDecoding.rawCharset(part.data)
        if let text = HeaderDecoding.convert(part.data, from: charset) { return text }
        let fallback = HeaderDecoding.rawCharset(part.data)
        problems.append("\(part.contentType) body: cannot convert from charset \"\(charset)\"; read as \(fallback)")
        return HeaderDecoding.text(part.data, fromcode: fallback)
    }
}

/// Content-Type, disposition, charset and file name of one libetpan part.
private struct PartInfo {
    var contentType = "text/plain"
    var disposition: String?
    var filename: String?
    var charset: String?

    init(_ mime: UnsafeMutablePointer<mailmime>) {
        var typeParameters: [(name: String, value: [UInt8])] = []
        var dispositionParameters: [(name: String, value: [UInt8])] = []
        if let content = mime.pointee.mm_content_type {
            contentType = Self.typeString(content)
            for p in clistItems(content.pointee.ct_parameters, as: mailmime_parameter.self) {
                guard let n = p.pointee.pa_name, let v = p.pointee.pa_value else { continue }
                typeParameters.append((String(cString: n), Self.bytes(v)))
            }
        }
        for field in clistItems(mime.pointee.mm_mime_fields?.pointee.fld_list, as: mailmime_field.self)
        where Int(field.pointee.fld_type) == MAILMIME_FIELD_DISPOSITION {
            guard let d = field.pointee.fld_data.fld_disposition else { continue }
            if let type = d.pointee.dsp_type {
                switch Int(type.pointee.dsp_type) {
                case MAILMIME_DISPOSITION_TYPE_ATTACHMENT: disposition = "attachment"
                case MAILMIME_DISPOSITION_TYPE_INLINE: disposition = "inline"
                default: disposition = type.pointee.dsp_extension.map { String(cString: $0).lowercased() }
                }
            }
            for p in clistItems(d.pointee.dsp_parms, as: mailmime_disposition_parm.self) {
                switch Int(p.pointee.pa_type) {
                case MAILMIME_DISPOSITION_PARM_FILENAME:
                    if let f = p.pointee.pa_data.pa_filename { dispositionParameters.append(("filename", Self.bytes(f))) }
                case MAILMIME_DISPOSITION_PARM_PARAMETER:
                    if let param = p.pointee.pa_data.pa_parameter, let n = param.pointee.pa_name, let v = param.pointee.pa_value {
                        dispositionParameters.append((String(cString: n), Self.bytes(v)))
                    }
                default: break
                }
            }
        }
        filename = RFC2231.value(of: "filename", in: dispositionParameters) ?? RFC2231.value(of: "name", in: typeParameters)
        if filename?.isEmpty == true { filename = nil }
        charset = RFC2231.value(of: "charset", in: typeParameters)?.lowercased()
    }

    func label(index: Int) -> String {
        "part \(index) (\(contentType)\(filename.map { ", \"\($0)\"" } ?? ""))"
    }

    private static func bytes(_ s: UnsafePointer<CChar>) -> [UInt8] {
        Array(UnsafeRawBufferPointer(start: s, count: strlen(s)))
    }

    private static func typeString(_ content: UnsafeMutablePointer<mailmime_content>) -> String {
        var type = "application"
        if let t = content.pointee.ct_type {
            if Int(t.pointee.tp_type) == MAILMIME_TYPE_DISCRETE_TYPE, let d = t.pointee.tp_data.tp_discrete_type {
                switch Int(d.pointee.dt_type) {
                case MAILMIME_DISCRETE_TYPE_TEXT: type = "text"
                case MAILMIME_DISCRETE_TYPE_IMAGE: type = "image"
                case MAILMIME_DISCRETE_TYPE_AUDIO: type = "audio"
                case MAILMIME_DISCRETE_TYPE_VIDEO: type = "video"
                case MAILMIME_DISCRETE_TYPE_APPLICATION: type = "application"
                default: type = d.pointee.dt_extension.map { String(cString: $0) } ?? "application"
                }
            } else if let c = t.pointee.tp_data.tp_composite_type {
                switch Int(c.pointee.ct_type) {
                case MAILMIME_COMPOSITE_TYPE_MESSAGE: type = "message"
                case MAILMIME_COMPOSITE_TYPE_MULTIPART: type = "multipart"
                default: type = c.pointee.ct_token.map { String(cString: $0) } ?? "application"
                }
            }
        }
        let subtype = content.pointee.ct_subtype.map { String(cString: $0) } ?? "octet-stream"
        return "\(type)/\(subtype)".lowercased()
    }
}

/// Address headers and dates through libetpan's RFC 5322 parsers; display names decoded here.
enum Addresses {
    static func parse(_ raw: [UInt8], problems: inout [String], header: String) -> [MailAddress] {
        let fromcode = HeaderDecoding.rawCharset(raw)
        var list: UnsafeMutablePointer<mailimf_address_list>?
        var index = 0
        let r = raw.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { mailimf_address_list_parse($0.baseAddress, $0.count, &index, &list) }
        }
        guard r == MAILIMF_NO_ERROR, let list else {
            // Keep what looks like an address rather than lose the sender.
            let text = HeaderDecoding.text(raw, fromcode: fromcode)
            if let lt = text.lastIndex(of: "<"), let gt = text[lt...].firstIndex(of: ">") {
                problems.append("\(header): not RFC 5322; took the address in <…>")
                let address = String(text[text.index(after: lt)..<gt]).trimmingCharacters(in: .whitespaces)
                let name = String(text[..<lt]).trimmingCharacters(in: CharacterSet(charactersIn: " \t\""))
                return address.isEmpty ? [] : [MailAddress(name: name.isEmpty ? nil : HeaderDecoding.decode(Array(name.utf8)), address: address)]
            }
            let trimmedText = text.trimmingCharacters(in: .whitespaces)
            problems.append("\(header): not RFC 5322 (\"\(trimmedText.prefix(80))\")")
            return trimmedText.contains("@") && !trimmedText.contains(" ") ? [MailAddress(name: nil, address: trimmedText)] : []
        }
        defer { mailimf_address_list_free(list) }
        var out: [MailAddress] = []
        func add(_ mb: UnsafeMutablePointer<mailimf_mailbox>) {
            guard let spec = mb.pointee.mb_addr_spec else { return }
            let name = mb.pointee.mb_display_name.map { HeaderDecoding.decode(Array(UnsafeRawBufferPointer(start: $0, count: strlen($0)))) }
            out.append(MailAddress(name: name?.isEmpty == false ? name : nil, address: String(cString: spec)))
        }
        for address in clistItems(list.pointee.ad_list, as: mailimf_address.self) {
            switch Int(address.pointee.ad_type) {
            case MAILIMF_ADDRESS_MAILBOX:
                if let mb = address.pointee.ad_data.ad_mailbox { add(mb) }
            case MAILIMF_ADDRESS_GROUP:
                let members = address.pointee.ad_data.ad_group?.pointee.grp_mb_list?.pointee.mb_list
                for mb in clistItems(members, as: mailimf_mailbox.self) { add(mb) }
            default: break
            }
        }
        return out
    }

    static func date(_ raw: [UInt8]) -> Date? {
        var index = 0
        var dt: UnsafeMutablePointer<mailimf_date_time>?
        let r = raw.withUnsafeBufferPointer { b in
            b.withMemoryRebound(to: CChar.self) { mailimf_date_time_parse($0.baseAddress, $0.count, &index, &dt) }
        }
        guard r == MAILIMF_NO_ERROR, let dt else { return nil }
        defer { mailimf_date_time_free(dt) }
        let d = dt.pointee
        let zone = Int(d.dt_zone)
        let offset = (zone < 0 ? -1 : 1) * ((abs(zone) / 100) * 3600 + (abs(zone) % 100) * 60)
        var calendar = Calendar(identifier: .gregorian)
        guard let tz = TimeZone(secondsFromGMT: offset) else { return nil }
        calendar.timeZone = tz
        var year = Int(d.dt_year)
        if year < 50 { year += 2000 } else if year < 1000 { year += 1900 }
        return calendar.date(from: DateComponents(
            year: year, month: Int(d.dt_month), day: Int(d.dt_day),
            hour: Int(d.dt_hour), minute: Int(d.dt_min), second: Int(d.dt_sec)))
    }
}
