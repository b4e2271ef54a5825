import Foundation

extension ConfigValidator {
    /// `storage.postgres`: the shared database must be reachable safely. The password and the data (faxes, mails)
    /// travel in clear or to an unverified server only on this machine; the password comes from a file the
    /// service can read, never from the configuration itself.
    static func validateStorage(_ c: Configuration) -> [Problem] {
        var problems: [Problem] = []
        guard let pg = c.storage.postgres else {
            if c.storage.driver == "postgres" {
                problems.append(Problem(path: [.key("storage"), .key("driver")],
                                        message: "driver postgres needs a storage.postgres section (host, port, database, user, password_file, tls, ca_file)"))
            }
            return problems
        }
        func problem(_ key: String, _ message: String) {
            problems.append(Problem(path: [.key("storage"), .key("postgres"), .key(key)], message: message))
        }
        let unixSocket = pg.host.hasPrefix("/")
        let loopback = ["127.0.0.1", "::1", "localhost"].contains(pg.host)
        if pg.host.isEmpty { problem("host", "must name the database server (or a Unix socket directory)") }
        if !(1...65535).contains(pg.port) { problem("port", "must be between 1 and 65535") }
        if pg.database.isEmpty { problem("database", "must not be empty") }
        if pg.user.isEmpty { problem("user", "must not be empty") }
        if pg.maxConnections < 1 { problem("max_connections", "must be at least 1") }
        switch pg.tls {
        case "verify-full":
            break
        case "require":
            if !loopback {
                problem("tls", "require does not check the server's certificate: anyone in the path to \(pg.host) could read the password "
                    + "and the faxes; use verify-full (with ca_file for a private CA)")
            }
        case "disable":
            if !loopback && !unixSocket {
                problem("tls", "disable sends the password and the faxes in clear to \(pg.host); only allowed on this machine "
                    + "(127.0.0.1, ::1, localhost or a Unix socket directory); use verify-full")
            }
        default:
            problem("tls", "must be one of verify-full, require, disable")
        }
        if let ca = pg.caFile {
            if pg.tls != "verify-full" { problem("ca_file", "only used with tls: verify-full") }
            if !FileManager.default.fileExists(atPath: ca) {
                problem("ca_file", "\(ca) does not exist")
            } else if !FileManager.default.isReadableFile(atPath: ca) {
                problem("ca_file", "cannot read \(ca)")
            }
        }
        if let file = pg.passwordFile {
            if !FileManager.default.fileExists(atPath: file) {
                problem("password_file", "\(file) does not exist")
            } else if !FileManager.default.isReadableFile(atPath: file) {
                problem("password_file", "cannot read \(file)")
            } else if let mode = fileMode(file), mode & 0o004 != 0 {
                problem("password_file", "\(file) is world-readable (mode \(String(mode, radix: 8))); chmod 0640 and chgrp to the service group")
            }
        }
        return problems
    }
}
