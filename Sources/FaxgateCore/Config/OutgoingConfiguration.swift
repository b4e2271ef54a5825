import FaxRender
import Foundation

/// Mail → fax settings: where mail is read, how it is addressed, who may send, what may be dialled.
public struct OutgoingConfig: Sendable, Codable, Equatable {
    /// Domains whose local part is a fax number: `0301234567@fax.example.com`, `FAX=+4930…@fax.example.com`.
    public var faxDomains: [String] = []
    /// Addresses that take the number from the Subject ("Fax an 030 1234567: Befund").
    public var subjectAddresses: [String] = []
    public var mailboxes: [MailboxConfig] = []
    public var line: LineConfig = LineConfig()
    public var policy: DialPolicyConfig = DialPolicyConfig()
    public var retry: RetryConfig = RetryConfig()
    /// Limits applied to every incoming mail before it is parsed.
    public var maxMessageBytes: Int = 25 * 1024 * 1024
    public var maxPages: Int = 100
    /// Send a notice for every failed attempt, not only the final result.
    public var notifyEachRetry: Bool = false
    /// Ghostscript and image decoding limits.
    public var renderTimeoutSeconds: Int = 60
    public var renderMemoryMB: Int = 512
    /// `required` (default): no rendering when the converter sandbox (limits, no network) cannot be made;
    /// `allow_unsandboxed`: the admin's explicit choice to render anyway.
    public var renderSandbox: SandboxPolicy = .required
    /// The MTA whose Authentication-Results we believe, and where in the header it writes them.
    public var trustedMTA: TrustedMTAConfig?
    /// Refusal replies: per-recipient rate limit and the admin's digest of refusals nobody was told about.
    public var replies: ReplyConfig = ReplyConfig()
    /// Jobs interrupted on the line by a stopped node (issue 11).
    public var uncertain: UncertainConfig = UncertainConfig()

    enum CodingKeys: String, CodingKey {
        case faxDomains = "fax_domains", subjectAddresses = "subject_addresses", mailboxes, line, policy, retry
        case maxMessageBytes = "max_message_bytes", maxPages = "max_pages", notifyEachRetry = "notify_each_retry"
        case renderTimeoutSeconds = "render_timeout_seconds", renderMemoryMB = "render_memory_mb"
        case renderSandbox = "render_sandbox"
        case trustedMTA = "trusted_mta", replies
        case uncertain
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        faxDomains = try c.decodeIfPresent([String].self, forKey: .faxDomains) ?? []
        subjectAddresses = try c.decodeIfPresent([String].self, forKey: .subjectAddresses) ?? []
        mailboxes = try c.decodeIfPresent([MailboxConfig].self, forKey: .mailboxes) ?? []
        line = try c.decodeIfPresent(LineConfig.self, forKey: .line) ?? LineConfig()
        policy = try c.decodeIfPresent(DialPolicyConfig.self, forKey: .policy) ?? DialPolicyConfig()
        retry = try c.decodeIfPresent(RetryConfig.self, forKey: .retry) ?? RetryConfig()
        maxMessageBytes = try c.decodeIfPresent(Int.self, forKey: .maxMessageBytes) ?? maxMessageBytes
        maxPages = try c.decodeIfPresent(Int.self, forKey: .maxPages) ?? maxPages
        notifyEachRetry = try c.decodeIfPresent(Bool.self, forKey: .notifyEachRetry) ?? false
        renderTimeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .renderTimeoutSeconds) ?? renderTimeoutSeconds
        renderMemoryMB = try c.decodeIfPresent(Int.self, forKey: .renderMemoryMB) ?? renderMemoryMB
        renderSandbox = try c.decodeIfPresent(SandboxPolicy.self, forKey: .renderSandbox) ?? .required
        trustedMTA = try c.decodeIfPresent(TrustedMTAConfig.self, forKey: .trustedMTA)
        replies = try c.decodeIfPresent(ReplyConfig.self, forKey: .replies) ?? ReplyConfig()
        uncertain = try c.decodeIfPresent(UncertainConfig.self, forKey: .uncertain) ?? UncertainConfig()
    }
}

/// `outgoing.trusted_mta`: only an Authentication-Results header with `authserv_id` that sits above the Received
/// header written by one of `entry_hosts` (the MTA taking the mail from outside) counts; Received headers above
/// that line must all be by `entry_hosts` or `internal_hosts` (e.g. the mail store's LMTP delivery).
public struct TrustedMTAConfig: Sendable, Codable, Equatable {
    public var authservID: String?
    public var entryHosts: [String] = []
    public var internalHosts: [String] = []

    enum CodingKeys: String, CodingKey { case authservID = "authserv_id", entryHosts = "entry_hosts", internalHosts = "internal_hosts" }
    public init(authservID: String?, entryHosts: [String], internalHosts: [String] = []) {
        self.authservID = authservID; self.entryHosts = entryHosts; self.internalHosts = internalHosts
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        authservID = try c.decodeIfPresent(String.self, forKey: .authservID)
        entryHosts = try c.decodeIfPresent([String].self, forKey: .entryHosts) ?? []
        internalHosts = try c.decodeIfPresent([String].self, forKey: .internalHosts) ?? []
    }
}

/// `outgoing.replies`: how often one address may be answered, and how often the admin hears about refusals
/// that were not answered (backscatter protection).
public struct ReplyConfig: Sendable, Codable, Equatable {
    public var maxPerRecipientPerHour: Int = 10
    public var adminDigestMinutes: Int = 60

    enum CodingKeys: String, CodingKey {
        case maxPerRecipientPerHour = "max_per_recipient_per_hour", adminDigestMinutes = "admin_digest_minutes"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxPerRecipientPerHour = try c.decodeIfPresent(Int.self, forKey: .maxPerRecipientPerHour) ?? maxPerRecipientPerHour
        adminDigestMinutes = try c.decodeIfPresent(Int.self, forKey: .adminDigestMinutes) ?? adminDigestMinutes
    }
}

/// One IMAP mailbox the gateway watches.
public struct MailboxConfig: Sendable, Codable, Equatable {
    public var name: String
    public var host: String
    public var port: Int
    /// "starttls" (143) or "tls" (993).
    public var security: String = "tls"
    public var username: String
    public var password: String?
    public var passwordFile: String?
    public var caFile: String?
    public var folder: String = "INBOX"
    public var processedFolder: String = "Processed"
    public var rejectedFolder: String = "Rejected"
    /// Polling interval when the server has no IDLE, and the longest IDLE before re-checking.
    public var pollSeconds: Int = 60

    enum CodingKeys: String, CodingKey {
        case name, host, port, security, username, password, passwordFile = "password_file", caFile = "ca_file", folder
        case processedFolder = "processed_folder", rejectedFolder = "rejected_folder", pollSeconds = "poll_seconds"
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        host = try c.decode(String.self, forKey: .host)
        port = try c.decode(Int.self, forKey: .port)
        security = try c.decodeIfPresent(String.self, forKey: .security) ?? security
        username = try c.decode(String.self, forKey: .username)
        password = try c.decodeIfPresent(String.self, forKey: .password)
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
        caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
        folder = try c.decodeIfPresent(String.self, forKey: .folder) ?? folder
        processedFolder = try c.decodeIfPresent(String.self, forKey: .processedFolder) ?? processedFolder
        rejectedFolder = try c.decodeIfPresent(String.self, forKey: .rejectedFolder) ?? rejectedFolder
        pollSeconds = try c.decodeIfPresent(Int.self, forKey: .pollSeconds) ?? pollSeconds
    }
}

/// How numbers are written and dialled on this line.
public struct LineConfig: Sendable, Codable, Equatable {
    public var countryCode: String = "49"
    /// Area code without the national prefix, e.g. "30" for Berlin. Local numbers get it prepended.
    public var areaCode: String = ""
    public var internationalPrefix: String = "00"
    public var nationalPrefix: String = "0"
    /// Digit(s) a PBX needs for an outside line, e.g. "0"; empty for a direct line.
    public var outsideLinePrefix: String = ""

    enum CodingKeys: String, CodingKey {
        case countryCode = "country_code", areaCode = "area_code", internationalPrefix = "international_prefix"
        case nationalPrefix = "national_prefix", outsideLinePrefix = "outside_line_prefix"
    }
    public init() {}
    public init(countryCode: String, areaCode: String, internationalPrefix: String = "00", nationalPrefix: String = "0",
                outsideLinePrefix: String = "") {
        self.countryCode = countryCode; self.areaCode = areaCode; self.internationalPrefix = internationalPrefix
        self.nationalPrefix = nationalPrefix; self.outsideLinePrefix = outsideLinePrefix
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        countryCode = try c.decodeIfPresent(String.self, forKey: .countryCode) ?? countryCode
        areaCode = try c.decodeIfPresent(String.self, forKey: .areaCode) ?? areaCode
        internationalPrefix = try c.decodeIfPresent(String.self, forKey: .internationalPrefix) ?? internationalPrefix
        nationalPrefix = try c.decodeIfPresent(String.self, forKey: .nationalPrefix) ?? nationalPrefix
        outsideLinePrefix = try c.decodeIfPresent(String.self, forKey: .outsideLinePrefix) ?? outsideLinePrefix
    }
}

/// What may be dialled, and how much.
public struct DialPolicyConfig: Sendable, Codable, Equatable {
    /// E.164 prefixes never dialled (premium rate, directory services). Defaults cover Germany.
    public var denyPrefixes: [String] = ["+49900", "+49137", "+49118", "+49180", "+4919", "+49138"]
    /// International destinations (other country codes) are refused unless allowed here or per extension.
    public var allowInternational: Bool = false
    /// Per sender address and calendar day.
    public var maxJobsPerSenderPerDay: Int = 50
    public var maxPagesPerSenderPerDay: Int = 500

    enum CodingKeys: String, CodingKey {
        case denyPrefixes = "deny_prefixes", allowInternational = "allow_international"
        case maxJobsPerSenderPerDay = "max_jobs_per_sender_per_day", maxPagesPerSenderPerDay = "max_pages_per_sender_per_day"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        denyPrefixes = try c.decodeIfPresent([String].self, forKey: .denyPrefixes) ?? denyPrefixes
        allowInternational = try c.decodeIfPresent(Bool.self, forKey: .allowInternational) ?? false
        maxJobsPerSenderPerDay = try c.decodeIfPresent(Int.self, forKey: .maxJobsPerSenderPerDay) ?? maxJobsPerSenderPerDay
        maxPagesPerSenderPerDay = try c.decodeIfPresent(Int.self, forKey: .maxPagesPerSenderPerDay) ?? maxPagesPerSenderPerDay
    }
}

/// Retry delays by cause, as HylaFAX does it: busy soon, no answer later, protocol errors quickly.
public struct RetryConfig: Sendable, Codable, Equatable {
    public var busySeconds: Int = 180
    public var noAnswerSeconds: Int = 300
    public var protocolErrorSeconds: Int = 60
    public var networkFailureSeconds: Int = 120
    /// Dial attempts in total, and how many of them may fail with a fax protocol error.
    public var maxTries: Int = 6
    public var maxProtocolErrors: Int = 3
    /// A job not sent within this time fails (HylaFAX's kill time).
    public var killAfterHours: Int = 24

    enum CodingKeys: String, CodingKey {
        case busySeconds = "busy_seconds", noAnswerSeconds = "no_answer_seconds", protocolErrorSeconds = "protocol_error_seconds"
        case networkFailureSeconds = "network_failure_seconds", maxTries = "max_tries", maxProtocolErrors = "max_protocol_errors"
        case killAfterHours = "kill_after_hours"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        busySeconds = try c.decodeIfPresent(Int.self, forKey: .busySeconds) ?? busySeconds
        noAnswerSeconds = try c.decodeIfPresent(Int.self, forKey: .noAnswerSeconds) ?? noAnswerSeconds
        protocolErrorSeconds = try c.decodeIfPresent(Int.self, forKey: .protocolErrorSeconds) ?? protocolErrorSeconds
        networkFailureSeconds = try c.decodeIfPresent(Int.self, forKey: .networkFailureSeconds) ?? networkFailureSeconds
        maxTries = try c.decodeIfPresent(Int.self, forKey: .maxTries) ?? maxTries
        maxProtocolErrors = try c.decodeIfPresent(Int.self, forKey: .maxProtocolErrors) ?? maxProtocolErrors
        killAfterHours = try c.decodeIfPresent(Int.self, forKey: .killAfterHours) ?? killAfterHours
    }
}

/// Who may send through an extension, and as whom the fax goes out.
public struct SenderConfig: Sendable, Codable, Equatable {
    /// Addresses ("alice@example.com") and domains ("@example.com") allowed to send. Empty = nobody (default deny).
    public var allow: [String] = []
    /// Require the trusted MTA's Authentication-Results to show a pass for the sender's domain: none, dkim, spf,
    /// dkim_or_spf (default: a From address alone proves nothing).
    public var requireAuthentication: String = "dkim_or_spf"
    /// authserv-id of the MTA whose Authentication-Results header we trust, for this extension; default
    /// `outgoing.trusted_mta.authserv_id`. Where the header must sit is set in `outgoing.trusted_mta`.
    public var trustedAuthservID: String?
    /// Optional shared secret the sender puts into the address (`0301234567+SECRET@fax…`) or the Subject (`#SECRET`).
    public var secret: String?
    /// Our number signalled on outgoing calls (MSN/DDI); default: the extension's first number.
    public var callingNumber: String?
    public var hideCallingNumber: Bool = false
    /// Allow destinations outside the country for these senders.
    public var allowInternational: Bool?
    /// Add a cover page from the template unless the mail says `X-Fax-Cover: no`.
    public var coverPage: Bool = false
    /// Whether the mail's own text is faxed (quotes and signature never are); `X-Fax-Body: yes|no` overrides it.
    public var faxBody: FaxBody = .auto

    /// auto: the text only when there is no attachment (with a cover page, a short text goes into its message
    /// field); always: also with attachments; never: attachments only.
    public enum FaxBody: String, Sendable, Codable, Equatable { case auto, always, never }

    enum CodingKeys: String, CodingKey {
        case allow, requireAuthentication = "require_authentication", trustedAuthservID = "trusted_authserv_id", secret
        case callingNumber = "calling_number", hideCallingNumber = "hide_calling_number"
        case allowInternational = "allow_international", coverPage = "cover_page"
        case faxBody = "fax_body"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        allow = try c.decodeIfPresent([String].self, forKey: .allow) ?? []
        requireAuthentication = try c.decodeIfPresent(String.self, forKey: .requireAuthentication) ?? requireAuthentication
        trustedAuthservID = try c.decodeIfPresent(String.self, forKey: .trustedAuthservID)
        secret = try c.decodeIfPresent(String.self, forKey: .secret)
        callingNumber = try c.decodeIfPresent(String.self, forKey: .callingNumber)
        hideCallingNumber = try c.decodeIfPresent(Bool.self, forKey: .hideCallingNumber) ?? false
        allowInternational = try c.decodeIfPresent(Bool.self, forKey: .allowInternational)
        coverPage = try c.decodeIfPresent(Bool.self, forKey: .coverPage) ?? false
        faxBody = try c.decodeIfPresent(FaxBody.self, forKey: .faxBody) ?? .auto
    }
}
