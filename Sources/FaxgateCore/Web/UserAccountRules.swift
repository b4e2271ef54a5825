import Foundation

/// The rules for accounts that `faxgate user` and the admin's users page share, so both refuse the same things.
public enum UserAccountRules {
    /// Login names: lowercase ASCII letters, digits, `.`, `-`, `_`, 1–64 characters, starting with a letter or digit.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), let first = name.utf8.first,
              (0x61...0x7A).contains(first) || (0x30...0x39).contains(first) else { return false }
        return name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x2D || $0 == 0x5F }
    }

    /// Letters and digits that cannot be mistaken for each other when read aloud or copied by hand (no 0/O, 1/l/I).
    static let alphabet = Array("abcdefghjkmnpqrstuvwxyz23456789")

    /// A one-time password: 4 groups of 5 characters (about 99 bits) from the system's random source. Shown once,
    /// stored only as a bcrypt hash; the next login must choose a new password.
    public static func oneTimePassword() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<4).map { _ in String((0..<5).map { _ in alphabet[Int(generator.next(upperBound: UInt(alphabet.count)))] }) }
            .joined(separator: "-")
    }

    /// The names in `extensions` that no configured extension has.
    public static func unknownExtensions(_ extensions: [String], configured: [String]) -> [String] {
        extensions.filter { !configured.contains($0) }
    }

    /// Whether `changed` (the new version of one of `users`) would leave no enabled admin: the gateway must stay
    /// administrable without a shell.
    public static func leavesNoActiveAdmin(_ changed: WebUser, among users: [WebUser]) -> Bool {
        let after = users.map { $0.id == changed.id ? changed : $0 }
        return !after.contains { $0.role == .admin && !$0.disabled }
    }
}
