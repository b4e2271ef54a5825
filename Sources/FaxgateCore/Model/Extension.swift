/// A destination inside the office: the numbers it answers and where its faxes go.
public struct Extension: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable { case pdf, tiff }
    public enum Language: String, Sendable, CaseIterable { case de, en }
    /// PDF page box for received faxes: scaled to A4, or the fax's physical size.
    public enum PDFPageSize: String, Sendable, CaseIterable { case a4, exact }

    public var name: String
    public var numbers: [NumberPattern]
    public var recipients: [String]
    public var formats: [Format]
    public var language: Language
    public var stationID: String
    public var headline: String
    public var fine: Bool
    public var ringDelaySeconds: Int
    /// Voicemail for voice calls; nil = voice calls are left to other devices.
    public var voicemail: Voicemail?
    public var pdfPageSize: PDFPageSize = .a4

    public init(name: String, numbers: [NumberPattern], recipients: [String], formats: [Format] = [.pdf],
                language: Language = .de, stationID: String = "", headline: String = "", fine: Bool = true,
                ringDelaySeconds: Int = 0) {
        self.name = name; self.numbers = numbers; self.recipients = recipients; self.formats = formats
        self.language = language; self.stationID = stationID; self.headline = headline; self.fine = fine
        self.ringDelaySeconds = ringDelaySeconds
    }

    public init(_ c: ExtensionConfig) {
        self.init(
            name: c.name, numbers: c.numbers.compactMap(NumberPattern.init), recipients: c.email,
            formats: c.formats.compactMap { Format(rawValue: $0.lowercased()) },
            language: Language(rawValue: c.language) ?? .de, stationID: c.stationID ?? "", headline: c.headline ?? "",
            fine: c.fine, ringDelaySeconds: c.ringDelaySeconds)
        voicemail = c.voicemail.flatMap { $0.enabled ? Voicemail($0) : nil }
        pdfPageSize = PDFPageSize(rawValue: c.pdfPageSize.lowercased()) ?? .a4
    }
}

/// Finds the extension for a called number. Exact DDI/MSN match first; a configured catch-all takes the rest.
public struct ExtensionDirectory: Sendable {
    public var extensions: [Extension]
    public var catchAll: Extension?

    public init(extensions: [Extension], catchAllName: String?) {
        self.extensions = extensions
        self.catchAll = catchAllName.flatMap { name in extensions.first { $0.name == name } }
    }

    public init(_ config: Configuration) {
        self.init(extensions: config.extensions.map(Extension.init), catchAllName: config.catchAll)
    }

    public enum Match: Sendable, Equatable {
        case number(Extension)
        case catchAll(Extension)
        case none
    }

    public func route(calledNumber: String) -> Match {
        // Some networks signal the full number, others only the DDI suffix; try the number as given
        // first, then its suffixes of each configured length (longest first) so "0301234100" finds "100".
        if let hit = extensions.first(where: { $0.numbers.contains { $0.matches(calledNumber) } }) {
            return .number(hit)
        }
        let lengths = Set(extensions.flatMap { $0.numbers.map(\.low.count) }).sorted(by: >)
        for length in lengths where length < calledNumber.count {
            let suffix = String(calledNumber.suffix(length))
            if let hit = extensions.first(where: { $0.numbers.contains { $0.matches(suffix) } }) {
                return .number(hit)
            }
        }
        if let catchAll { return .catchAll(catchAll) }
        return .none
    }
}
