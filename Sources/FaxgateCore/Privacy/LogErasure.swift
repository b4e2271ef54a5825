import Foundation

/// `gdpr erase` for log files: lines keep no number or address, but they do keep the subject's pseudonym, which
/// still lets the logs be linked to the person. Erasure replaces that pseudonym everywhere with "erased".
public enum LogErasure {
    /// Replaces `token` (e.g. "[phone:kqzmtrwe]") in every log file of `directory`; returns the files changed.
    @discardableResult
    public static func erase(token: String, kind: String, in directory: String) throws -> Int {
        var changed = 0
        for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
            let path = "\(directory)/\(name)"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            guard text.contains(token) else { continue }
            try DurableFile.write(Array(text.replacingOccurrences(of: token, with: "[\(kind):erased]").utf8), to: path, mode: 0o640)
            changed += 1
        }
        return changed
    }
}
