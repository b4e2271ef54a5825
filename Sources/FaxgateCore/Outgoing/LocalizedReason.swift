/// A reason told to a person, in their language ("de" or "en"). Reasons stay typed values until the mail is
/// written, so no sentence composed in one language is pasted into a mail in the other.
public protocol LocalizedReason: Sendable {
    func text(_ language: String) -> String
}

extension LocalizedReason {
    static func german(_ language: String) -> Bool { language != "en" }
}

/// A fixed text written in both languages at the place where it arises (the reason has no parts worth a type).
public struct LocalizedText: LocalizedReason, CustomStringConvertible, Equatable {
    public var de: String
    public var en: String
    public init(de: String, en: String) { self.de = de; self.en = en }
    public func text(_ language: String) -> String { Self.german(language) ? de : en }
    /// English, for log lines and the admin's journal.
    public var description: String { en }
}
