/// What may be dialled: blocked prefixes (premium rate costs money), international only where allowed,
/// and per-sender daily limits.
///
/// Blocked prefixes are checked twice: on the final E.164 number and on the final dial string, with each
/// deny prefix mapped into this line's dial forms (`NumberPlan.dialPrefixes`): "+49900" also catches the
/// digits "0900…" and, behind an outside-line prefix, "00900…". `SubmissionProcessor` checks when a fax is
/// accepted, `SendQueue` again right before it dials (the configuration may have changed in between), and
/// `resend` like a new submission.
public struct DialPolicy: Sendable {
    public var config: DialPolicyConfig
    public var plan: NumberPlan
    public init(config: DialPolicyConfig, plan: NumberPlan) { self.config = config; self.plan = plan }

    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible, LocalizedReason {
        case blockedPrefix(number: String, prefix: String)
        case international(String)
        case jobLimit(limit: Int)
        case pageLimit(limit: Int, used: Int, wanted: Int)
        /// The digits to dial fall under a blocked prefix in this line's dial form.
        case blockedDialString(dialString: String, prefix: String)
        /// Not `+` and ASCII digits, or no valid dial string results (never handed to a transport).
        case notDiallable(String)
        public var description: String {
            switch self {
            case .blockedDialString(let d, let p): return "the digits dialled for it (\(d)) fall under \(p), a blocked (premium-rate or service) prefix"
            case .notDiallable(let n): return "'\(NumberPlan.shown(n))' cannot be dialled: a fax number is dialled as the digits 0-9 only"
            case .blockedPrefix(let n, let p): return "\(n) starts with \(p), a blocked (premium-rate or service) prefix"
            case .international(let n): return "\(n) is abroad, and international faxes are not allowed for you"
            case .jobLimit(let l): return "you reached today's limit of \(l) faxes"
            case .pageLimit(let l, let used, let wanted): return "\(wanted) more pages would exceed today's limit of \(l) (already sent: \(used))"
            }
        }
        public func text(_ language: String) -> String {
            guard Self.german(language) else { return description }
            switch self {
            case .blockedDialString(let d, let p): return "die dafür gewählten Ziffern (\(d)) fallen unter \(p), eine gesperrte Vorwahl (Mehrwert- oder Sonderdienst)"
            case .notDiallable(let n): return "„\(NumberPlan.shown(n))“ kann nicht gewählt werden: eine Faxnummer wird nur mit den Ziffern 0–9 gewählt"
            case .blockedPrefix(let n, let p): return "\(n) beginnt mit \(p), einer gesperrten Vorwahl (Mehrwert- oder Sonderdienst)"
            case .international(let n): return "\(n) liegt im Ausland, und Faxe ins Ausland sind für Sie nicht freigegeben"
            case .jobLimit(let l): return "Sie haben das heutige Limit von \(l) Faxen erreicht"
            case .pageLimit(let l, let used, let wanted): return "\(wanted) weitere Seiten würden das heutige Limit von \(l) überschreiten (bereits gesendet: \(used))"
            }
        }
    }

    public func check(e164: String, allowInternational: Bool?) -> DialPolicy.Refusal? {
        guard NumberPlan.isE164(e164) else { return .notDiallable(e164) }
        // Byte prefixes: String.hasPrefix compares canonically equivalent Characters, not what is dialled.
        if let prefix = config.denyPrefixes.first(where: { e164.utf8.starts(with: $0.utf8) }) { return .blockedPrefix(number: e164, prefix: prefix) }
        if plan.isInternational(e164) && !(allowInternational ?? config.allowInternational) { return .international(e164) }
        return nil
    }

    /// The deny prefixes, in this line's dial forms, against the digits that will be dialled.
    public func check(dialString: DialString) -> DialPolicy.Refusal? {
        for prefix in config.denyPrefixes {
            if plan.dialPrefixes(forE164Prefix: prefix).contains(where: { dialString.digits.utf8.starts(with: $0.utf8) }) {
                return .blockedDialString(dialString: dialString.digits, prefix: prefix)
            }
        }
        return nil
    }

    /// Everything about one destination, as it will be dialled now: the E.164 number, the dial string this
    /// line makes of it, and both against the policy. Returns the dial string to hand to the transport.
    public func checkDestination(e164: String, allowInternational: Bool?) -> Result<DialString, DialPolicy.Refusal> {
        if let refusal = check(e164: e164, allowInternational: allowInternational) { return .failure(refusal) }
        guard let dial = plan.dial(e164) else { return .failure(.notDiallable(e164)) }
        if let refusal = check(dialString: dial) { return .failure(refusal) }
        return .success(dial)
    }

    public func checkLimits(jobsToday: Int, pagesToday: Int, newJobs: Int, newPages: Int) -> DialPolicy.Refusal? {
        if jobsToday + newJobs > config.maxJobsPerSenderPerDay { return .jobLimit(limit: config.maxJobsPerSenderPerDay) }
        if pagesToday + newPages > config.maxPagesPerSenderPerDay {
            return .pageLimit(limit: config.maxPagesPerSenderPerDay, used: pagesToday, wanted: newPages)
        }
        return nil
    }
}
