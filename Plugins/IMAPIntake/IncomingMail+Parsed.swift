import FaxgateCore
import Foundation
import MailIn

extension IncomingMail {
    /// What the core needs from a parsed message. File names are reduced to a harmless base name here:
    /// they come from the sender and end up in logs, replies and (for the CLI) on disk.
    init(_ parsed: ParsedMail) {
        let returnPath = parsed.headerValues("Return-Path").first?.trimmingCharacters(in: .whitespaces)
        self.init(
            fromAddress: parsed.from?.address, fromName: parsed.from?.name,
            returnPath: returnPath.map { $0 == "<>" ? "" : $0.trimmingCharacters(in: CharacterSet(charactersIn: "<>")) },
            to: parsed.to.map(\.address), cc: parsed.cc.map(\.address), subject: parsed.subject ?? "", messageID: parsed.messageID,
            headers: parsed.headers, textBody: parsed.textBody, htmlBody: parsed.htmlBody,
            attachments: parsed.attachments.map {
                Attachment(filename: $0.filename.map(Self.safeFilename), contentType: $0.contentType.lowercased(), data: $0.data)
            },
            damage: parsed.damage)
    }

    static func safeFilename(_ name: String) -> String {
        let base = name.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let clean = String(base.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }.map(Character.init))
        let trimmed = clean.trimmingCharacters(in: CharacterSet(charactersIn: ". "))
        return trimmed.isEmpty ? "attachment" : String(trimmed.prefix(120))
    }
}
