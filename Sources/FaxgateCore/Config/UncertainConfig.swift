import Foundation

/// `outgoing.uncertain`: what happens to a job whose node stopped during the call (`FaxJob.State.uncertain`).
/// The remote may have printed some or all pages, so the default is that a person decides.
public struct UncertainConfig: Sendable, Codable, Equatable {
    public enum Policy: String, Sendable, Codable, CaseIterable {
        /// Stays uncertain until `faxgate queue resolve <id> --resend|--resend-remaining|--done|--fail`.
        case admin
        /// Dialled again (the whole document) `minutes` after it became uncertain, unless resolved before.
        case resendAfter = "resend_after"
        /// A new job with the pages the remote had not confirmed; the uncertain job ends.
        case resendRemaining = "resend_remaining"
    }
    /// Kept as written so the validator can name a wrong value with its line; `effectivePolicy` reads it.
    public var policy: String = Policy.admin.rawValue
    public var minutes: Int = 30

    enum CodingKeys: String, CodingKey { case policy, minutes }
    public init(policy: Policy = .admin, minutes: Int = 30) { self.policy = policy.rawValue; self.minutes = minutes }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        policy = try c.decodeIfPresent(String.self, forKey: .policy) ?? policy
        minutes = try c.decodeIfPresent(Int.self, forKey: .minutes) ?? minutes
    }

    /// An unknown value (refused by `config check`) acts as `admin`: never dial again without a decision.
    public var effectivePolicy: Policy { Policy(rawValue: policy) ?? .admin }
}
