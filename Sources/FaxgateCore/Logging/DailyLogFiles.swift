import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Daily log files `<directory>/faxgate-YYYY-MM-DD.log` (UTC date), appended to, mode 0600 in a 0700 directory.
///
/// Rotation is by name: the first line of a new day opens the next file, so there is nothing to rename
/// and the retention category `logs` can age files by the date in their name (creation, not access time).
/// A write failure never stops the gateway: stderr still has the line.
///
/// Other processes may replace a day's file (`gdpr erase` rewrites it without the subject's pseudonym). Each
/// line is therefore appended under an exclusive flock on the open file, after checking that the path still
/// names that file; if not, the new file is opened. `LogErasure` holds the same lock from reading the old file
/// until the new one is renamed into place, so every line lands in exactly one version that survives.
public final class DailyLogFiles: Sendable {
    public let directory: String
    private struct State { var day: String = ""; var fd: Int32 = -1 }
    private let state = Mutex(State())
    /// Injected clock so tests can cross midnight without waiting for it.
    private let now: @Sendable () -> Date

    public init(directory: String, now: @escaping @Sendable () -> Date = Date.init) {
        self.directory = directory; self.now = now
        try? DurableFile.makeDirectory(directory, mode: 0o700)
    }

    public static let prefix = "faxgate-"
    public static let suffix = ".log"

    public static func fileName(for day: Date) -> String { prefix + dayString(day) + suffix }

    public static func dayString(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970)
        var t = tm()
        gmtime_r(&seconds, &t)
        return String(format: "%04d-%02d-%02d", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday)
    }

    /// The day a log file covers (its UTC midnight), from its name; nil for other files.
    public static func day(ofFile name: String) -> Date? {
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        let d = name.dropFirst(prefix.count).dropLast(suffix.count)
        let parts = d.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3 else { return nil }
        var t = tm()
        t.tm_year = Int32(parts[0] - 1900); t.tm_mon = Int32(parts[1] - 1); t.tm_mday = Int32(parts[2])
        return Date(timeIntervalSince1970: TimeInterval(timegm(&t)))
    }

    public func write(_ text: String) {
        let day = Self.dayString(now())
        let path = directory + "/" + Self.prefix + day + Self.suffix
        let bytes = Array(text.utf8)
        state.withLock { s in
            if s.day != day, s.fd >= 0 { close(s.fd); s.fd = -1 }
            s.day = day
            // Twice at most: a replaced file is noticed under the lock, reopened, and the line goes to the new one.
            for _ in 0..<3 {
                if s.fd < 0 { s.fd = (try? DurableFile.createFile(path, flags: O_WRONLY | O_APPEND, mode: 0o600)) ?? -1 }
                guard s.fd >= 0 else { return }
                while flock(s.fd, LOCK_EX) != 0 && errno == EINTR {}
                if Self.isCurrent(fd: s.fd, path: path) {
                    try? DurableFile.writeAll(s.fd, bytes, path: path)
                    flock(s.fd, LOCK_UN)
                    return
                }
                flock(s.fd, LOCK_UN)
                close(s.fd)
                s.fd = -1
            }
        }
    }

    /// Whether `path` still names the file open on `fd` (not replaced by a rename, not unlinked).
    static func isCurrent(fd: Int32, path: String) -> Bool {
        var open = stat(), named = stat()
        guard fstat(fd, &open) == 0, stat(path, &named) == 0 else { return false }
        return open.st_dev == named.st_dev && open.st_ino == named.st_ino
    }

    /// Log files whose day lies in [from, to] (inclusive, by day), oldest first.
    public static func files(in directory: String, from: Date? = nil, to: Date? = nil) -> [(path: String, day: Date)] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name -> (String, Date)? in
            guard let day = day(ofFile: name) else { return nil }
            if let from, day.addingTimeInterval(86_400) <= from { return nil }
            if let to, day > to { return nil }
            return (directory + "/" + name, day)
        }.sorted { $0.1 < $1.1 }
    }
}
