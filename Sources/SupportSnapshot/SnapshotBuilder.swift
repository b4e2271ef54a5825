import FaxgateCore
import Foundation
import Yams

/// The configuration as it may leave the machine: secrets replaced by "<removed>", comments dropped (they
/// are free text), and the rest redacted like a log line (addresses and numbers become pseudonyms).
public enum ConfigSanitizer {
    /// Keys whose values are secrets. `*_file` keys name a file and stay; the file's content never goes in.
    static func isSecret(_ key: String) -> Bool {
        let k = key.lowercased()
        if k.hasSuffix("_file") { return false }
        return ["password", "passphrase", "secret", "token", "api_key", "private_key", "credentials"].contains { k == $0 || k.hasSuffix("_" + $0) }
    }

    public static func sanitize(yaml text: String, redactor: Redactor) throws -> String {
        guard let root = try Yams.compose(yaml: text) else { return "" }
        return redactor.redact(try Yams.serialize(node: strip(root)))
    }

    static func strip(_ node: Node) -> Node {
        switch node {
        case .mapping(let m):
            return .mapping(Node.Mapping(m.map { pair -> (Node, Node) in
                if let key = pair.key.string, isSecret(key) { return (pair.key, Node("<removed>")) }
                return (pair.key, strip(pair.value))
            }))
        case .sequence(let s):
            return .sequence(Node.Sequence(s.map(strip)))
        default:
            return node
        }
    }
}

/// Everything a support snapshot is made of. The app gathers versions, statistics and CAPI information;
/// this module redacts, packs and encrypts them.
public struct SnapshotRequest: Sendable {
    public var configText: String
    public var logDirectory: String
    public var outputDirectory: String
    public var from: Date?
    public var to: Date?
    public var versions: [String]
    public var capiInfo: String
    public var statistics: [String: Int]
    public var redactor: Redactor
    public var redactionRules: [String]
    public init(configText: String, logDirectory: String, outputDirectory: String, from: Date?, to: Date?, versions: [String],
                capiInfo: String, statistics: [String: Int], redactor: Redactor, redactionRules: [String]) {
        self.configText = configText; self.logDirectory = logDirectory; self.outputDirectory = outputDirectory
        self.from = from; self.to = to; self.versions = versions; self.capiInfo = capiInfo; self.statistics = statistics
        self.redactor = redactor; self.redactionRules = redactionRules
    }
}

public struct SnapshotResult: Sendable {
    public var path: String
    public var passphrase: String
    public var info: SnapshotInfo
    /// Log bytes read (before redaction), for throughput figures.
    public var logBytes: Int64
}

public enum SnapshotBuilder {
    public typealias Progress = (_ file: String, _ done: Int64, _ total: Int64) -> Void

    public static func create(_ request: SnapshotRequest, now: Date = Date(), passphrase: String = Passphrase.generate(),
                              progress: Progress? = nil) throws -> SnapshotResult {
        try FileManager.default.createDirectory(atPath: request.outputDirectory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let stamp = ISO8601DateFormatter.string(from: now, timeZone: TimeZone(identifier: "UTC")!,
                                                formatOptions: [.withFullDate, .withTime]).replacingOccurrences(of: ":", with: "")
        let name = "faxgate-snapshot-\(stamp)"
        let path = "\(request.outputDirectory)/\(name).zip"
        let zip = try EncryptedZipWriter(path: path, passphrase: passphrase)
        var manifest: [[String: Any]] = []
        func add(_ entry: String, _ bytes: [UInt8]) throws {
            // libarchive stores an empty entry without encryption (nothing to encrypt), which the writer's
            // check then rightly refuses; an empty file says "(empty)" instead.
            let bytes = bytes.isEmpty ? Array("(empty)\n".utf8) : bytes
            try zip.add(name: entry, bytes: bytes, modified: now)
            manifest.append(["name": entry, "bytes": bytes.count])
        }

        try add("config/faxgate.yaml", Array(try ConfigSanitizer.sanitize(yaml: request.configText, redactor: request.redactor).utf8))
        try add("versions.txt", Array(request.redactor.redact(request.versions.joined(separator: "\n") + "\n").utf8))
        try add("capi.txt", Array(request.redactor.redact(request.capiInfo).utf8))
        let stats = try JSONSerialization.data(withJSONObject: request.statistics, options: [.sortedKeys, .prettyPrinted])
        try add("statistics.json", [UInt8](stats))

        // Logs: every line redacted again with all rules — debug lines in the files may predate a rule change.
        let logs = DailyLogFiles.files(in: request.logDirectory, from: request.from, to: request.to)
        let total = logs.reduce(Int64(0)) { $0 + Int64((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        var done: Int64 = 0
        for log in logs {
            let file = (log.path as NSString).lastPathComponent
            guard let data = FileManager.default.contents(atPath: log.path) else { continue }
            var redacted: [UInt8] = []
            redacted.reserveCapacity(data.count)
            var lineStart = data.startIndex
            var sinceReport = 0
            // Line by line: the rules are line-oriented, and memory stays at one copy of the day's log.
            while lineStart < data.endIndex {
                let lineEnd = data[lineStart...].firstIndex(of: 0x0A) ?? data.endIndex
                let line = String(decoding: data[lineStart..<lineEnd], as: UTF8.self)
                redacted += request.redactor.redact(line).utf8
                if lineEnd < data.endIndex { redacted.append(0x0A) }
                let consumed = (lineEnd < data.endIndex ? lineEnd + 1 : lineEnd) - lineStart
                done += Int64(consumed); sinceReport += consumed
                if sinceReport >= 4 << 20 { progress?(file, done, total); sinceReport = 0 }
                lineStart = lineEnd < data.endIndex ? lineEnd + 1 : lineEnd
            }
            progress?(file, done, total)
            try add("logs/\(file)", redacted)
        }

        let iso = ISO8601DateFormatter()
        var head: [String: Any] = [
            "product": "faxgate", "created": iso.string(from: now), "encryption": "ZIP AES-256 (WinZip AE-2), libarchive",
            "passphrase_bits": Passphrase.bits, "redaction": request.redactionRules, "log_files": logs.count,
            "note": "Personal data is replaced by keyed pseudonyms ([phone:…], [email:…]); the same value has the same pseudonym throughout this snapshot.",
        ]
        if let from = request.from { head["from"] = iso.string(from: from) }
        if let to = request.to { head["to"] = iso.string(from: to) }
        head["entries"] = manifest
        try add("manifest.json", [UInt8](try JSONSerialization.data(withJSONObject: head, options: [.sortedKeys, .prettyPrinted])))
        try zip.finish()

        let size = Int64((try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0)
        let info = SnapshotInfo(name: name, createdAt: now, from: request.from, to: request.to, bytes: size, entries: zip.entries)
        try DurableFile.write([UInt8](try SnapshotInfo.encoder.encode(info)), to: "\(request.outputDirectory)/\(name).json", mode: 0o600)
        return SnapshotResult(path: path, passphrase: passphrase, info: info, logBytes: total)
    }
}
