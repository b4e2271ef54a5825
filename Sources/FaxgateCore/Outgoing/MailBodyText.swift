import Foundation

/// The part of a mail body its sender wrote now: without quoted earlier messages and without the signature.
/// A reply thread can carry other people's data (another patient's name, an earlier case); none of it may be
/// faxed, so everything from the first sign of a quoted message on is dropped, and so are `>` lines.
public enum MailBodyText {
    public static func own(_ text: String) -> String {
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .components(separatedBy: "\n")
        var kept: [String] = []
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            // Signature delimiter (RFC 3676 "-- "; many programs lose the space).
            if line == "-- " || line == "--" { break }
            if isSeparator(trimmed) { break }
            if isAttribution(trimmed, next: index + 1 < lines.count ? lines[index + 1] : nil) { break }
            if isHeaderBlock(at: index, lines) { break }
            if trimmed.hasPrefix(">") { continue }
            kept.append(line)
        }
        return kept.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// "-----Original Message-----", "-----Ursprüngliche Nachricht-----", "-------- Original-Nachricht --------".
    static func isSeparator(_ line: String) -> Bool {
        guard line.hasPrefix("---") else { return false }
        let words = line.trimmingCharacters(in: CharacterSet(charactersIn: "- ")).lowercased()
        return ["original message", "ursprüngliche nachricht", "original-nachricht", "originalnachricht",
                "weitergeleitete nachricht", "forwarded message"].contains(words)
    }

    /// "On Mon, 1 Dec 2026, Dr. A <a@b> wrote:" and "Am 01.12.2026 um 10:00 schrieb Dr. A <a@b>:" — also when
    /// the mail program wrapped it onto a second line.
    static func isAttribution(_ line: String, next: String?) -> Bool {
        let joined = next.map { line + " " + $0.trimmingCharacters(in: .whitespaces) } ?? line
        for candidate in [line, joined] {
            if candidate.hasPrefix("On "), candidate.hasSuffix("wrote:") { return true }
            if candidate.hasPrefix("Am "), candidate.hasSuffix(":"), candidate.contains(" schrieb") { return true }
        }
        return false
    }

    /// Outlook's quoted header block: "Von: …" / "From: …" followed within a few lines by "Gesendet: …" / "Sent: …"
    /// (or Date/Datum).
    static func isHeaderBlock(at index: Int, _ lines: [String]) -> Bool {
        func starts(_ line: String, _ labels: [String]) -> Bool {
            let t = line.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "*", with: "")
            return labels.contains { t.hasPrefix($0 + ":") }
        }
        guard starts(lines[index], ["Von", "From"]) else { return false }
        return lines[(index + 1)..<min(lines.count, index + 5)].contains { starts($0, ["Gesendet", "Sent", "Datum", "Date"]) }
    }
}

import FaxRender

extension IncomingMail {
    /// The sender's own words from the plain-text body, or else from the HTML body (quotes dropped in both).
    public var ownBodyText: String? {
        if let text = meaningfulText { return text }
        guard let html = htmlBody, !html.isEmpty else { return nil }
        let own = MailBodyText.own(HTMLBodyText.text(html))
        return own.isEmpty ? nil : own
    }
}
