import Foundation

/// A running Dovecot + Postfix pair from contrib/testservers.sh. Call `stop()` in tearDown; deinit stops too.
public final class MailServers: @unchecked Sendable {
    public enum IMAPSecurity: String, Sendable { case tls, starttls }

    public let directory: TemporaryDirectory
    /// Raw KEY=VALUE pairs from servers.env.
    public let environment: [String: String]
    public let host = "127.0.0.1"
    public let imapPort: Int, imapsPort: Int, smtpStartTLSPort: Int, smtpsPort: Int, smtpPlainPort: Int, lmtpPort: Int
    public let caFile: String
    /// The first test user (fax@example.test); all users share `password`.
    public let user: String
    public let users: [String]
    public let password: String
    public let maildirRoot: String
    private let lock = NSLock()
    private var stopped = false

    static var script: String { packageRoot.appendingPathComponent("contrib/testservers.sh").path }
    static var fetchScript: String { packageRoot.appendingPathComponent("Tests/Scripts/imap_fetch.py").path }

    /// Debian's interpreter when present: a pyenv shim in PATH may be missing from the test environment.
    public static var python3: String {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : "python3"
    }

    public static func start() throws -> MailServers {
        let directory = try TemporaryDirectory("faxgate-mail")
        let result = try runTool("/bin/bash", [script, "start", directory.path], check: false)
        guard result.status == 0 else {
            _ = try? runTool("/bin/bash", [script, "stop", directory.path], check: false)
            throw ToolError(description: "testservers.sh start failed (\(result.status)): \(result.stderrText)")
        }
        return try MailServers(directory: directory, envText: result.stdoutText)
    }

    private init(directory: TemporaryDirectory, envText: String) throws {
        self.directory = directory
        var env: [String: String] = [:]
        for line in envText.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = String(line[line.index(after: eq)...])
            if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            env[String(line[..<eq])] = value
        }
        environment = env
        func value(_ key: String) throws -> String {
            guard let v = env[key], !v.isEmpty else { throw ToolError(description: "servers.env lacks \(key)") }
            return v
        }
        func port(_ key: String) throws -> Int {
            guard let p = Int(try value(key)) else { throw ToolError(description: "servers.env: \(key) is not a number") }
            return p
        }
        imapPort = try port("IMAP_PORT")
        imapsPort = try port("IMAPS_PORT")
        smtpStartTLSPort = try port("SMTP_STARTTLS_PORT")
        smtpsPort = try port("SMTPS_PORT")
        smtpPlainPort = try port("SMTP_PLAIN_PORT")
        lmtpPort = try port("LMTP_PORT")
        caFile = try value("CA_FILE")
        user = try value("MAIL_USER")
        users = (env["MAIL_USERS"] ?? user).split(separator: " ").map(String.init)
        password = try value("MAIL_PASSWORD")
        maildirRoot = try value("MAILDIR_ROOT")
    }

    /// Stops both servers; safe to call more than once.
    public func stop() {
        lock.lock()
        defer { lock.unlock() }
        if stopped { return }
        stopped = true
        _ = try? runTool("/bin/bash", [Self.script, "stop", directory.path], check: false)
    }

    deinit { stop() }

    /// Waits until `user`'s mailbox holds at least `expect` messages and returns all of them, raw.
    public func fetch(
        user: String, expect: Int = 1, security: IMAPSecurity = .tls, mailbox: String = "INBOX",
        timeoutSeconds: Double = 15, delete: Bool = false
    ) throws -> [[UInt8]] {
        let out = try TemporaryDirectory("faxgate-imap")
        var args = [
            Self.fetchScript, "--host", security == .starttls ? "localhost" : host,
            "--port", String(security == .tls ? imapsPort : imapPort), "--security", security.rawValue,
            "--ca", caFile, "--user", user, "--password", password, "--out", out.path,
            "--mailbox", mailbox, "--expect", String(expect), "--timeout", String(timeoutSeconds),
        ]
        if delete { args.append("--delete") }
        let result = try runTool(Self.python3, args, check: false)
        guard result.status == 0 else {
            throw ToolError(description: "imap_fetch.py failed (\(result.status)): \(result.stderrText)")
        }
        return try result.stdoutText.split(separator: "\n").map { Array(try Data(contentsOf: URL(fileURLWithPath: String($0)))) }
    }

    /// Tail of the Postfix and Dovecot logs, for failure messages.
    public func logTail(lines: Int = 20) -> String {
        var text = ""
        for key in ["POSTFIX_LOG", "DOVECOT_LOG"] {
            guard let path = environment[key], let data = FileManager.default.contents(atPath: path) else { continue }
            let all = String(decoding: data, as: UTF8.self).split(separator: "\n")
            text += "--- \(path)\n" + all.suffix(lines).joined(separator: "\n") + "\n"
        }
        return text
    }
}
