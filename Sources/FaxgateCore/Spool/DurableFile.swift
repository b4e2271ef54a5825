import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Postfix-style durable writes: write a temporary name opened with O_EXCL, fsync, rename into place,
/// fsync the directory. A crash leaves either the old state or the complete new file, never half a file.
public enum DurableFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Mode 0600 unless told otherwise (spool, outbox and intake files hold faxes and mails); set with fchmod,
    /// so the process umask cannot widen or narrow it.
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = "\(dir)/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = try createFile(tmp, flags: O_WRONLY | O_EXCL, mode: mode)
        var ok = false
        defer { if !ok { close(fd); unlink(tmp) } }
        try writeAll(fd, bytes, path: tmp)
        guard fsync(fd) == 0 else { throw Failure(description: "fsync \(tmp): \(errnoText())") }
        close(fd)
        ok = true
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw Failure(description: "rename to \(path): \(errnoText())")
        }
        try syncDirectory(dir)
    }

    /// Opens (creating) a file and sets its mode explicitly: open(2)'s mode is filtered by the umask, so a
    /// umask of 000 would otherwise leave a world-readable file and 077 an unreadable drop answer.
    public static func createFile(_ path: String, flags: Int32, mode: mode_t = 0o600) throws -> Int32 {
        let fd = open(path, flags | O_CREAT | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(errnoText())") }
        guard fchmod(fd, mode) == 0 else {
            let text = errnoText()
            close(fd)
            throw Failure(description: "cannot set mode of \(path): \(text)")
        }
        return fd
    }

    /// Creates a directory (and missing parents) and sets the leaf's mode explicitly, whatever the umask.
    /// An existing directory is narrowed to `mode` too: spool, outbox, intake and log directories are the daemon's alone.
    public static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard chmod(path, mode) == 0 else { throw Failure(description: "cannot set mode of \(path): \(errnoText())") }
    }

    /// A database holds every journal row: 0600 whatever the umask. SQLite creates files 0644 & ~umask, and
    /// gives its -wal and -shm files the mode of the database file, so the database file is created (or
    /// narrowed) first and any existing companion files narrowed too.
    public static func prepareDatabaseFile(_ path: String) throws {
        let fd = try createFile(path, flags: O_RDWR, mode: 0o600)
        close(fd)
        for companion in [path + "-wal", path + "-shm", path + "-journal"] where access(companion, F_OK) == 0 {
            guard chmod(companion, 0o600) == 0 else { throw Failure(description: "cannot set mode of \(companion): \(errnoText())") }
        }
    }

    public static func syncDirectory(_ dir: String) throws {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw Failure(description: "open directory \(dir): \(errnoText())") }
        defer { close(dfd) }
        guard fsync(dfd) == 0 else { throw Failure(description: "fsync directory \(dir): \(errnoText())") }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { buf in
                Glibc.write(fd, buf.baseAddress! + offset, bytes.count - offset)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "write \(path): \(errnoText())")
            }
            offset += n
        }
    }

    public static func errnoText() -> String { String(cString: strerror(errno)) }
}
