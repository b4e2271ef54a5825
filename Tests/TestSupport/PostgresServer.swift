import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL 15 cluster for tests: Debian's binaries, a throw-away data directory, a free loopback port.
///
/// `contrib/test.sh` starts one for the whole run and exports `FAXGATE_TEST_PG_PORT` and `FAXGATE_TEST_PG_DIR`;
/// when they are absent (a developer's `swift test --filter`) the first use starts one for this test process and
/// `atexit` stops it. Each test takes a database of its own (`createDatabase()`), so tests never see each other's
/// rows.
///
/// The cluster listens on 127.0.0.1 with TLS on (a CA and a server certificate for "localhost"/127.0.0.1 made
/// here), and its pg_hba makes the role `faxgate_pw` authenticate with a password over TLS only (SCRAM);
/// every other role is trusted on loopback (tests create databases and read the data directory).
public final class PostgresServer: Sendable {
    public let port: Int
    /// The data directory (owned by the postgres user): the privacy tests scan its files for deleted bytes.
    public let dataDirectory: String
    /// The socket directory.
    public let socketDirectory: String
    /// PEM of the CA that signed the server certificate (for `ca_file`).
    public let caFile: String
    /// A role that must log in with `passwordRolePassword` over TLS.
    public let passwordRole = "faxgate_pw"
    public let passwordRolePassword = "pw-\(UUID().uuidString.prefix(8))"

    public static let bin = "/usr/lib/postgresql/15/bin"

    private init(port: Int, dataDirectory: String, socketDirectory: String, caFile: String) {
        self.port = port; self.dataDirectory = dataDirectory; self.socketDirectory = socketDirectory; self.caFile = caFile
    }

    nonisolated(unsafe) private static var sharedServer: PostgresServer?
    private static let lock = NSLock()

    /// The cluster of this test run (started on first use).
    public static func shared() throws -> PostgresServer {
        lock.lock(); defer { lock.unlock() }
        if let s = sharedServer { return s }
        let env = ProcessInfo.processInfo.environment
        let s: PostgresServer
        if let p = env["FAXGATE_TEST_PG_PORT"].flatMap(Int.init), let dir = env["FAXGATE_TEST_PG_DIR"] {
            s = PostgresServer(port: p, dataDirectory: dir + "/data", socketDirectory: dir, caFile: dir + "/ca.pem")
        } else {
            s = try start()
            atexit { PostgresServer.stopShared() }
        }
        try s.ensurePasswordRole()
        sharedServer = s
        return s
    }

    private static func stopShared() {
        guard let s = sharedServer else { return }
        _ = try? asPostgres(["\(bin)/pg_ctl", "-D", s.dataDirectory, "-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: s.socketDirectory)
    }

    /// Starts a cluster in a new temporary directory: `Tests/Scripts/pg-cluster.sh` does the same for the test script.
    public static func start() throws -> PostgresServer {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scripts/pg-cluster.sh").path
        let dir = "/tmp/faxgate-pg-\(getpid())-\(UUID().uuidString.prefix(6))"
        let port = try FreePort.loopbackTCP()
        let r = try runTool("/bin/bash", [script, "start", dir, String(port)], check: false)
        guard r.status == 0 else {
            throw ToolError(description: "cannot start PostgreSQL: \(r.stdoutText.suffix(1500)) \(r.stderrText.suffix(1500))")
        }
        return PostgresServer(port: port, dataDirectory: dir + "/data", socketDirectory: dir, caFile: dir + "/ca.pem")
    }

    /// Runs psql as the postgres superuser on the socket; returns its output (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        let r = try Self.asPostgres(["/usr/bin/psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                                     "-h", socketDirectory, "-p", String(port), "-U", "postgres", "-d", database, "-c", sql])
        return r.stdoutText
    }

    /// A new empty database for one test; its name.
    public func createDatabase(_ prefix: String = "t") throws -> String {
        let name = "\(prefix)_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        try psql("CREATE DATABASE \(name)")
        try psql("GRANT ALL ON DATABASE \(name) TO \(passwordRole)")
        try psql("ALTER DATABASE \(name) OWNER TO \(passwordRole)")
        return name
    }

    public func dropDatabase(_ name: String) {
        _ = try? psql("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }

    /// A password file (0600) with the password role's password, for `storage.postgres.password_file`.
    public func writePasswordFile(in directory: String) throws -> String {
        let path = directory + "/pg-password"
        FileManager.default.createFile(atPath: path, contents: Data((passwordRolePassword + "\n").utf8), attributes: [.posixPermissions: 0o600])
        return path
    }

    private func ensurePasswordRole() throws {
        try psql("""
            DO $$ BEGIN
              IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '\(passwordRole)') THEN
                CREATE ROLE \(passwordRole) LOGIN;
              END IF;
            END $$;
            ALTER ROLE \(passwordRole) PASSWORD '\(passwordRolePassword)';
            """)
    }

    /// Restarts the server (tests of a database that goes away and comes back). `downSeconds` with the server stopped.
    public func restart(downSeconds: Double = 0) throws {
        try Self.asPostgres(["\(Self.bin)/pg_ctl", "-D", dataDirectory, "-m", "immediate", "-w", "stop"])
        if downSeconds > 0 { Thread.sleep(forTimeInterval: downSeconds) }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Scripts/pg-cluster.sh").path
        try runTool("/bin/bash", [script, "restart", socketDirectory])
    }

    /// postgres refuses to run as root; as root we switch to the postgres user.
    @discardableResult
    static func asPostgres(_ command: [String]) throws -> ToolResult {
        if getuid() == 0 {
            return try runTool("/usr/sbin/runuser", ["-u", "postgres", "--"] + command)
        }
        return try runTool(command[0], Array(command.dropFirst()))
    }
}
