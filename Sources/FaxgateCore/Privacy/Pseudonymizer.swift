import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Deterministic pseudonyms: the same number or address always gets the same short token under one key,
/// so support can follow one caller through a log without learning who it is.
///
/// Token = first 40 bits of HMAC-SHA256(key, kind ":" normalized value), written as 8 lower-case letters
/// (never digits, so the phone rule cannot mistake a pseudonym for a number on a second pass).
/// The installation key lives in `<spool>/privacy/pseudonym.key`, mode 0600; a snapshot may use its own key.
public struct Pseudonymizer: Sendable {
    public let key: [UInt8]
    public let countryCode: String?

    public init(key: [UInt8], countryCode: String?) { self.key = key; self.countryCode = countryCode }

    /// A fresh random key (for a per-snapshot pseudonym space or tests).
    public static func randomKey() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
    }

    public func token(kind: String, normalized: String) -> String {
        let mac = Array(HMAC<SHA256>.authenticationCode(for: Array("\(kind):\(normalized)".utf8), using: SymmetricKey(data: key)))
        // 5 bytes → 8 symbols of 5 bits each, letters only (no l, which reads like 1).
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFG".utf8).map { Character(UnicodeScalar($0)) }
        var bits: UInt64 = 0
        for b in mac.prefix(5) { bits = bits << 8 | UInt64(b) }
        return String((0..<8).reversed().map { alphabet[Int((bits >> (UInt64($0) * 5)) & 31)] })
    }

    public func phone(_ text: String) -> String {
        let n = SubjectID.normalizePhone(text, countryCode: countryCode) ?? SubjectID.asciiDigits(text)
        return "[phone:\(token(kind: "phone", normalized: n))]"
    }

    public func email(_ text: String) -> String {
        // Composed and decomposed "ü" are one address.
        "[email:\(token(kind: "email", normalized: text.precomposedStringWithCanonicalMapping.lowercased()))]"
    }

    /// Any other value (names, station ids with letters): normalized by case and spacing only.
    public func other(_ kind: String, _ text: String) -> String {
        let n = text.precomposedStringWithCanonicalMapping.lowercased().split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return "[\(kind):\(token(kind: kind, normalized: n))]"
    }

    /// The token a subject gets in logs — lets `gdpr export` find a person's (pseudonymized) log lines.
    public func token(for subject: SubjectID) -> String {
        subject.kind == .phone ? "[phone:\(token(kind: "phone", normalized: subject.normalized))]"
            : "[email:\(token(kind: "email", normalized: subject.normalized))]"
    }

    /// Loads the installation key, creating it (0600, directory 0700) when `create` and it is missing.
    public static func installationKey(spoolDirectory: String, create: Bool) throws -> [UInt8]? {
        let dir = spoolDirectory + "/privacy"
        let path = dir + "/pseudonym.key"
        if let data = FileManager.default.contents(atPath: path), data.count >= 32 { return [UInt8](data) }
        guard create else { return nil }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let key = randomKey()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 {
            // Another process created it first: use theirs so both agree on pseudonyms.
            if errno == EEXIST, let data = FileManager.default.contents(atPath: path), data.count >= 32 { return [UInt8](data) }
            throw DurableFile.Failure(description: "cannot create \(path): \(DurableFile.errnoText())")
        }
        defer { close(fd) }
        let written = key.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == key.count, fsync(fd) == 0 else {
            throw DurableFile.Failure(description: "cannot write \(path): \(DurableFile.errnoText())")
        }
        SpoolOwnership.adopt([dir, path], spoolDirectory: spoolDirectory)
        return key
    }
}

/// Files an admin command creates as root must stay usable by the unprivileged daemon.
public enum SpoolOwnership {
    public static func adopt(_ paths: [String], spoolDirectory: String) {
        guard geteuid() == 0 else { return }
        var st = stat()
        guard stat(spoolDirectory, &st) == 0, st.st_uid != 0 else { return }
        for p in paths { _ = chown(p, st.st_uid, st.st_gid) }
    }
}
