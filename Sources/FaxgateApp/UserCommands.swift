import ArgumentParser
import FaxgateCore
import Foundation
import FaxgateWeb
import HummingbirdBcrypt

/// `faxgate user …`: the web accounts. There is no default account; the first admin is made here. Every change
/// is written to the audit trail as "cli:<unix user>" from "local". These commands write to the database (they
/// are admin actions) and work while `serve` runs: SQLite in WAL mode lets both write, one transaction at a time.
struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage the web accounts (admins and users).",
        subcommands: [Add.self, List.self, Disable.self, Enable.self, Reset.self, Remove.self, Extensions.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a user; prints a one-time password (shown once) unless --password-stdin gives one.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "Login name: lowercase letters, digits, '.', '-', '_' (1–64).") var name: String
        @Flag(help: "An admin (sees and runs everything; must enrol TOTP at the first login).") var admin = false
        @Option(name: .customLong("extension"), help: "An extension whose faxes, voicemails and jobs the user sees; repeat for several.")
        var extensions: [String] = []
        @Flag(help: "Read the password from the first line of standard input (at least 12 characters).") var passwordStdin = false

        func run() async throws {
            let config = try options.loadOrExit()
            try UserAdmin.validate(name: name)
            let password = passwordStdin ? try UserAdmin.readPassword(for: name) : UserAdmin.oneTimePassword()
            try await UserAdmin.withStorage(config) { storage in
                let names = try await UserAdmin.validExtensions(extensions, config: config, configPath: options.path, storage: storage)
                let now = Date()
                let user = WebUser(name: name, role: admin ? .admin : .user, extensions: names, passwordHash: UserAdmin.hash(password),
                                   mustChangePassword: !passwordStdin, createdAt: now, passwordChangedAt: now)
                do {
                    _ = try await storage.insertUser(user)
                } catch is DuplicateUserName {
                    throw UserAdmin.Failure("a user named \(name) exists already (faxgate user reset \(name) gives a new password)")
                }
                try await UserAdmin.audit(storage, "user.add", name,
                                          "role \(user.role.rawValue), extensions: \(UserAdmin.list(names))\(passwordStdin ? "" : ", one-time password")")
                print("user \(name) added (\(user.role.rawValue); extensions: \(admin ? "all (admin)" : UserAdmin.list(names)))")
                if !passwordStdin {
                    print("one-time password: \(password)")
                    print("It is shown only now. \(name) must choose a new password at the first login\(admin ? " and enrol a second factor (TOTP)" : "").")
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the users (never a password, secret or hash).")
        @OptionGroup var options: ConfigOption
        @Flag(help: "One JSON object per line.") var json = false

        /// What `list` shows of a user: state, not credentials.
        struct Listing: Encodable {
            var name: String
            var role: String
            var extensions: [String]
            var totpEnrolled: Bool
            var recoveryCodesLeft: Int
            var disabled: Bool
            var mustChangePassword: Bool
            var failedLogins: Int
            var lockedUntil: Date?
            var lastLoginAt: Date?
            var createdAt: Date
            var passwordChangedAt: Date
        }

        func run() async throws {
            let config = try options.loadOrExit()
            let users = try await UserAdmin.readOnlyStorage(config)?.users() ?? []
            let now = Date()
            let listings = users.map { u in
                Listing(name: u.name, role: u.role.rawValue, extensions: u.extensions, totpEnrolled: u.totpSecret != nil,
                        recoveryCodesLeft: u.recoveryCodeHashes.count, disabled: u.disabled, mustChangePassword: u.mustChangePassword,
                        failedLogins: u.failedLogins, lockedUntil: u.lockedUntil.flatMap { $0 > now ? $0 : nil },
                        lastLoginAt: u.lastLoginAt, createdAt: u.createdAt, passwordChangedAt: u.passwordChangedAt)
            }
            if json { return try TextOutput.printJSONLines(listings) }
            if listings.isEmpty {
                print("no users yet: faxgate user add --admin NAME")
                return
            }
            var rows = [["NAME", "ROLE", "EXTENSIONS", "TOTP", "STATE", "LOCKED UNTIL", "LAST LOGIN"]]
            for l in listings {
                let state = l.disabled ? "disabled" : l.mustChangePassword ? "new password due" : "active"
                rows.append([l.name, l.role, l.role == "admin" ? "(all)" : UserAdmin.list(l.extensions),
                             l.totpEnrolled ? "yes (\(l.recoveryCodesLeft) recovery)" : "no", state,
                             l.lockedUntil.map(JournalTable.time) ?? "-", l.lastLoginAt.map(JournalTable.time) ?? "never"])
            }
            print(TextOutput.table(rows))
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user and end their sessions.")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        func run() async throws {
            try await UserAdmin.change(name, options: options) { user, storage in
                user.disabled = true
                try await storage.updateUser(user)
                let ended = try await storage.deleteSessions(userID: user.id!)
                try await UserAdmin.audit(storage, "user.disable", user.name, "\(ended) session(s) ended")
                print("user \(user.name) disabled; \(ended) session(s) ended")
            }
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled user again.")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        func run() async throws {
            try await UserAdmin.change(name, options: options) { user, storage in
                user.disabled = false
                try await storage.updateUser(user)
                try await UserAdmin.audit(storage, "user.enable", user.name, "")
                print("user \(user.name) enabled")
            }
        }
    }

    struct Reset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "New one-time password, lockout cleared, sessions ended; --totp also removes the second factor.")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        @Flag(help: "Also remove TOTP and the recovery codes: the user enrols again at the next login.") var totp = false
        @Flag(help: "Read the new password from standard input instead of printing a one-time password.") var passwordStdin = false

        func run() async throws {
            let password = passwordStdin ? try UserAdmin.readPassword(for: name) : UserAdmin.oneTimePassword()
            try await UserAdmin.change(name, options: options) { user, storage in
                user.passwordHash = UserAdmin.hash(password)
                user.mustChangePassword = !passwordStdin
                user.passwordChangedAt = Date()
                user.failedLogins = 0
                user.lockedUntil = nil
                if totp {
                    user.totpSecret = nil
                    user.totpLastCounter = nil
                    user.recoveryCodeHashes = []
                }
                try await storage.updateUser(user)
                let ended = try await storage.deleteSessions(userID: user.id!)
                try await UserAdmin.audit(storage, "user.reset", user.name,
                                          "new password, lockout cleared\(totp ? ", TOTP and recovery codes removed" : ""), \(ended) session(s) ended")
                print("user \(user.name): password reset, lockout cleared\(totp ? ", TOTP removed" : ""); \(ended) session(s) ended")
                if !passwordStdin {
                    print("one-time password: \(password)")
                    print("It is shown only now. \(user.name) must choose a new password at the next login.")
                }
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user with their sessions and read marks (the audit trail keeps the name).")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        func run() async throws {
            try await UserAdmin.change(name, options: options) { user, storage in
                try await storage.deleteUser(id: user.id!)
                try await UserAdmin.audit(storage, "user.remove", user.name, "role \(user.role.rawValue)")
                print("user \(user.name) removed")
            }
        }
    }

    struct Extensions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set the extensions a user sees (none given: none).")
        @OptionGroup var options: ConfigOption
        @Argument var name: String
        @Argument(help: "Extension names as in the configuration.") var extensions: [String] = []
        func run() async throws {
            let config = try options.loadOrExit()
            try await UserAdmin.change(name, options: options, config: config) { user, storage in
                let names = try await UserAdmin.validExtensions(extensions, config: config, configPath: options.path, storage: storage)
                let before = user.extensions
                user.extensions = names
                try await storage.updateUser(user)
                try await UserAdmin.audit(storage, "user.extensions", user.name, "\(UserAdmin.list(names)) (was: \(UserAdmin.list(before)))")
                print("user \(user.name): extensions \(UserAdmin.list(names))")
            }
        }
    }
}

/// `faxgate audit`: the audit trail (web admin actions, logins, these commands), newest first.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "List the audit trail, newest first.")
    @OptionGroup var options: ConfigOption
    @Option(name: .shortAndLong, help: "How many entries.") var limit = 50
    @Option(help: "Only this actor (a login name, or cli:<unix user>).") var actor: String?
    @Option(help: "Only actions starting with this (e.g. user. or login.).") var action: String?
    @Flag(help: "One JSON object per line.") var json = false

    struct Listing: Encodable {
        var id: Int64?
        var at: Date
        var actor: String
        var clientAddress: String
        var action: String
        var target: String
        var detail: String
    }

    func run() async throws {
        let config = try options.loadOrExit()
        let entries = try await UserAdmin.readOnlyStorage(config)?.auditEntries(limit: limit, beforeID: nil, actor: actor, action: action) ?? []
        if json {
            return try TextOutput.printJSONLines(entries.map {
                Listing(id: $0.id, at: $0.at, actor: $0.actor, clientAddress: $0.clientAddress, action: $0.action, target: $0.target, detail: $0.detail)
            })
        }
        var rows = [["TIME", "ACTOR", "FROM", "ACTION", "TARGET", "DETAIL"]]
        for e in entries { rows.append([JournalTable.time(e.at), e.actor, e.clientAddress, e.action, e.target, e.detail]) }
        print(TextOutput.table(rows))
    }
}

enum UserAdmin {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// bcrypt cost as the web's (12: about a quarter second per login on current hardware).
    static let bcryptCost: UInt8 = Passwords.cost
    static let minimumPasswordLength = 12

    /// Opens the writable storage, runs `body`, and hands the database files back to the spool's owner: run as root,
    /// SQLite would otherwise leave a root-owned database, -wal or -shm that `serve` (user faxgate) cannot open.
    static func withStorage(_ config: Configuration, _ body: (any Storage) async throws -> Void) async throws {
        do {
            let storage = try PluginRegistry.storage(config)
            defer { handDatabaseToSpoolOwner(config) }
            try await storage.migrate()
            try await body(storage)
        } catch let failure as Failure {
            FileHandle.standardError.write(Data("faxgate: \(failure.description)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// The storage for reading, or nil when the embedded database does not exist yet (nothing was ever stored).
    static func readOnlyStorage(_ config: Configuration) throws -> (any Storage)? {
        if config.storage.driver == "sqlite", !FileManager.default.fileExists(atPath: config.storage.path ?? config.spoolDirectory + "/faxgate.sqlite") {
            return nil
        }
        return try PluginRegistry.storage(config, readOnly: true)
    }

    /// Loads the named user (exit 1 with a message when there is none) and lets `body` change it.
    static func change(_ name: String, options: ConfigOption, config: Configuration? = nil,
                       _ body: (inout WebUser, any Storage) async throws -> Void) async throws {
        let config = try config ?? options.loadOrExit()
        try await withStorage(config) { storage in
            guard var user = try await storage.user(name: name) else { throw Failure("no user named \(name) (faxgate user list)") }
            try await body(&user, storage)
        }
    }

    static func audit(_ storage: any Storage, _ action: String, _ name: String, _ detail: String) async throws {
        try await storage.appendAudit(AuditEntry(actor: actor, clientAddress: "local", action: action, target: "user \(name)", detail: detail))
    }

    /// "cli:<unix user>" of the real user id (sudo shows as root: the one who ran it with root's rights).
    static var actor: String {
        if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return "cli:" + String(cString: name) }
        return "cli:uid-\(getuid())"
    }

    /// The rules the admin's users page applies too (UserAccountRules).
    static func validate(name: String) throws {
        guard UserAccountRules.isValidName(name) else {
            throw ValidationError("'\(name)' is no valid login name: 1–64 of lowercase a–z, 0–9, '.', '-', '_', starting with a letter or digit")
        }
    }

    /// The names as configured (exact spelling), every one known; duplicates dropped. The office settings in storage
    /// (what the web edits) decide which extensions exist; the file's list when there are none yet.
    static func validExtensions(_ wanted: [String], config: Configuration, configPath: String, storage: any Storage) async throws -> [String] {
        guard !wanted.isEmpty else { return [] }
        var configured = config.extensions.map(\.name)
        if let office = try? OfficeSettingsStore(storage: storage, file: configPath), let state = try? await office.load(write: false, conflicts: .preferStored) {
            configured = state.configuration.extensions.map(\.name)
        }
        if let unknown = UserAccountRules.unknownExtensions(wanted, configured: configured).first {
            throw Failure("unknown extension '\(unknown)' (configured: \(list(configured)))")
        }
        var out: [String] = []
        for name in wanted where !out.contains(name) { out.append(name) }
        return out
    }

    static func hash(_ password: String) -> String { Bcrypt.hash(password, cost: bcryptCost) }

    /// The same one-time passwords the admin's users page hands out (4 groups of 5, about 99 bits).
    static func oneTimePassword() -> String { UserAccountRules.oneTimePassword() }

    /// The first line of standard input, under the web's password rules (Passwords.problem). bcrypt reads at most
    /// 72 bytes and stops at NUL, so longer ones or control characters are refused rather than silently cut.
    static func readPassword(for name: String) throws -> String {
        guard let line = readLine(strippingNewline: true) else { throw ValidationError("--password-stdin: no password on standard input") }
        let password = line.hasSuffix("\r") ? String(line.dropLast()) : line
        guard password.count >= minimumPasswordLength else {
            throw ValidationError("the password must have at least \(minimumPasswordLength) characters")
        }
        guard password.utf8.count <= 72 else { throw ValidationError("the password must have at most 72 bytes (bcrypt ignores the rest)") }
        if Passwords.problem(password, name: name) != nil {
            throw ValidationError("the password must not be the login name")
        }
        guard !password.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw ValidationError("the password must not contain control characters")
        }
        return password
    }

    static func list(_ names: [String]) -> String { names.isEmpty ? "none" : names.joined(separator: ", ") }

    /// Root running the CLI makes SQLite create files as root; give them to the owner of the database's directory.
    static func handDatabaseToSpoolOwner(_ config: Configuration) {
        guard geteuid() == 0, config.storage.driver == "sqlite" else { return }
        let path = config.storage.path ?? config.spoolDirectory + "/faxgate.sqlite"
        var dirStat = stat()
        guard stat((path as NSString).deletingLastPathComponent, &dirStat) == 0, dirStat.st_uid != 0 else { return }
        for file in [path, path + "-wal", path + "-shm", path + "-journal"] {
            var s = stat()
            if lstat(file, &s) == 0, (s.st_mode & S_IFMT) == S_IFREG, s.st_uid == 0 {
                _ = chown(file, dirStat.st_uid, dirStat.st_gid)
            }
        }
    }
}
