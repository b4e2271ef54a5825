import Foundation
import MailOut

/// Composes the mail for a voice message (RFC 3458 `Message-Context: voice-message`), in the extension's language.
/// Caller number and address-book name are untrusted text: they reach headers only through MailOut's encoders.
public struct VoicemailMail: Sendable {
    public struct Facts: Sendable {
        public var callID: Int64
        public var callingNumber: String?
        public var callingNumberRestricted: Bool
        /// From the extension's address book.
        public var callerName: String?
        public var calledNumber: String
        public var extensionName: String
        public var startedAt: Date
        /// Seconds of recorded message.
        public var messageSeconds: Double
        /// How the recording ended, in words.
        public var endText: String
        /// The audio is withheld (privacy_notice_only).
        public var audioWithheld: Bool
        /// The numbers with type and presentation; when set they win over `callingNumber`/`calledNumber`.
        public var caller: PartyNumber?
        public var called: PartyNumber?
        public init(callID: Int64, callingNumber: String?, callingNumberRestricted: Bool, callerName: String?, calledNumber: String,
                    extensionName: String, startedAt: Date, messageSeconds: Double, endText: String, audioWithheld: Bool) {
            self.callID = callID; self.callingNumber = callingNumber; self.callingNumberRestricted = callingNumberRestricted
            self.callerName = callerName; self.calledNumber = calledNumber; self.extensionName = extensionName
            self.startedAt = startedAt; self.messageSeconds = messageSeconds; self.endText = endText; self.audioWithheld = audioWithheld
        }
    }

    public var language: Extension.Language
    public var timeZone: TimeZone
    /// Renders numbers with the line's country code and prefixes.
    public var numbers: PartyNumberFormat
    public init(language: Extension.Language, timeZone: TimeZone = .current, numbers: PartyNumberFormat = PartyNumberFormat(line: LineConfig())) {
        self.language = language; self.timeZone = timeZone; self.numbers = numbers
    }

    private var fax: ReceptionMail { ReceptionMail(language: language, timeZone: timeZone, numbers: numbers) }

    public func caller(_ f: Facts) -> String {
        let party = ReceptionMail.party(f.caller, f.callingNumber, restricted: f.callingNumberRestricted)
        let n = numbers.text(party, language: language.rawValue)
        // A name only goes with a number that may be shown.
        if let name = f.callerName, party?.isShowable == true { return "\(PartyNumberFormat.cleaned(name)) (\(n))" }
        return n
    }

    public func length(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }

    public func subject(_ f: Facts) -> String {
        language == .de
            ? "Sprachnachricht von \(caller(f)) an \(f.extensionName) (\(length(f.messageSeconds)))"
            : "Voice message from \(caller(f)) to \(f.extensionName) (\(length(f.messageSeconds)))"
    }

    public func body(_ f: Facts) -> String {
        let de = language == .de
        var lines: [String] = []
        if f.audioWithheld {
            lines.append(de
                ? "Eine Sprachnachricht ist eingegangen. Die Aufnahme wird aus Datenschutzgründen nicht per E-Mail versandt; sie liegt auf dem Gateway."
                : "A voice message has arrived. For privacy the recording is not sent by e-mail; it is kept on the gateway.")
        } else {
            lines.append(de ? "Eine Sprachnachricht ist eingegangen; die Aufnahme liegt bei." : "A voice message has arrived; the recording is attached.")
        }
        lines.append("")
        let rows: [(String, String, String)] = [
            ("Anrufer", "Caller", caller(f)),
            ("Angerufen", "Called", "\(numbers.text(f.called ?? PartyNumber(digits: f.calledNumber), language: language.rawValue)) (\(f.extensionName))"),
            ("Zeit", "Time", fax.timestamp(f.startedAt)),
            ("Länge", "Length", length(f.messageSeconds)),
            ("Ende", "Ended", f.endText),
            ("Vorgang", "Reference", "#\(f.callID)"),
        ]
        let width = rows.map { (de ? $0.0 : $0.1).count }.max() ?? 0
        for row in rows {
            let label = de ? row.0 : row.1
            lines.append("\(label):\(String(repeating: " ", count: width - label.count + 1))\(row.2)")
        }
        lines.append("")
        lines.append("-- ")
        lines.append(de ? "Faxgate – automatisch erzeugte Nachricht" : "Faxgate – automatically generated message")
        return lines.joined(separator: "\n") + "\n"
    }

    /// How the recording ended, for the mail and the journal.
    public func endText(_ cause: VoiceCallEnd.Cause?) -> String {
        let de = language == .de
        switch cause {
        case .hangUp?: return de ? "Anrufer hat aufgelegt" : "caller hung up"
        case .maxLength?: return de ? "maximale Länge erreicht" : "maximum length reached"
        case .silence?: return de ? "Stille erkannt" : "silence detected"
        case .dtmfHash?: return de ? "Anrufer hat # gedrückt" : "caller pressed #"
        case .interrupted?: return de ? "unterbrochen" : "interrupted"
        case nil: return de ? "unbekannt" : "unknown"
        }
    }

    /// voicemail-<date>-<caller digits>
    public func attachmentStem(_ f: Facts) -> String {
        let d = DateFormatter()
        d.timeZone = timeZone
        d.dateFormat = "yyyyMMdd-HHmmss"
        let digits = numbers.fileNamePart(ReceptionMail.party(f.caller, f.callingNumber, restricted: f.callingNumberRestricted))
        return "voicemail-\(d.string(from: f.startedAt))" + (digits.isEmpty ? "" : "-\(digits)")
    }
}
