/// A set of rules that hides personal data in text (log lines now; snapshots later).
public protocol RedactionRuleSet: Sendable {
    /// Name used in the configuration (`log.redaction`).
    var name: String { get }
    func redact(_ text: String) -> String
}

/// Several rule sets applied in order.
public struct Redactor: Sendable {
    public var ruleSets: [any RedactionRuleSet]
    public init(_ ruleSets: [any RedactionRuleSet]) { self.ruleSets = ruleSets }
    public func redact(_ text: String) -> String { ruleSets.reduce(text) { $1.redact($0) } }
}
