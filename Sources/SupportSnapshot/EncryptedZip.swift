import CArchive
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct ArchiveFailure: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// An AES-256 encrypted ZIP written through libarchive (WinZip AE-2; 7-Zip and bsdtar open it).
///
/// Every libarchive return value is checked: libarchive accepts a passphrase even for formats that cannot
/// encrypt and then writes plain data (7z does exactly that), so a missed check means an unencrypted
/// snapshot. After closing, `verifyEncrypted` reads the local headers back as a second line of defence.
public final class EncryptedZipWriter {
    private var archive: OpaquePointer?
    private let fd: Int32
    public let path: String
    public private(set) var entries = 0
    private var closed = false

    /// Creates `path` (must not exist) with mode 0600.
    public init(path: String, passphrase: String) throws {
        guard passphrase.utf8.count >= 16 else { throw ArchiveFailure(description: "passphrase too short") }
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ArchiveFailure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        guard let a = archive_write_new() else { close(fd); unlink(path); throw ArchiveFailure(description: "archive_write_new failed") }
        archive = a
        do {
            try check(archive_write_set_format_zip(a), "set format zip")
            try check(archive_write_set_options(a, "zip:encryption=aes256"), "enable AES-256 encryption")
            try check(archive_write_set_passphrase(a, passphrase), "set passphrase")
            try check(archive_write_open_fd(a, fd), "open \(path)")
        } catch {
            archive_write_free(a); archive = nil; close(fd); unlink(path)
            throw error
        }
    }

    deinit {
        if let archive { archive_write_free(archive) }
        if !closed { close(fd); unlink(path) }
    }

    private func check(_ rc: Int32, _ what: String) throws {
        guard rc == ARCHIVE_OK else {
            let detail = archive.flatMap { archive_error_string($0) }.map { String(cString: $0) } ?? "code \(rc)"
            throw ArchiveFailure(description: "libarchive: \(what): \(detail)")
        }
    }

    /// Adds one file. `chunks` is called until it returns nil, so large logs stream through.
    public func add(name: String, size: Int, modified: Date = Date(), chunks: () throws -> [UInt8]?) throws {
        guard let a = archive else { throw ArchiveFailure(description: "archive already closed") }
        guard let entry = archive_entry_new() else { throw ArchiveFailure(description: "archive_entry_new failed") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, name)
        archive_entry_set_size(entry, la_int64_t(size))
        archive_entry_set_filetype(entry, 0o100000)  // AE_IFREG (a cast macro Swift does not import)
        archive_entry_set_perm(entry, 0o600)
        archive_entry_set_mtime(entry, time_t(modified.timeIntervalSince1970), 0)
        try check(archive_write_header(a, entry), "write header of \(name)")
        var written = 0
        while let chunk = try chunks() {
            guard !chunk.isEmpty else { continue }
            let n = chunk.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
            guard n == chunk.count else { throw ArchiveFailure(description: "libarchive: short write of \(name) (\(n) of \(chunk.count))") }
            written += n
        }
        guard written == size else { throw ArchiveFailure(description: "\(name): wrote \(written) bytes, announced \(size)") }
        try check(archive_write_finish_entry(a), "finish \(name)")
        entries += 1
    }

    public func add(name: String, bytes: [UInt8], modified: Date = Date()) throws {
        var sent = false
        try add(name: name, size: bytes.count, modified: modified) {
            if sent { return nil }
            sent = true
            return bytes
        }
    }

    /// Finishes the archive, syncs it, and checks that every entry really is encrypted.
    public func finish() throws {
        guard let a = archive else { return }
        try check(archive_write_close(a), "close archive")
        archive_write_free(a)
        archive = nil
        guard fsync(fd) == 0 else { throw ArchiveFailure(description: "fsync \(path): \(String(cString: strerror(errno)))") }
        Glibc.close(fd)
        closed = true
        try Self.verifyEncrypted(path: path, expectedEntries: entries)
    }

    /// Reads the ZIP's local file headers: each must have the encryption flag and AES method 99.
    public static func verifyEncrypted(path: String, expectedEntries: Int) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw ArchiveFailure(description: "cannot read \(path)") }
        let b = [UInt8](data)
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        var offset = 0, seen = 0
        while offset + 30 <= b.count, u32(offset) == 0x04034b50 {
            let flags = u16(offset + 6), method = u16(offset + 8)
            guard flags & 1 == 1, method == 99 else {
                throw ArchiveFailure(description: "entry \(seen + 1) of \(path) is not AES-encrypted (flags \(flags), method \(method))")
            }
            seen += 1
            // Sizes may be in a trailing data descriptor (flag bit 3); then walk by the central directory instead.
            if flags & 8 != 0 { break }
            offset += 30 + u16(offset + 26) + u16(offset + 28) + u32(offset + 18)
        }
        if seen == 0 && expectedEntries > 0 { throw ArchiveFailure(description: "\(path) has no readable ZIP entries") }
        // Central directory (found through the end record): every entry listed there must be encrypted too.
        guard b.count >= 22, let eocd = stride(from: b.count - 22, through: max(0, b.count - 22 - 65_535), by: -1)
            .first(where: { u32($0) == 0x06054b50 }) else { throw ArchiveFailure(description: "\(path): no ZIP end record") }
        var o = u32(eocd + 16), listed = 0
        for _ in 0..<u16(eocd + 10) {
            guard o + 46 <= b.count, u32(o) == 0x02014b50 else { throw ArchiveFailure(description: "\(path): broken central directory") }
            guard u16(o + 8) & 1 == 1, u16(o + 10) == 99 else {
                throw ArchiveFailure(description: "central directory entry \(listed + 1) of \(path) is not AES-encrypted")
            }
            listed += 1
            o += 46 + u16(o + 28) + u16(o + 30) + u16(o + 32)
        }
        guard listed == expectedEntries else {
            throw ArchiveFailure(description: "\(path): \(listed) entries in the central directory, expected \(expectedEntries)")
        }
    }
}

/// Generated snapshot passphrases: 6 groups of 5 base32 characters (RFC 4648 alphabet) = 150 bits,
/// easy to read out over the phone and to type, from the system's CSPRNG (getrandom).
public enum Passphrase {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    public static let bits = 150
    public static func generate() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<6).map { _ in String((0..<5).map { _ in alphabet[Int.random(in: 0..<32, using: &g)] }) }.joined(separator: "-")
    }
}
