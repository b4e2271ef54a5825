/// A T.30 failure told to a person: one sentence per kind, with the rate when the engine knew it. Built from
/// the typed failure only (kind, rate); the engine's own words (`T30Failure.text`) are for support, not for mails.
/// The direction matters: when we send, the remote refuses our page; when we receive, we refuse theirs.
public struct T30FailureReason: LocalizedReason, Equatable, CustomStringConvertible {
    public var failure: T30Failure
    public var direction: CallRecord.Direction

    public init(_ failure: T30Failure, direction: CallRecord.Direction) {
        self.failure = failure; self.direction = direction
    }

    public func text(_ language: String) -> String {
        let de = Self.german(language)
        let rate = failure.bitRate.flatMap { $0 > 0 ? "\($0) bit/s" : nil }
        let sending = direction == .outgoing
        switch failure.kind {
        case .trainingFailed:
            if de {
                return (sending ? "Das Gegenfax hat unser Signal nicht angenommen" : "Das sendende Faxgerät kam nicht durch")
                    + (rate.map { " — Training bei \($0) fehlgeschlagen" } ?? " — Training fehlgeschlagen")
            }
            return (sending ? "The remote fax did not accept our signal" : "The sending fax could not get through")
                + (rate.map { " — training failed at \($0)" } ?? " — training failed")
        case .pageRefused:
            if de {
                return (sending ? "Das Gegenfax hat die Seite abgelehnt" : "Eine Seite kam zu beschädigt an und wurde abgelehnt")
                    + (rate.map { " — schlecht übertragen bei \($0)" } ?? " — schlechte Leitungsqualität")
            }
            return (sending ? "The remote fax refused the page" : "A page arrived too damaged and was refused")
                + (rate.map { " — poor transmission at \($0)" } ?? " — poor line quality")
        case .noResponse:
            return de ? (sending ? "Die Gegenstelle antwortete nicht mit Faxsignalen (kein Faxgerät, oder es verstummte)"
                                : "Die Gegenstelle sendete keine Faxsignale mehr") + at(rate, de)
                      : (sending ? "The remote did not answer with fax signals (no fax machine, or it stopped responding)"
                                 : "The remote stopped sending fax signals") + at(rate, de)
        case .incompatible:
            return de ? "Die beiden Faxgeräte haben keine gemeinsamen Einstellungen (Auflösung, Papierbreite oder Kompression)"
                      : "The two fax machines have no settings in common (resolution, paper width or compression)"
        case .remoteDisconnected:
            return (de ? "Die Gegenstelle hat die Verbindung mitten in der Übertragung beendet"
                       : "The remote ended the call in the middle of the transmission") + at(rate, de)
        case .local:
            return de ? "Das Fax konnte auf unserer Seite nicht verarbeitet werden (Dokument oder Gateway)"
                      : "The fax could not be handled on our side (document or gateway)"
        case .other:
            return (de ? "Die Faxübertragung ist gescheitert (Fehler im Faxprotokoll)"
                       : "The fax transmission failed (fax protocol error)") + at(rate, de)
        }
    }

    private func at(_ rate: String?, _ de: Bool) -> String {
        rate.map { de ? " (bei \($0))" : " (at \($0))" } ?? ""
    }

    /// English, for log lines and the admin's journal.
    public var description: String { text("en") }
}

extension T30Failure {
    /// The sentence for a person in `language` ("de"/"en").
    public func reason(_ direction: CallRecord.Direction, language: String) -> String {
        T30FailureReason(self, direction: direction).text(language)
    }
}
