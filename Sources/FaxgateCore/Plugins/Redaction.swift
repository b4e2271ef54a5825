/// A set of rules that hides personal data in text (log lines now; snapshots later).
public protocol RedactionRuleSet: Sendable {
    /// Name used in the configuration (`log.redaction`).
    var name: String { get }
    func redact(_ text: String) -> String
    /// Lower runs first; rules that match larger units (addresses) go before those matching parts (numbers).
    var order: Int { get }
    /// A structured log field (metadata key and value) this rule set hides as a whole, or nil. Lets the log
    /// handler redact a value whatever characters it holds, before it is joined into a line.
    func redactField(key: String, value: String) -> String?
}

extension RedactionRuleSet {
    public var order: Int { 100 }
    public func redactField(key: String, value: String) -> String? { nil }
}

/// Several rule sets applied in order.
public struct Redactor: Sendable {
    public var ruleSets: [any RedactionRuleSet]
    public init(_ ruleSets: [any RedactionRuleSet]) { self.ruleSets = ruleSets.sorted { $0.order < $1.order } }
    public func redact(_ text: String) -> String { ruleSets.reduce(text) { $1.redact($0) } }
    /// The value of a log field as a rule set hides it whole (station ids, Subjects, file names), else nil.
    public func redactField(key: String, value: String) -> String? {
        for set in ruleSets { if let hidden = set.redactField(key: key, value: value) { return hidden } }
        return nil
    }
}
