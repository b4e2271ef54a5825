import Foundation

/// Searches one day's log file for the admin's log page: streamed line by line (a day may be large), at most
/// `limit` matches kept (the newest), each redacted again before it leaves (the file is redacted already; the
/// second pass catches lines written under older or weaker rules, as a support snapshot does).
public enum LogSearch {
    public struct Result: Sendable, Equatable {
        public var lines: [String]
        public var omitted: Int
        public var scanned: Int
    }

    /// Days that have a log file in `directory`, newest first.
    public static func days(in directory: String) -> [String] {
        DailyLogFiles.files(in: directory).map { DailyLogFiles.dayString($0.day) }.reversed()
    }

    /// The file of `day` ("YYYY-MM-DD") is looked up among the directory's log files, never built from the input.
    public static func search(directory: String, day: String, query: String, limit: Int, redactor: Redactor) throws -> Result {
        guard let file = DailyLogFiles.files(in: directory).first(where: { DailyLogFiles.dayString($0.day) == day }) else {
            return Result(lines: [], omitted: 0, scanned: 0)
        }
        let tokens = query.split(whereSeparator: \.isWhitespace).map(String.init).prefix(8)
        guard let handle = FileHandle(forReadingAtPath: file.path) else { throw StorageError("cannot read \(file.path)") }
        defer { try? handle.close() }
        var kept: [String] = []
        var matched = 0, scanned = 0
        var pending: [UInt8] = []
        func take(_ bytes: ArraySlice<UInt8>) {
            scanned += 1
            let line = String(decoding: bytes, as: UTF8.self)
            guard tokens.allSatisfy({ matches(line, token: $0) }) else { return }
            matched += 1
            kept.append(line)
            if kept.count > limit { kept.removeFirst(kept.count - limit) }
        }
        while true {
            let chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty { break }
            pending += chunk
            var start = pending.startIndex
            while let nl = pending[start...].firstIndex(of: 0x0A) {
                take(pending[start..<nl])
                start = nl + 1
            }
            pending.removeSubrange(pending.startIndex..<start)
        }
        if !pending.isEmpty { take(pending[...]) }
        return Result(lines: kept.map { redactor.redact($0) }, omitted: matched - kept.count, scanned: scanned)
    }

    /// A token of digits (a call or job id) matches only as a whole number — "12" finds "[12]" and "job=12", not
    /// "120"; any other token matches as a case-insensitive substring.
    static func matches(_ line: String, token: String) -> Bool {
        guard !token.isEmpty else { return true }
        guard token.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return line.range(of: token, options: .caseInsensitive) != nil
        }
        let bytes = Array(line.utf8), t = Array(token.utf8)
        guard bytes.count >= t.count else { return false }
        func digit(_ i: Int) -> Bool { i >= 0 && i < bytes.count && bytes[i] >= 0x30 && bytes[i] <= 0x39 }
        var i = 0
        while i + t.count <= bytes.count {
            if bytes[i..<(i + t.count)].elementsEqual(t) && !digit(i - 1) && !digit(i + t.count) { return true }
            i += 1
        }
        return false
    }
}
