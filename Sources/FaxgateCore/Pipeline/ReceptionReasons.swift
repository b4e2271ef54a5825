import FaxDocument

/// The decoder's findings on a received fax, in the language of the extension that gets it.
extension SFFProblem: LocalizedReason {
    public func text(_ language: String) -> String {
        guard language != "en" else { return description }
        switch self {
        case .badLines(let page, let count):
            return "Seite \(page): \(count) beschädigte \(count == 1 ? "Zeile" : "Zeilen") durch die Zeile darüber ersetzt"
        case .wrongLineWidth(let page, let count):
            return "Seite \(page): \(count) \(count == 1 ? "Zeile" : "Zeilen") mit falscher Breite angepasst"
        case .truncated(let page): return "Seite \(page) ist unvollständig (Übertragung vorzeitig beendet)"
        case .missingEndMarker: return "der Faxdatei fehlt die Endemarke"
        case .unsupportedCoding(let page, let coding): return "Seite \(page): unbekannte Codierung \(coding), als MH gelesen"
        case .emptyPage(let page): return "Seite \(page) enthielt keine Zeilen und wurde weggelassen"
        case .noPages: return "das Fax enthält keine Seiten"
        }
    }
}

extension SFFError: LocalizedReason {
    public func text(_ language: String) -> String {
        guard language != "en" else { return description }
        switch self {
        case .notSFF: return "keine SFF-Datei (die Kennung „Sfff“ fehlt)"
        case .noPageHeader(let offset): return "die SFF-Datei hat keinen Seitenkopf an Position \(offset)"
        }
    }
}
