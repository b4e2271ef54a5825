import Foundation
import MailOut

/// Composes the mail that brings a received fax to its extension, in the extension's language.
///
/// Everything the remote sent (station id, caller number) is untrusted: it goes into headers only through
/// MailOut's encoders, which strip line breaks and control characters.
public struct ReceptionMail: Sendable {
    public struct Facts: Sendable {
        public var callID: Int64
        public var callingNumber: String?
        public var callingNumberRestricted: Bool
        public var calledNumber: String
        public var extensionName: String
        public var remoteStationID: String?
        public var pages: Int
        public var fine: Bool?
        public var bitRate: Int?
        public var ecm: Bool?
        public var startedAt: Date
        public var duration: TimeInterval?
        public var outcome: CallRecord.Outcome
        /// Transport's reason for a failure, in words.
        public var reasonText: String?
        /// Decoder findings (bad lines, truncated page …).
        public var problems: [String]
        /// The numbers with type and presentation; when set they win over `callingNumber`/`calledNumber`.
        public var caller: PartyNumber?
        public var called: PartyNumber?
        /// How the call ended, when it did not run to its own end: told in the reader's language.
        public var endCause: CallRecord.EndCause?
        /// What the fax engine reported; the failure is told as our own sentence in the reader's language.
        public var t30Failure: T30Failure?
        public var engine: FaxEngineKind?
        public var compression: FaxCompression?
        public var ecmRetransmittedFrames: Int?
        public init(callID: Int64, callingNumber: String?, callingNumberRestricted: Bool = false, calledNumber: String,
                    extensionName: String, remoteStationID: String?, pages: Int, fine: Bool?, bitRate: Int?, ecm: Bool? = nil,
                    startedAt: Date, duration: TimeInterval?, outcome: CallRecord.Outcome, reasonText: String?, problems: [String]) {
            self.callID = callID; self.callingNumber = callingNumber; self.callingNumberRestricted = callingNumberRestricted
            self.calledNumber = calledNumber; self.extensionName = extensionName; self.remoteStationID = remoteStationID
            self.pages = pages; self.fine = fine; self.bitRate = bitRate; self.ecm = ecm; self.startedAt = startedAt
            self.duration = duration; self.outcome = outcome; self.reasonText = reasonText; self.problems = problems
        }
    }

    public var language: Extension.Language
    public var timeZone: TimeZone
    /// Renders numbers with the line's country code and prefixes.
    public var numbers: PartyNumberFormat

    public init(language: Extension.Language, timeZone: TimeZone = .current, numbers: PartyNumberFormat = PartyNumberFormat(line: LineConfig())) {
        self.language = language; self.timeZone = timeZone; self.numbers = numbers
    }

    public func subject(_ f: Facts) -> String {
        let from = caller(f)
        switch (language, f.outcome) {
        case (.de, .complete): return "Fax von \(from) an \(f.extensionName) (\(f.pages) \(f.pages == 1 ? "Seite" : "Seiten"))"
        case (.en, .complete): return "Fax from \(from) to \(f.extensionName) (\(f.pages) \(f.pages == 1 ? "page" : "pages"))"
        case (.de, .partial): return "Unvollständiges Fax von \(from) an \(f.extensionName) (\(f.pages) \(f.pages == 1 ? "Seite" : "Seiten") lesbar)"
        case (.en, .partial): return "Incomplete fax from \(from) to \(f.extensionName) (\(f.pages) \(f.pages == 1 ? "page" : "pages") readable)"
        case (.de, _): return "Fehlgeschlagener Faxempfang von \(from) an \(f.extensionName)"
        case (.en, _): return "Failed fax reception from \(from) to \(f.extensionName)"
        }
    }

    public func body(_ f: Facts) -> String {
        let de = language == .de
        var lines: [String] = []
        switch f.outcome {
        case .complete:
            lines.append(de ? "Ein Fax ist eingegangen; es liegt dieser Nachricht bei." : "A fax has arrived; it is attached to this message.")
        case .partial:
            lines.append(de
                ? "Ein Fax ist nur teilweise eingegangen. Die lesbaren Seiten liegen bei; bitten Sie den Absender, es erneut zu senden."
                : "A fax arrived only in part. The readable pages are attached; ask the sender to send it again.")
        case .failed, .rejected:
            lines.append(de
                ? "Ein Faxanruf ist eingegangen, aber es kam kein lesbares Dokument an. Bitten Sie den Absender, es erneut zu senden."
                : "A fax call came in, but no readable document arrived. Ask the sender to send it again.")
        }
        lines.append("")
        var rows: [(String, String, String)] = [
            ("Absender (Rufnummer)", "Caller", caller(f)),
            ("Kennung der Gegenstelle", "Remote station id", f.remoteStationID.flatMap { $0.isEmpty ? nil : $0 } ?? (de ? "keine" : "none")),
            ("Angerufen", "Called", "\(numbers.text(f.called ?? PartyNumber(digits: f.calledNumber), language: language.rawValue)) (\(f.extensionName))"),
            ("Seiten", "Pages", "\(f.pages)"),
            ("Auflösung", "Resolution", resolution(f.fine)),
            ("Übertragungsrate", "Signalling rate", f.bitRate.map { "\($0) bit/s" } ?? (de ? "unbekannt" : "unknown")),
            ("Fehlerkorrektur (ECM)", "Error correction (ECM)", f.ecm.map { $0 ? (de ? "ja" : "yes") : (de ? "nein" : "no") } ?? (de ? "unbekannt" : "unknown")),
            ("Dauer", "Duration", f.duration.map(duration) ?? (de ? "unbekannt" : "unknown")),
            ("Empfangen", "Received", timestamp(f.startedAt)),
            ("Ergebnis", "Result", result(f)),
            ("Vorgang", "Reference", "#\(f.callID)"),
        ]
        // Only what the software modem reports (a controller hides it): no "unknown" rows for every other call.
        var engineRows: [(String, String, String)] = []
        if let c = f.compression { engineRows.append(("Kompression", "Compression", Self.compressionName(c))) }
        if let n = f.ecmRetransmittedFrames, f.ecm == true || n > 0 {
            engineRows.append(("ECM-Wiederholungen", "ECM frames resent", "\(n)"))
        }
        if let e = f.engine { engineRows.append(("Faxmodem", "Fax modem", Self.engineName(e, de))) }
        rows.insert(contentsOf: engineRows, at: 7)
        let width = rows.map { (de ? $0.0 : $0.1).count }.max() ?? 0
        for row in rows {
            let label = de ? row.0 : row.1
            lines.append("\(label):\(String(repeating: " ", count: width - label.count + 1))\(row.2)")
        }
        if !f.problems.isEmpty {
            lines.append("")
            lines.append(de ? "Hinweise zum Dokument:" : "Notes on the document:")
            lines += f.problems.map { "  - \($0)" }
        }
        lines.append("")
        lines.append("-- ")
        lines.append(de ? "Faxgate – automatisch erzeugte Nachricht" : "Faxgate – automatically generated message")
        return lines.joined(separator: "\n") + "\n"
    }

    func caller(_ f: Facts) -> String {
        numbers.text(Self.party(f.caller, f.callingNumber, restricted: f.callingNumberRestricted), language: language.rawValue)
    }

    /// The caller from the typed value, or from the plain fields (unknown type); withheld wins either way.
    static func party(_ typed: PartyNumber?, _ digits: String?, restricted: Bool) -> PartyNumber? {
        if restricted || typed?.presentation == .restricted { return PartyNumber(digits: "", presentation: .restricted) }
        if let typed { return typed }
        return digits.map { PartyNumber(digits: $0) }
    }

    func resolution(_ fine: Bool?) -> String {
        switch (fine, language) {
        case (true?, .de): return "fein (204 × 196 dpi)"
        case (true?, .en): return "fine (204 × 196 dpi)"
        case (false?, .de): return "normal (204 × 98 dpi)"
        case (false?, .en): return "normal (204 × 98 dpi)"
        case (nil, .de): return "unbekannt"
        case (nil, .en): return "unknown"
        }
    }

    /// The typed end of a call that did not run to its own end, in one language (the transport's own words are
    /// English and may come from the network; they never reach a German mail).
    public static func endCauseText(_ cause: CallRecord.EndCause, _ language: Extension.Language) -> String? {
        let de = language == .de
        switch cause {
        case .lineLost: return de ? "die Verbindung zur Leitung ging während der Übertragung verloren" : "the line was lost during the transmission"
        case .interrupted: return de ? "das Gateway wurde während des Anrufs angehalten"
                                     : "the gateway stopped during the call"
        case .limitExceeded: return de ? "der Empfang überschritt die eingestellte Grenze (Größe, Seiten oder Dauer); das Gateway hat aufgelegt"
                                       : "the reception went past the configured limit (size, pages or duration); the gateway hung up"
        case .cleared, .hangUp, .maxLength, .silence, .dtmfHash: return nil
        }
    }

    func result(_ f: Facts) -> String {
        switch f.outcome {
        case .complete: return language == .de ? "vollständig empfangen" : "received completely"
        case .partial, .failed, .rejected:
            // The transport's reason text is English (and may come from the network): German mails show only
            // our own findings, which are already in German, or a German sentence.
            let own = f.reasonText.flatMap { f.problems.contains($0) ? $0 : nil }
            let reason = f.t30Failure.map { $0.reason(.incoming, language: language.rawValue) } ?? own ?? f.endCause.flatMap { Self.endCauseText($0, language) } ?? (language == .de
                ? (f.reasonText == nil ? "Grund unbekannt" : "Übertragung vorzeitig beendet")
                : f.reasonText ?? "reason unknown")
            return (language == .de ? "abgebrochen: " : "interrupted: ") + reason
        }
    }

    /// T.4/T.6 names as fax people know them.
    public static func compressionName(_ c: FaxCompression) -> String {
        switch c {
        case .mh: "MH (T.4 1D)"
        case .mr: "MR (T.4 2D)"
        case .mmr: "MMR (T.6)"
        }
    }

    public static func engineName(_ e: FaxEngineKind, _ de: Bool) -> String {
        switch e {
        case .controller: de ? "Controller (Fax-Firmware)" : "controller (fax firmware)"
        case .software: de ? "Software-Modem" : "software modem"
        }
    }

    func duration(_ seconds: TimeInterval) -> String {
        let s = Int(seconds.rounded())
        return s >= 60 ? "\(s / 60) min \(s % 60) s" : "\(s) s"
    }

    func timestamp(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: language == .de ? "de_DE" : "en_GB")
        f.timeZone = timeZone
        f.dateFormat = language == .de ? "dd.MM.yyyy HH:mm:ss zzz" : "yyyy-MM-dd HH:mm:ss zzz"
        return f.string(from: date)
    }

    /// File name stem for attachments: fax-<date>-<caller digits>.
    public func attachmentStem(_ f: Facts) -> String {
        let f2 = DateFormatter()
        f2.timeZone = timeZone
        f2.dateFormat = "yyyyMMdd-HHmmss"
        let digits = numbers.fileNamePart(Self.party(f.caller, f.callingNumber, restricted: f.callingNumberRestricted))
        return "fax-\(f2.string(from: f.startedAt))" + (digits.isEmpty ? "" : "-\(digits)")
    }
}
