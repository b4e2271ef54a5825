import Foundation

extension FaxPageStatistics {
    /// Pages kept per call or job: the page count is the remote's to choose (reception limits bound it too),
    /// and the list is for display only.
    public static let storedLimit = 1000

    /// The text every storage plugin keeps in its page-statistics column (JSON, sorted keys, at most
    /// `storedLimit` pages); nil for none. One rendering, so `storage migrate` copies it unchanged.
    public static func storedText(_ pages: [FaxPageStatistics]) -> String? {
        guard !pages.isEmpty else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(Array(pages.prefix(storedLimit)))).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Display-only: an unreadable list shows as none rather than failing the whole row.
    public static func fromStoredText(_ text: String?) -> [FaxPageStatistics] {
        guard let text, let list = try? JSONDecoder().decode([FaxPageStatistics].self, from: Data(text.utf8)) else { return [] }
        return list
    }
}

extension CallRecord {
    /// Takes what the fax engine reported, from typed values only. A value the transport did not report
    /// keeps what an earlier report said (faxConnected comes before callEnded).
    public mutating func takeEngineFacts(_ s: FaxSessionInfo) {
        if let e = s.engine { engine = e }
        if let c = s.compression { compression = c }
        if let e = s.ecm { ecm = e }
        if let n = s.ecmRetransmittedFrames { ecmRetransmittedFrames = max(0, n) }
        if !s.pageStatistics.isEmpty { pageStatistics = Array(s.pageStatistics.prefix(FaxPageStatistics.storedLimit)) }
        if let f = s.failure { t30Failure = f }
    }
}

extension FaxJob {
    /// Takes one attempt's engine report. The failure always follows the last attempt (nil clears it); the other
    /// facts only when the attempt reported them, so a busy retry does not wipe what the last connection showed.
    public mutating func takeEngineFacts(_ s: FaxSessionInfo) {
        t30Failure = s.failure
        if let e = s.engine { engine = e }
        if let c = s.compression { compression = c }
        if let e = s.ecm { ecm = e }
        if let n = s.ecmRetransmittedFrames { ecmRetransmittedFrames = max(0, n) }
        if !s.pageStatistics.isEmpty { pageStatistics = Array(s.pageStatistics.prefix(FaxPageStatistics.storedLimit)) }
    }
}
