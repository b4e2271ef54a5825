/// A set of rules that hides personal data in text (log lines now; snapshots later).
public protocol RedactionRuleSet: Sendable {
    /// Name used in the configuration (`log.redaction`).
    var name: String { get }
    func redact(_ text: String) -> String
    /// Lower runs first; rules that match larger units (addresses) go before those matching parts (numbers).
    var order: Int { get }
}

extension RedactionRuleSet {
    public var order: Int { 100 }
}

/// Several rule sets applied in order.
public struct Redactor: Sendable {
    public var ruleSets: [any RedactionRuleSet]
    public init(_ ruleSets: [any RedactionRuleSet]) { self.ruleSets = ruleSets.sorted { $0.order < $1.order } }
    public func redact(_ text: String) -> String { ruleSets.reduce(text) { $1.redact($0) } }
}
