import FaxgateCore
import Foundation
import HummingbirdBcrypt
import HummingbirdOTP
import NIOPosix

/// TOTP (RFC 6238: SHA-1, 30 s, 6 digits, HummingbirdOTP) and recovery codes.
///
/// The shared secret is 32 characters of the base32 alphabet (160 bits of randomness) stored as their ASCII
/// bytes in `WebUser.totpSecret`; HummingbirdOTP keys the HMAC with those bytes and its authenticator URL
/// base32-encodes them, so the text shown to the user is `base32(secret)`.
public enum SecondFactor {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
    public static let timeStep = 30

    /// A new random secret (ASCII bytes).
    public static func newSecret() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return (0..<32).map { _ in alphabet[Int.random(in: 0..<32, using: &rng)] }
    }

    /// Whether `secret` looks like one of ours (an enrolment form sends it back).
    public static func isValidSecret(_ secret: [UInt8]) -> Bool {
        secret.count == 32 && secret.allSatisfy(alphabet.contains)
    }

    static func totp(_ secret: [UInt8]) -> TOTP { TOTP(secret: String(decoding: secret, as: UTF8.self)) }

    /// The code of time step `counter` as six digits.
    public static func code(secret: [UInt8], counter: Int64) -> String {
        let value = totp(secret).compute(date: Date(timeIntervalSince1970: Double(counter) * Double(timeStep)))
        let digits = String(value)
        return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
    }

    /// The time step of `date`.
    public static func counter(at date: Date = Date()) -> Int64 { Int64(date.timeIntervalSince1970) / Int64(timeStep) }

    /// The time step a `code` belongs to, if it is the code of now, the step before or the step after (clock
    /// drift), and that step is newer than `lastCounter` (a code is accepted once: replay protection). Every
    /// candidate is compared in constant time.
    public static func verify(code: String, secret: [UInt8], lastCounter: Int64?, now: Date = Date()) -> Int64? {
        let entered = code.filter { !$0.isWhitespace }
        guard entered.count == 6, entered.allSatisfy(\.isASCII), entered.allSatisfy(\.isNumber) else { return nil }
        let current = counter(at: now)
        var matched: Int64?
        for step in (current - 1)...(current + 1) {
            if WebSessions.constantTimeEqual(self.code(secret: secret, counter: step), entered) { matched = step }
        }
        guard let matched, matched > (lastCounter ?? Int64.min) else { return nil }
        return matched
    }

    /// The secret as the user types it into an authenticator app (base32 of its bytes, in groups of four).
    public static func displaySecret(_ secret: [UInt8]) -> String {
        let text = base32(secret)
        return stride(from: 0, to: text.count, by: 4).map { i in
            let start = text.index(text.startIndex, offsetBy: i)
            return String(text[start..<text.index(start, offsetBy: min(4, text.count - i))])
        }.joined(separator: " ")
    }

    /// The `otpauth://` URL for the QR code.
    public static func authenticatorURL(secret: [UInt8], account: String, issuer: String) -> String {
        totp(secret).createAuthenticatorURL(label: "\(issuer):\(account)", issuer: issuer)
    }

    /// RFC 4648 base32 without padding.
    public static func base32(_ bytes: [UInt8]) -> String {
        var out = "", buffer = 0, bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | Int(byte); bits += 8
            while bits >= 5 {
                out.append(Character(UnicodeScalar(alphabet[(buffer >> (bits - 5)) & 31]))); bits -= 5
            }
        }
        if bits > 0 { out.append(Character(UnicodeScalar(alphabet[(buffer << (5 - bits)) & 31]))) }
        return out
    }

    // MARK: Recovery codes

    /// Ten new recovery codes ("abcde-fghij": 50 random bits each) for the user to write down.
    public static func newRecoveryCodes() -> [String] {
        var rng = SystemRandomNumberGenerator()
        let letters = Array("abcdefghijkmnpqrstuvwxyz23456789")
        return (0..<10).map { _ in
            let chars = (0..<10).map { _ in letters[Int.random(in: 0..<letters.count, using: &rng)] }
            return String(chars[0..<5]) + "-" + String(chars[5...])
        }
    }

    /// A recovery code as entered: lowercase, without spaces; the dash is optional.
    public static func normalizedRecoveryCode(_ code: String) -> String {
        let plain = code.lowercased().filter { !$0.isWhitespace && $0 != "-" }
        guard plain.count == 10 else { return plain }
        return String(plain.prefix(5)) + "-" + String(plain.suffix(5))
    }

    /// bcrypt hashes of `codes` (cost 10: checking a code tries each stored hash). Off the event loop.
    public static func hashRecoveryCodes(_ codes: [String]) async throws -> [String] {
        try await NIOThreadPool.singleton.runIfActive { codes.map { Bcrypt.hash($0, cost: 10) } }
    }

    /// The index of the stored hash `code` matches, or nil. Off the event loop.
    public static func matchRecoveryCode(_ code: String, hashes: [String]) async throws -> Int? {
        let normalized = normalizedRecoveryCode(code)
        guard normalized.count == 11 else { return nil }
        return try await NIOThreadPool.singleton.runIfActive { hashes.firstIndex { Bcrypt.verify(normalized, hash: $0) } }
    }
}

/// bcrypt for passwords, run on NIO's thread pool so a login does not block an event loop.
public enum Passwords {
    /// The cost of new password hashes.
    public static let cost: UInt8 = 12
    /// A hash to verify against when the name is unknown, so the answer takes as long as for a known name.
    static let dummyHash = Bcrypt.hash("faxgate-no-such-user", cost: cost)

    public static func hash(_ password: String) async throws -> String {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    public static func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    /// Why `password` is not acceptable for `name` (a strings key), or nil: at least 12 characters, not the name.
    public static func problem(_ password: String, name: String) -> String? {
        if password.count < 12 { return "account.password.too_short" }
        if password.lowercased() == name.lowercased() { return "account.password.is_name" }
        if password.count > 200 { return "account.password.too_long" }
        return nil
    }
}
