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

    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o640) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let tmp = "\(dir)/.tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "cannot create \(tmp): \(errnoText())") }
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
