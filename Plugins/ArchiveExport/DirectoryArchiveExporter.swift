import FaxgateCore
import Foundation

/// Export before delete into a directory (for legal retention duties, e.g. § 147 AO: business letters
/// kept 6 or 10 years): `<archive>/<category>/<YYYY-MM>/<item id>/…`, directories 0700, files 0600,
/// every file written durably (tmp → fsync → rename) before the engine may delete the original.
///
/// The archive is meant to live on storage the admin backs up and protects; faxgate never deletes from
/// it — what is archived for a legal duty is the admin's to dispose of when the duty ends.
public struct DirectoryArchiveExporter: ArchiveExporter {
    public let name = "directory"
    public let directory: String
    public init(directory: String) { self.directory = directory }

    public func export(_ item: RetentionItem, entries: [ExportEntry]) async throws {
        let month = String(ISO8601DateFormatter().string(from: item.createdAt).prefix(7))
        let base = "\(directory)/\(item.category)/\(month)"
        for entry in entries {
            let target = base + "/" + Self.safe(entry.name)
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let bytes: [UInt8]
            switch entry.source {
            case .bytes(let b): bytes = b
            case .file(let path):
                guard let data = FileManager.default.contents(atPath: path) else { throw StorageError("cannot read \(path) for export") }
                bytes = [UInt8](data)
            }
            try DurableFile.write(bytes, to: target, mode: 0o600)
        }
        // The item's own record: what it was and when it was archived, so an auditor can tell the two apart.
        let meta = ["category": item.category, "id": item.id, "created": ISO8601DateFormatter().string(from: item.createdAt),
                    "archived": ISO8601DateFormatter().string(from: Date())]
        let data = try JSONSerialization.data(withJSONObject: meta, options: [.sortedKeys, .prettyPrinted])
        try FileManager.default.createDirectory(atPath: "\(base)/\(item.id)", withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        try DurableFile.write([UInt8](data), to: "\(base)/\(item.id)/archived.json", mode: 0o600)
    }

    /// Entry names come from our own categories, but a path must never climb out of the archive.
    static func safe(_ name: String) -> String {
        name.split(separator: "/").filter { $0 != ".." && $0 != "." && !$0.isEmpty }.joined(separator: "/")
    }
}
