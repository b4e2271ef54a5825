import Foundation

/// A person who logs in to the web pages. Admins run the gateway; users see the faxes, voicemails and jobs
/// of their extensions only. Created by `faxgate user add` (no default account exists).
public struct WebUser: Sendable, Equatable {
    public enum Role: String, Sendable, Codable, CaseIterable { case admin, user }

    public var id: Int64?
    /// Login name: lowercase ASCII letters, digits, `.`, `-`, `_`, 1–64 characters. Unique.
    public var name: String
    public var role: Role
    /// Extension names (`extensions[].name`) whose items this user sees; admins see everything.
    public var extensions: [String]
    /// bcrypt hash (hummingbird-auth's Bcrypt, cost 12).
    public var passwordHash: String
    /// Set by `faxgate user add` / `reset` for a one-time password: the next login must choose a new one.
    public var mustChangePassword: Bool
    /// TOTP shared secret (RFC 6238, SHA-1, 30 s, 6 digits); nil = not enrolled. Required for admins.
    public var totpSecret: [UInt8]?
    /// The last accepted TOTP time step: a code is accepted once (replay protection).
    public var totpLastCounter: Int64?
    /// bcrypt hashes of the unused recovery codes; one is removed when it is used.
    public var recoveryCodeHashes: [String]
    public var disabled: Bool
    /// Consecutive failed logins and the lockout they caused (back-off doubles per failure past the threshold).
    public var failedLogins: Int
    public var lockedUntil: Date?
    /// "de" or "en"; nil = the browser's Accept-Language.
    public var language: String?
    public var createdAt: Date
    public var passwordChangedAt: Date
    /// When the newest session began (storage sets it in `insertSession`; `updateUser` leaves it alone).
    public var lastLoginAt: Date? = nil

    public init(id: Int64? = nil, name: String, role: Role, extensions: [String], passwordHash: String,
                mustChangePassword: Bool = true, totpSecret: [UInt8]? = nil, totpLastCounter: Int64? = nil,
                recoveryCodeHashes: [String] = [], disabled: Bool = false, failedLogins: Int = 0, lockedUntil: Date? = nil,
                language: String? = nil, createdAt: Date = Date(), passwordChangedAt: Date = Date()) {
        self.id = id; self.name = name; self.role = role; self.extensions = extensions; self.passwordHash = passwordHash
        self.mustChangePassword = mustChangePassword; self.totpSecret = totpSecret; self.totpLastCounter = totpLastCounter
        self.recoveryCodeHashes = recoveryCodeHashes; self.disabled = disabled; self.failedLogins = failedLogins
        self.lockedUntil = lockedUntil; self.language = language; self.createdAt = createdAt; self.passwordChangedAt = passwordChangedAt
    }

    /// Whether this user may see an item of `extensionName` (nil = no extension, e.g. an unrouted call: admins only).
    public func maySee(extensionName: String?) -> Bool {
        if role == .admin { return true }
        guard let name = extensionName else { return false }
        return extensions.contains(name)
    }
}

/// A login session. The cookie carries a random id; storage keeps only its SHA-256 (`idHash`), so a copy of the
/// database does not log anyone in.
public struct WebSession: Sendable, Equatable {
    public var idHash: String
    public var userID: Int64
    public var createdAt: Date
    public var lastSeenAt: Date
    /// Password accepted; the second factor too (or the user has none and is not an admin).
    public var secondFactorVerified: Bool
    /// Per-session CSRF token, compared in constant time on every POST.
    public var csrfToken: String
    public var clientAddress: String

    public init(idHash: String, userID: Int64, createdAt: Date, lastSeenAt: Date, secondFactorVerified: Bool,
                csrfToken: String, clientAddress: String) {
        self.idHash = idHash; self.userID = userID; self.createdAt = createdAt; self.lastSeenAt = lastSeenAt
        self.secondFactorVerified = secondFactorVerified; self.csrfToken = csrfToken; self.clientAddress = clientAddress
    }
}

/// One audited action: who, when, what, from where. Written for every admin action and every login event.
public struct AuditEntry: Sendable, Equatable {
    public var id: Int64?
    public var at: Date
    /// Login name, or "cli:<unix user>" for commands, or "-" before login.
    public var actor: String
    public var clientAddress: String
    /// A stable key such as `login.failed`, `job.cancel`, `extension.update`, `snapshot.create`.
    public var action: String
    /// What it was done to (`job 12`, `extension sales`, `user anna`).
    public var target: String
    /// What changed, in words (never a password, secret or passphrase).
    public var detail: String

    public init(id: Int64? = nil, at: Date = Date(), actor: String, clientAddress: String, action: String, target: String, detail: String = "") {
        self.id = id; self.at = at; self.actor = actor; self.clientAddress = clientAddress; self.action = action
        self.target = target; self.detail = detail
    }
}

/// A filtered, paged look at the journal (the web's lists). `nil` fields do not filter.
public struct CallQuery: Sendable, Equatable {
    /// Only calls of these extensions (a user's); nil = all (admin). An empty set (or empty `kinds`/`states`)
    /// matches nothing, never everything.
    public var extensions: Set<String>?
    public var direction: CallRecord.Direction?
    public var kinds: Set<CallRecord.Kind>?
    public var states: Set<CallRecord.State>?
    /// Substring of the calling number digits or the remote station id.
    public var text: String?
    /// Half-open range of `startedAt`: from ≤ startedAt < to.
    public var from: Date?
    public var to: Date?
    public var minPages: Int?
    /// Keyset paging: the calls after this one in the list's order (newest first: startedAt, then id, descending).
    public var beforeID: Int64?
    public var limit: Int

    public init(extensions: Set<String>? = nil, direction: CallRecord.Direction? = nil, kinds: Set<CallRecord.Kind>? = nil,
                states: Set<CallRecord.State>? = nil, text: String? = nil, from: Date? = nil, to: Date? = nil,
                minPages: Int? = nil, beforeID: Int64? = nil, limit: Int = 50) {
        self.extensions = extensions; self.direction = direction; self.kinds = kinds; self.states = states; self.text = text
        self.from = from; self.to = to; self.minPages = minPages; self.beforeID = beforeID; self.limit = limit
    }
}

/// A filtered, paged look at outgoing jobs. `nil` fields do not filter.
public struct JobQuery: Sendable, Equatable {
    public var extensions: Set<String>?
    public var states: Set<FaxJob.State>?
    /// Substring of the number or the sender address.
    public var text: String?
    /// Keyset paging: the jobs after this one in the list's order (newest first: createdAt, then id, descending).
    public var beforeID: Int64?
    public var limit: Int
    /// Half-open range of `createdAt`: from ≤ createdAt < to (the admin journal's date filter).
    public var from: Date?
    public var to: Date?

    public init(extensions: Set<String>? = nil, states: Set<FaxJob.State>? = nil, text: String? = nil, beforeID: Int64? = nil, limit: Int = 50,
                from: Date? = nil, to: Date? = nil) {
        self.extensions = extensions; self.states = states; self.text = text; self.beforeID = beforeID; self.limit = limit
        self.from = from; self.to = to
    }
}

/// A versioned setting document (e.g. the office settings the web edits). Writes name the version they read,
/// so two admins never overwrite each other.
public struct StoredSetting: Sendable, Equatable {
    public var key: String
    public var value: String
    public var version: Int
    public var updatedAt: Date
    public var updatedBy: String
    public init(key: String, value: String, version: Int, updatedAt: Date, updatedBy: String) {
        self.key = key; self.value = value; self.version = version; self.updatedAt = updatedAt; self.updatedBy = updatedBy
    }
}

public struct SettingVersionConflict: Error, Sendable, CustomStringConvertible {
    public var key: String
    public var actual: Int?
    public init(key: String, actual: Int?) { self.key = key; self.actual = actual }
    public var description: String { "setting \(key) was changed meanwhile (now version \(actual.map(String.init) ?? "none"))" }
}

public struct DuplicateUserName: Error, Sendable, CustomStringConvertible {
    public var name: String
    public init(name: String) { self.name = name }
    public var description: String { "a user named \(name) exists already" }
}
