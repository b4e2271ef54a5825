import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `gdpr erase` for log files: lines keep no number or address, but they do keep the subject's pseudonym, which
/// still lets the logs be linked to the person. Erasure replaces that pseudonym everywhere with "erased".
///
/// The daemon may be appending to today's file meanwhile. Each file is rewritten (temporary file, rename) while
/// holding an exclusive flock on the file being replaced — the lock `DailyLogFiles.write` takes for every line.
/// A line appended before the lock is in what we read; a line appended after it waits, sees that the path now
/// names the new file, and goes there. Nothing is lost, nothing is written twice, the rename stays atomic.
public enum LogErasure {
    /// Replaces `token` (e.g. "[phone:kqzmtrwe]") in every log file of `directory`; returns the files changed.
    @discardableResult
    public static func erase(token: String, kind: String, in directory: String) throws -> Int {
        var changed = 0
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() where !name.hasPrefix(".") {
            if try erase(token: token, replacement: "[\(kind):erased]", file: "\(directory)/\(name)") { changed += 1 }
        }
        return changed
    }

    static func erase(token: String, replacement: String, file path: String) throws -> Bool {
        // Another eraser may replace the file between our open and our lock: then lock the new one.
        for _ in 0..<100 {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                if errno == ENOENT { return false }
                throw DurableFile.Failure(description: "cannot open \(path): \(DurableFile.errnoText())")
            }
            defer { close(fd) }
            while flock(fd, LOCK_EX) != 0 {
                guard errno == EINTR else { throw DurableFile.Failure(description: "cannot lock \(path): \(DurableFile.errnoText())") }
            }
            defer { flock(fd, LOCK_UN) }
            guard DailyLogFiles.isCurrent(fd: fd, path: path) else { continue }
            let text = String(decoding: try readAll(fd, path: path), as: UTF8.self)
            guard text.contains(token) else { return false }
            var st = stat()
            let mode = fstat(fd, &st) == 0 ? st.st_mode & 0o777 : 0o600
            try DurableFile.write(Array(text.replacingOccurrences(of: token, with: replacement).utf8), to: path, mode: mode & 0o600)
            return true
        }
        throw DurableFile.Failure(description: "\(path) keeps being replaced; erase it again")
    }

    static func readAll(_ fd: Int32, path: String) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DurableFile.Failure(description: "read \(path): \(DurableFile.errnoText())")
            }
            if n == 0 { return out }
            out += buffer[0..<n]
        }
    }
}
