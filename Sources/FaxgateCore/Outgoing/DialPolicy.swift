/// What may be dialled: blocked prefixes (premium rate costs money), international only where allowed,
/// and per-sender daily limits.
public struct DialPolicy: Sendable {
    public var config: DialPolicyConfig
    public var plan: NumberPlan
    public init(config: DialPolicyConfig, plan: NumberPlan) { self.config = config; self.plan = plan }

    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible, LocalizedReason {
        case blockedPrefix(number: String, prefix: String)
        case international(String)
        case jobLimit(limit: Int)
        case pageLimit(limit: Int, used: Int, wanted: Int)
        public var description: String {
            switch self {
            case .blockedPrefix(let n, let p): return "\(n) starts with \(p), a blocked (premium-rate or service) prefix"
            case .international(let n): return "\(n) is abroad, and international faxes are not allowed for you"
            case .jobLimit(let l): return "you reached today's limit of \(l) faxes"
            case .pageLimit(let l, let used, let wanted): return "\(wanted) more pages would exceed today's limit of \(l) (already sent: \(used))"
            }
        }
        public func text(_ language: String) -> String {
            guard Self.german(language) else { return description }
            switch self {
            case .blockedPrefix(let n, let p): return "\(n) beginnt mit \(p), einer gesperrten Vorwahl (Mehrwert- oder Sonderdienst)"
            case .international(let n): return "\(n) liegt im Ausland, und Faxe ins Ausland sind für Sie nicht freigegeben"
            case .jobLimit(let l): return "Sie haben das heutige Limit von \(l) Faxen erreicht"
            case .pageLimit(let l, let used, let wanted): return "\(wanted) weitere Seiten würden das heutige Limit von \(l) überschreiten (bereits gesendet: \(used))"
            }
        }
    }

    public func check(e164: String, allowInternational: Bool?) -> DialPolicy.Refusal? {
        if let prefix = config.denyPrefixes.first(where: { e164.hasPrefix($0) }) { return .blockedPrefix(number: e164, prefix: prefix) }
        if plan.isInternational(e164) && !(allowInternational ?? config.allowInternational) { return .international(e164) }
        return nil
    }

    public func checkLimits(jobsToday: Int, pagesToday: Int, newJobs: Int, newPages: Int) -> DialPolicy.Refusal? {
        if jobsToday + newJobs > config.maxJobsPerSenderPerDay { return .jobLimit(limit: config.maxJobsPerSenderPerDay) }
        if pagesToday + newPages > config.maxPagesPerSenderPerDay {
            return .pageLimit(limit: config.maxPagesPerSenderPerDay, used: pagesToday, wanted: newPages)
        }
        return nil
    }
}
