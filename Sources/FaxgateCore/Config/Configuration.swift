import Foundation

/// The whole gateway configuration, as read from one YAML file (see contrib/faxgate.yaml).
/// Keys are snake_case in the file. Everything that is optional has a documented default.
public struct Configuration: Sendable, Codable, Equatable {
    /// Where received documents and the mail outbox live. Must be on a local file system.
    public var spoolDirectory: String
    /// Hostname used in Message-IDs and SMTP HELO. Default: the machine's host name.
    public var hostname: String?
    public var log: LogSettings
    public var storage: StorageSettings
    public var capi: CAPISettings
    public var smtp: SMTPConfig
    public var mail: MailSettings
    public var extensions: [ExtensionConfig]
    /// Name of the extension that takes calls to numbers no extension claims; nil = reject those calls.
    public var catchAll: String?
    /// Retention, redaction and support snapshots (Privacy/PrivacyConfiguration.swift).
    public var retention = RetentionSettings()
    public var privacy = PrivacySettings()
    public var snapshot = SnapshotSettings()
    /// Mail → fax. Absent = the gateway only receives.
    public var outgoing: OutgoingConfig
    /// Bounds on one received fax call.
    public var reception = ReceptionSettings()
    /// The web pages, /metrics and /health.
    public var web = WebSettings()
    /// This gateway among several on one database (PostgreSQL).
    public var node = NodeSettings()

    enum CodingKeys: String, CodingKey {
        case spoolDirectory = "spool_directory", hostname, log, storage, capi, smtp, mail, extensions
        case retention, privacy, snapshot
        case catchAll = "catch_all", outgoing
        case reception, web, node
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        spoolDirectory = try c.decode(String.self, forKey: .spoolDirectory)
        hostname = try c.decodeIfPresent(String.self, forKey: .hostname)
        log = try c.decodeIfPresent(LogSettings.self, forKey: .log) ?? LogSettings()
        storage = try c.decodeIfPresent(StorageSettings.self, forKey: .storage) ?? StorageSettings()
        capi = try c.decodeIfPresent(CAPISettings.self, forKey: .capi) ?? CAPISettings()
        smtp = try c.decode(SMTPConfig.self, forKey: .smtp)
        mail = try c.decode(MailSettings.self, forKey: .mail)
        extensions = try c.decode([ExtensionConfig].self, forKey: .extensions)
        catchAll = try c.decodeIfPresent(String.self, forKey: .catchAll)
        retention = try c.decodeIfPresent(RetentionSettings.self, forKey: .retention) ?? RetentionSettings()
        privacy = try c.decodeIfPresent(PrivacySettings.self, forKey: .privacy) ?? PrivacySettings()
        snapshot = try c.decodeIfPresent(SnapshotSettings.self, forKey: .snapshot) ?? SnapshotSettings()
        outgoing = try c.decodeIfPresent(OutgoingConfig.self, forKey: .outgoing) ?? OutgoingConfig()
        reception = try c.decodeIfPresent(ReceptionSettings.self, forKey: .reception) ?? ReceptionSettings()
        web = try c.decodeIfPresent(WebSettings.self, forKey: .web) ?? WebSettings()
        node = try c.decodeIfPresent(NodeSettings.self, forKey: .node) ?? NodeSettings()
    }
}

/// `reception:` — what one incoming fax call may bring before the gateway stops storing and hangs up;
/// the pages that arrived are still mailed, with the reason.
public struct ReceptionSettings: Sendable, Codable, Equatable {
    public var maxMB: Int = 50
    public var maxPages: Int = 200
    public var maxCallMinutes: Int = 60
    /// A call to a number no extension has (and no catch-all): "reject" it (unallocated number: the caller hears
    /// at once that the number is wrong) or "ignore" it, so another device on the same line or box (the phones
    /// behind a FRITZ!Box or a PBX) may take it.
    public var unknownNumbers: String = "reject"

    enum CodingKeys: String, CodingKey {
        case maxMB = "max_mb", maxPages = "max_pages", maxCallMinutes = "max_call_minutes", unknownNumbers = "unknown_numbers"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxMB = try c.decodeIfPresent(Int.self, forKey: .maxMB) ?? maxMB
        maxPages = try c.decodeIfPresent(Int.self, forKey: .maxPages) ?? maxPages
        maxCallMinutes = try c.decodeIfPresent(Int.self, forKey: .maxCallMinutes) ?? maxCallMinutes
        unknownNumbers = try c.decodeIfPresent(String.self, forKey: .unknownNumbers) ?? unknownNumbers
    }

    /// Anything but "ignore" rejects: an unreadable value keeps the behaviour that existed before the key.
    public var rejectsUnknownNumbers: Bool { unknownNumbers != "ignore" }

    public var limits: ReceptionLimits {
        ReceptionLimits(maxBytes: max(1, maxMB) * 1_048_576, maxPages: max(1, maxPages), maxDuration: .seconds(max(1, maxCallMinutes) * 60))
    }
}

public struct LogSettings: Sendable, Codable, Equatable {
    /// trace, debug, info, notice, warning, error, critical
    public var level: String = "info"
    /// Redaction rule sets applied to log lines at `redactFrom` and above. Names come from redaction plugins.
    public var redaction: [String] = ["phone", "email"]
    /// Lowest level whose lines are redacted. Debug lines stay raw for a developer on the machine only.
    public var redactFrom: String = "info"
    /// Daily log files (always redacted) in addition to stderr; default <spool_directory>/log.
    public var directory: String?
    public var files: Bool = true

    enum CodingKeys: String, CodingKey { case level, redaction, redactFrom = "redact_from", directory, files }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        level = try c.decodeIfPresent(String.self, forKey: .level) ?? level
        redaction = try c.decodeIfPresent([String].self, forKey: .redaction) ?? redaction
        redactFrom = try c.decodeIfPresent(String.self, forKey: .redactFrom) ?? redactFrom
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        files = try c.decodeIfPresent(Bool.self, forKey: .files) ?? true
    }
}

public struct StorageSettings: Sendable, Codable, Equatable {
    /// Storage plugin: "sqlite" (embedded default) or "postgres" (several nodes on one database).
    public var driver: String = "sqlite"
    /// SQLite database file. Default: <spool_directory>/faxgate.sqlite
    public var path: String?
    /// PostgreSQL (driver: postgres). Absent with driver postgres is a configuration error.
    public var postgres: PostgresSettings?
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        driver = try c.decodeIfPresent(String.self, forKey: .driver) ?? driver
        path = try c.decodeIfPresent(String.self, forKey: .path)
        postgres = try c.decodeIfPresent(PostgresSettings.self, forKey: .postgres)
    }
}

/// `storage.postgres`: where the shared database is and how to reach it safely.
public struct PostgresSettings: Sendable, Codable, Equatable {
    public var host: String = "127.0.0.1"
    public var port: Int = 5432
    public var database: String = "faxgate"
    public var user: String = "faxgate"
    /// File whose first line is the password (0600); never the password itself in the configuration.
    public var passwordFile: String?
    /// "verify-full" (default: TLS, certificate chain and host name checked), "require" (TLS, certificate not
    /// checked: refused unless the host is loopback), "disable" (loopback or a Unix socket only).
    public var tls: String = "verify-full"
    /// CA certificate (PEM) for verify-full; default: the system's trust store.
    public var caFile: String?
    /// Connections in this node's pool (besides the one that holds the node's advisory locks and LISTENs).
    public var maxConnections: Int = 8
    enum CodingKeys: String, CodingKey {
        case host, port, database, user, passwordFile = "password_file", tls, caFile = "ca_file", maxConnections = "max_connections"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.decodeIfPresent(String.self, forKey: .host) ?? host
        port = try c.decodeIfPresent(Int.self, forKey: .port) ?? port
        database = try c.decodeIfPresent(String.self, forKey: .database) ?? database
        user = try c.decodeIfPresent(String.self, forKey: .user) ?? user
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
        tls = try c.decodeIfPresent(String.self, forKey: .tls) ?? tls
        caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? maxConnections
    }
}

/// `node`: this gateway among several on one PostgreSQL database (issue 11). A single SQLite installation is one
/// node and needs none of it.
public struct NodeSettings: Sendable, Codable, Equatable {
    /// Unique per node; default: the host name. Leases, the journal and the audit trail name it.
    public var id: String?
    /// A claimed job is this node's for this long unless heartbeats renew it; a node dead longer loses its
    /// claims (jobs on the line become `uncertain`).
    public var leaseSeconds: Int = 60
    /// How often the node renews its leases and checks its database connection (fencing).
    public var heartbeatSeconds: Int = 10
    enum CodingKeys: String, CodingKey { case id, leaseSeconds = "lease_seconds", heartbeatSeconds = "heartbeat_seconds" }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decodeIfPresent(String.self, forKey: .id)
        leaseSeconds = try c.decodeIfPresent(Int.self, forKey: .leaseSeconds) ?? leaseSeconds
        heartbeatSeconds = try c.decodeIfPresent(Int.self, forKey: .heartbeatSeconds) ?? heartbeatSeconds
    }
    /// The id in effect: configured, else the host name.
    public var effectiveID: String {
        if let id, !id.isEmpty { return id }
        return ProcessInfo.processInfo.hostName
    }
}

public struct CAPISettings: Sendable, Codable, Equatable {
    /// libcapi20 module: "standard" (kernel /dev/capi20), "rcapi" (CAPI over TCP), "fritzbox".
    public var driver: String = "standard"
    public var host: String?
    /// TCP port for rcapi/fritzbox. libcapi20 keeps it in a signed short: below 32768.
    public var port: Int?
    /// Controllers to listen on; empty = every controller the profile reports.
    public var controllers: [Int] = []
    /// Also answer 3.1 kHz audio calls (CIP 4) as fax: some fax machines signal that.
    public var answerAudioAsFax: Bool = false
    /// Who runs T.30 for every controller: "controller" (its fax firmware, B protocol 4/4/4), "software" (our
    /// spandsp modem over a transparent B-channel, 1/1/0) or "auto" (software when the profile lacks T.30, as a
    /// FRITZ!Box reports). The plugin interprets the words; the core only carries them.
    public var faxEngine: String = "auto"
    /// Per-controller override of `faxEngine`, by controller number.
    public var faxEngines: [Int: String] = [:]

    enum CodingKeys: String, CodingKey {
        case driver, host, port, controllers, answerAudioAsFax = "answer_audio_as_fax"
        case faxEngine = "fax_engine", faxEngines = "fax_engines"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        driver = try c.decodeIfPresent(String.self, forKey: .driver) ?? driver
        host = try c.decodeIfPresent(String.self, forKey: .host)
        port = try c.decodeIfPresent(Int.self, forKey: .port)
        controllers = try c.decodeIfPresent([Int].self, forKey: .controllers) ?? []
        answerAudioAsFax = try c.decodeIfPresent(Bool.self, forKey: .answerAudioAsFax) ?? false
        faxEngine = try c.decodeIfPresent(String.self, forKey: .faxEngine) ?? faxEngine
        faxEngines = try c.decodeIfPresent([Int: String].self, forKey: .faxEngines) ?? [:]
    }
}

public struct SMTPConfig: Sendable, Codable, Equatable {
    public var host: String
    public var port: Int
    /// "starttls" (default), "tls" (implicit TLS, smtps) or "none" (only allowed for 127.0.0.1/localhost).
    public var security: String = "starttls"
    public var username: String?
    public var password: String?
    /// File holding the password (first line). Preferred over `password` so the config can be world-readable.
    public var passwordFile: String?
    /// PEM file with the CA(s) that sign the server's certificate; default: the system store.
    public var caFile: String?
    public var timeoutSeconds: Int = 60
    /// Retry schedule for mail the server did not accept: first delay, doubling up to the maximum.
    public var retryInitialSeconds: Int = 30
    public var retryMaxSeconds: Int = 1800
    /// After this long, a message that never got through is reported in the journal as undeliverable
    /// and kept in spool/outbox/failed — never deleted.
    public var giveUpAfterHours: Int = 120

    enum CodingKeys: String, CodingKey {
        case host, port, security, username, password
        case passwordFile = "password_file", caFile = "ca_file", timeoutSeconds = "timeout_seconds"
        case retryInitialSeconds = "retry_initial_seconds", retryMaxSeconds = "retry_max_seconds"
        case giveUpAfterHours = "give_up_after_hours"
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.decode(String.self, forKey: .host)
        port = try c.decode(Int.self, forKey: .port)
        security = try c.decodeIfPresent(String.self, forKey: .security) ?? security
        username = try c.decodeIfPresent(String.self, forKey: .username)
        password = try c.decodeIfPresent(String.self, forKey: .password)
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
        caFile = try c.decodeIfPresent(String.self, forKey: .caFile)
        timeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .timeoutSeconds) ?? timeoutSeconds
        retryInitialSeconds = try c.decodeIfPresent(Int.self, forKey: .retryInitialSeconds) ?? retryInitialSeconds
        retryMaxSeconds = try c.decodeIfPresent(Int.self, forKey: .retryMaxSeconds) ?? retryMaxSeconds
        giveUpAfterHours = try c.decodeIfPresent(Int.self, forKey: .giveUpAfterHours) ?? giveUpAfterHours
    }
}

public struct MailSettings: Sendable, Codable, Equatable {
    /// From header of every mail the gateway sends, e.g. "Faxgate <fax@example.com>".
    public var from: String
    /// Envelope sender (MAIL FROM); default: the address in `from`.
    public var envelopeFrom: String?
    /// Where failed receptions for numbers without an extension are reported (optional).
    public var adminAddress: String?

    enum CodingKeys: String, CodingKey { case from, envelopeFrom = "envelope_from", adminAddress = "admin_address" }
}

public struct ExtensionConfig: Sendable, Codable, Equatable {
    public var name: String
    /// MSNs/DDIs: single numbers ("100", "0301234567") or ranges ("120-129").
    public var numbers: [String]
    public var email: [String]
    /// Attachment formats: "pdf" (default), "tiff".
    public var formats: [String] = ["pdf"]
    /// "de" or "en".
    public var language: String = "de"
    /// Our station id (CSID) sent to the remote fax, ≤ 20 characters: digits, +, space.
    public var stationID: String?
    /// Headline printed by the remote on pages we send (next issue); sent in the B3 config.
    public var headline: String?
    /// Ask for fine resolution (196 lpi).
    public var fine: Bool = true
    public var ringDelaySeconds: Int = 0
    /// Who may send faxes through this extension (mail → fax).
    public var senders: SenderConfig = SenderConfig()
    /// Voice calls to this extension's numbers (VoicemailConfiguration.swift); nil = not taken.
    public var voicemail: VoicemailConfig?
    /// Page size of received faxes as PDF: "a4" (default: scaled to fit A4, prints at 100 % without cut edges)
    /// or "exact" (the fax's physical size, 215 mm wide).
    public var pdfPageSize: String = "a4"

    enum CodingKeys: String, CodingKey {
        case name, numbers, email, formats, language, stationID = "station_id", headline, fine
        case ringDelaySeconds = "ring_delay_seconds", senders, voicemail, pdfPageSize = "pdf_page_size"
    }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        numbers = try c.decode([String].self, forKey: .numbers)
        if let one = try? c.decode(String.self, forKey: .email) { email = [one] } else {
            email = try c.decode([String].self, forKey: .email)
        }
        formats = try c.decodeIfPresent([String].self, forKey: .formats) ?? formats
        language = try c.decodeIfPresent(String.self, forKey: .language) ?? language
        stationID = try c.decodeIfPresent(String.self, forKey: .stationID)
        headline = try c.decodeIfPresent(String.self, forKey: .headline)
        fine = try c.decodeIfPresent(Bool.self, forKey: .fine) ?? fine
        ringDelaySeconds = try c.decodeIfPresent(Int.self, forKey: .ringDelaySeconds) ?? 0
        senders = try c.decodeIfPresent(SenderConfig.self, forKey: .senders) ?? SenderConfig()
        voicemail = try c.decodeIfPresent(VoicemailConfig.self, forKey: .voicemail)
        pdfPageSize = try c.decodeIfPresent(String.self, forKey: .pdfPageSize) ?? pdfPageSize
    }
}
