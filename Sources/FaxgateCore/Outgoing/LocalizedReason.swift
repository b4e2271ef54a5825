/// A reason told to a person, in their language ("de" or "en"). Reasons stay typed values until the mail is
/// written, so no sentence composed in one language is pasted into a mail in the other.
public protocol LocalizedReason: Sendable {
    func text(_ language: String) -> String
}

extension LocalizedReason {
    static func german(_ language: String) -> Bool { language != "en" }
}
