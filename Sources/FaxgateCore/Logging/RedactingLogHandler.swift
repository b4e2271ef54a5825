import Foundation
import Logging
import Synchronization

/// Writes log lines to stderr (journald under systemd) and hides personal data on the way out.
///
/// Redaction happens here, at the one place every line passes, so no call site can forget it. Lines at
/// `redactFrom` and above are redacted; below that (debug, trace) a developer on the box sees raw data.
/// Lines also written to the daily log files (`files`) are redacted at every level: files outlive the
/// session and end up in support snapshots.
public struct RedactingLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let redactor: Redactor
    private let redactFrom: Logger.Level
    private let sink: LogSink
    private let files: DailyLogFiles?

    public init(label: String, level: Logger.Level, redactor: Redactor, redactFrom: Logger.Level, sink: LogSink = .standardError,
                files: DailyLogFiles? = nil) {
        self.label = label; self.logLevel = level; self.redactor = redactor; self.redactFrom = redactFrom; self.sink = sink
        self.files = files
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        // Values from outside (station ids, numbers, file names) may hold line breaks or invisible characters:
        // one event is one line, and nothing invisible may split a number so that no rule recognises it.
        var head = "\(Self.timestamp()) \(event.level) \(label):"
        // Per-call lines start with the call id, Postfix-style, so one grep tells a call's story.
        if let id = merged.removeValue(forKey: "call") { head += " [\(UntrustedText.logSafe("\(id)"))]" }
        head += " " + UntrustedText.logSafe("\(event.message)")
        var line = head, fieldsHidden = head
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            let v = UntrustedText.logSafe("\(value)")
            line += " \(key)=\(v)"
            // Fields that name people (station id, Subject, file name) are hidden whole, whatever they contain.
            fieldsHidden += " \(key)=\(redactor.redactField(key: key, value: v) ?? v)"
        }
        let redacted = redactor.redact(fieldsHidden)
        sink.write((event.level >= redactFrom ? redacted : line) + "\n")
        files?.write(redacted + "\n")
    }

    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var tm = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1_000_000)
    }
}

/// Where log lines go. A file sink is used by tests to read back what was logged.
public final class LogSink: Sendable {
    private let fd: Mutex<Int32>
    public static let standardError = LogSink(fd: 2)
    init(fd: Int32) { self.fd = Mutex(fd) }
    public convenience init(appendingTo path: String) {
        self.init(fd: open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640))
    }
    func write(_ text: String) {
        fd.withLock { fd in
            var bytes = Array(text.utf8)
            _ = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        }
    }
}

extension Logger.Level {
    public init?(configName: String) { self.init(rawValue: configName) }
}
