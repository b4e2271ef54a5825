import Foundation

/// Daily log files (`log/faxgate-YYYY-MM-DD.log`). A file's age is the day in its name — the day it was
/// created — and it expires once that whole day lies before the cutoff.
public struct LogFilesCategory: RetentionCategory {
    public let name = "logs"
    public let directory: String
    public init(directory: String) { self.directory = directory }

    public func expired(before cutoff: Date) async throws -> [RetentionItem] {
        DailyLogFiles.files(in: directory).filter { $0.day.addingTimeInterval(86_400) <= cutoff }.map {
            RetentionItem(category: name, id: ($0.path as NSString).lastPathComponent, createdAt: $0.day, files: [$0.path])
        }
    }

    public func delete(_ items: [RetentionItem]) async throws -> DeletionCounts {
        var counts = DeletionCounts()
        for item in items {
            counts.items += 1
            for file in item.files {
                let bytes = try SecureFileRemoval.remove(file)
                counts.files += 1; counts.bytes += bytes
            }
        }
        return counts
    }
}

/// Metadata written next to each snapshot (`<name>.json`); never the passphrase.
public struct SnapshotInfo: Sendable, Codable {
    public var name: String
    public var createdAt: Date
    public var from: Date?
    public var to: Date?
    public var bytes: Int64
    public var entries: Int
    public var mailedTo: String?
    public init(name: String, createdAt: Date, from: Date?, to: Date?, bytes: Int64, entries: Int, mailedTo: String? = nil) {
        self.name = name; self.createdAt = createdAt; self.from = from; self.to = to; self.bytes = bytes; self.entries = entries
        self.mailedTo = mailedTo
    }

    public static let encoder: JSONEncoder = {
        let e = JSONEncoder(); e.dateEncodingStrategy = .iso8601; e.outputFormatting = [.prettyPrinted, .sortedKeys]; return e
    }()
    public static let decoder: JSONDecoder = { let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601; return d }()

    /// Snapshots in the directory, oldest first. A ZIP without its sidecar still counts (age from its name).
    public static func list(in directory: String) -> [SnapshotInfo] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".zip") }.compactMap { zip -> SnapshotInfo? in
            let base = String(zip.dropLast(4))
            if let data = FileManager.default.contents(atPath: "\(directory)/\(base).json"),
               let info = try? decoder.decode(SnapshotInfo.self, from: data) { return info }
            var st = stat()
            guard stat("\(directory)/\(zip)", &st) == 0 else { return nil }
            // No sidecar: the file's change time is the best creation time we have.
            return SnapshotInfo(name: base, createdAt: Date(timeIntervalSince1970: TimeInterval(st.st_ctim.tv_sec)), from: nil, to: nil,
                                bytes: Int64(st.st_size), entries: 0)
        }.sorted { $0.createdAt < $1.createdAt }
    }
}

/// Support snapshots in `snapshot.directory`: the ZIP and its sidecar.
public struct SnapshotsCategory: RetentionCategory {
    public let name = "snapshots"
    public let directory: String
    public init(directory: String) { self.directory = directory }

    public func expired(before cutoff: Date) async throws -> [RetentionItem] {
        SnapshotInfo.list(in: directory).filter { $0.createdAt < cutoff }.map {
            RetentionItem(category: name, id: $0.name, createdAt: $0.createdAt,
                          files: ["\(directory)/\($0.name).zip", "\(directory)/\($0.name).json"])
        }
    }

    public func delete(_ items: [RetentionItem]) async throws -> DeletionCounts {
        var counts = DeletionCounts()
        for item in items {
            counts.items += 1
            for file in item.files where FileManager.default.fileExists(atPath: file) {
                counts.bytes += try SecureFileRemoval.remove(file)
                counts.files += 1
            }
        }
        return counts
    }
}
