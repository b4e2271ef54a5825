import Foundation

/// One thing retention, `gdpr export` and `gdpr erase` act on: a call with its files, a log file, a snapshot …
public struct RetentionItem: Sendable, Codable, Hashable {
    /// The category's `name`.
    public var category: String
    /// Stable within the category, e.g. "call-17" or "faxgate-2025-01-31.log". Appears in audit details only
    /// as a count, never listed, because an id can itself point at a person.
    public var id: String
    /// Creation time — ages are counted from here, never from access or modification time.
    public var createdAt: Date
    /// Who this item is about, as normalized `SubjectID`s (caller numbers, sender addresses …). Legal holds and
    /// erasure match on these.
    public var subjects: [SubjectID]
    /// Files derived from the item that `delete` removes (the category may find more at deletion time).
    public var files: [String]

    public init(category: String, id: String, createdAt: Date, subjects: [SubjectID] = [], files: [String] = []) {
        self.category = category; self.id = id; self.createdAt = createdAt; self.subjects = subjects; self.files = files
    }
}

/// What a deletion removed — counts only, which is what the audit table keeps.
public struct DeletionCounts: Sendable, Codable, Equatable {
    public var items = 0
    public var rows = 0
    public var files = 0
    public var bytes: Int64 = 0
    public init(items: Int = 0, rows: Int = 0, files: Int = 0, bytes: Int64 = 0) {
        self.items = items; self.rows = rows; self.files = files; self.bytes = bytes
    }
    public static func + (a: Self, b: Self) -> Self {
        Self(items: a.items + b.items, rows: a.rows + b.rows, files: a.files + b.files, bytes: a.bytes + b.bytes)
    }
}

/// A piece of an item for export (gdpr export, export-before-delete): a file as it is or bytes we render.
public struct ExportEntry: Sendable {
    public enum Source: Sendable { case file(String), bytes([UInt8]) }
    /// Relative path inside the export, e.g. "call-17/call.json".
    public var name: String
    public var source: Source
    public init(name: String, source: Source) { self.name = name; self.source = source }
}

/// A category of personal data with its own retention period.
///
/// How to add one (sent faxes, voicemails, rejected mails …):
/// 1. Make sure its config key is listed in `RetentionSettings.categories` (all planned ones are).
/// 2. Implement this protocol next to the data: SQL-backed categories in the storage plugin
///    (see `Plugins/SQLiteStorage/SQLiteStorage+Retention.swift`), file-only ones in core (`LogFilesCategory`).
///    - `expired(before:)` returns items *created* before the cutoff. Skip items another component still
///      works on (a call being received or a mail still queued) — they expire on a later run.
///    - `delete(_:)` removes the rows **and every derived file** (spool, outbox and outbox/failed copies,
///      reports, raw mails …), then `finishDeletion()` makes the removal physical (SQLite: secure_delete,
///      VACUUM, WAL truncation) so the bytes are gone from the disk image too, not just unlinked rows.
///    - `items(about:)` and `exportEntries(for:)` serve `gdpr export`/`erase` and export-before-delete.
/// 3. Return it from `PrivacyAssembly.categories` (FaxgateApp/PrivacyCommands.swift).
/// 4. Extend `PrivacyTests` with a case that fills the category with old and new data, runs retention and
///    scans the spool and database for the old data's bytes.
/// Legal holds, export-before-delete, dry runs and audit records are the engine's job, not the category's.
public protocol RetentionCategory: Sendable {
    /// Stable name used in audit records and reports, e.g. "received_faxes".
    var name: String { get }
    /// Key under `retention.days` in the configuration (usually the same as `name`).
    var configKey: String { get }
    /// Days to keep when the configuration does not say; 0 = keep forever.
    var defaultDays: Int { get }
    /// What the category holds, for the record of processing (Art. 30).
    var dataDescription: String { get }

    func expired(before cutoff: Date) async throws -> [RetentionItem]
    func delete(_ items: [RetentionItem]) async throws -> DeletionCounts
    /// Everything stored about one person.
    func items(about subject: SubjectID) async throws -> [RetentionItem]
    func exportEntries(for item: RetentionItem) async throws -> [ExportEntry]
    /// Called once after a run's deletions (compaction, syncing directories).
    func finishDeletion() async throws
}

extension RetentionCategory {
    public var configKey: String { name }
    public var defaultDays: Int { RetentionSettings.categories.first { $0.key == configKey }?.defaultDays ?? 0 }
    public var dataDescription: String { RetentionSettings.categories.first { $0.key == configKey }?.what ?? name }
    public func items(about subject: SubjectID) async throws -> [RetentionItem] { [] }
    public func exportEntries(for item: RetentionItem) async throws -> [ExportEntry] {
        item.files.filter { FileManager.default.fileExists(atPath: $0) }
            .map { ExportEntry(name: "\(item.id)/\(($0 as NSString).lastPathComponent)", source: .file($0)) }
    }
    public func finishDeletion() async throws {}
}

/// Removes files for good: overwritten with zeros and synced before unlinking (ext4 without journal=data
/// then has no copy left in the freed blocks on most setups), directory synced afterwards.
public enum SecureFileRemoval {
    /// Returns the bytes removed, 0 when the file did not exist.
    @discardableResult
    public static func remove(_ path: String) throws -> Int64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        let size = Int64(st.st_size)
        if (st.st_mode & S_IFMT) == S_IFREG, size > 0 {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            if fd >= 0 {
                let zeros = [UInt8](repeating: 0, count: 64 * 1024)
                var left = size
                while left > 0 {
                    let n = zeros.withUnsafeBytes { write(fd, $0.baseAddress, Int(min(Int64(zeros.count), left))) }
                    if n <= 0 { break }
                    left -= Int64(n)
                }
                fsync(fd)
                close(fd)
            }
        }
        guard unlink(path) == 0 else { throw DurableFile.Failure(description: "cannot remove \(path): \(DurableFile.errnoText())") }
        try? DurableFile.syncDirectory((path as NSString).deletingLastPathComponent)
        return size
    }
}

/// The files the gateway derives from one call: spool document and temporaries, outbox and outbox/failed
/// copies of its mails. One place, so no category forgets one (the product we replace did).
public enum SpoolFiles {
    public static func derivedFiles(callID: Int64, spoolPath: String?, spoolDirectory: String) -> [String] {
        var files: [String] = []
        if let spoolPath { files.append(spoolPath) }
        let incoming = spoolDirectory + "/incoming"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: incoming)) ?? [] {
            // <id>.sff, <id>.pdf …, and the hidden temporaries ".<id>.tiff" of a conversion.
            let bare = name.hasPrefix(".") ? String(name.dropFirst()) : name
            if bare.split(separator: ".").first == Substring(String(callID)) { files.append(incoming + "/" + name) }
        }
        for dir in [spoolDirectory + "/outbox", spoolDirectory + "/outbox/failed"] {
            for envelope in outboxEnvelopes(in: dir) where envelope.callID == callID {
                files.append("\(dir)/\(envelope.id).json")
                files.append("\(dir)/\(envelope.id).eml")
            }
        }
        // The outbox's sent marker for the call's mail ("call-<id>-<start>", ReceptionPipeline.outboxID) lives as
        // long as the call.
        let sent = spoolDirectory + "/outbox/sent"
        let stem = ReceptionPipeline.outboxID(callID: callID, startedAt: nil)
        for name in (try? FileManager.default.contentsOfDirectory(atPath: sent)) ?? [] where name == stem || name.hasPrefix(stem + "-") {
            files.append(sent + "/" + name)
        }
        return Array(Set(files)).sorted()
    }

    static func outboxEnvelopes(in dir: String) -> [Outbox.Envelope] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasSuffix(".json") }.compactMap { name in
            FileManager.default.contents(atPath: dir + "/" + name).flatMap { try? Outbox.decoder.decode(Outbox.Envelope.self, from: $0) }
        }
    }
}
