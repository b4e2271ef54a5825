import FaxgateCore
import Foundation

/// Lockout with back-off: after `lockout_threshold` consecutive failures the account is locked for
/// `lockout_minutes`, and each further failure doubles that, up to `lockout_max_minutes`.
public enum LoginLockout {
    /// How long `failures` consecutive failures lock the account; nil below the threshold.
    public static func duration(failures: Int, settings: WebSettings) -> TimeInterval? {
        let threshold = max(1, settings.lockoutThreshold)
        guard failures >= threshold else { return nil }
        let doublings = min(failures - threshold, 20)
        let minutes = min(Double(max(1, settings.lockoutMinutes)) * pow(2, Double(doublings)), Double(max(1, settings.lockoutMaxMinutes)))
        return minutes * 60
    }

    /// `user` after one more failure at `now`.
    public static func failed(_ user: WebUser, now: Date, settings: WebSettings) -> WebUser {
        var user = user
        user.failedLogins += 1
        if let lock = duration(failures: user.failedLogins, settings: settings) { user.lockedUntil = now.addingTimeInterval(lock) }
        return user
    }
}

/// The same bookkeeping for names that are not accounts (or disabled ones), kept in memory: a guessed name
/// locks exactly as a real one, so the answers never tell whether a name exists.
actor UnknownNameLockouts {
    static let shared = UnknownNameLockouts()
    private var entries: [String: (failures: Int, lockedUntil: Date?, last: Date)] = [:]

    /// When `name` is locked until (nil = not locked).
    func lockedUntil(_ name: String, now: Date) -> Date? {
        guard let until = entries[name]?.lockedUntil, until > now else { return nil }
        return until
    }

    /// Records a failure; returns the lock it caused, if any.
    func failed(_ name: String, now: Date, settings: WebSettings) -> Date? {
        if entries.count > 10_000 {
            // Bounded memory: forget entries idle for a day, then the oldest half.
            entries = entries.filter { now.timeIntervalSince($0.value.last) < 86_400 }
            if entries.count > 10_000 {
                let keep = entries.sorted { $0.value.last > $1.value.last }.prefix(5_000)
                entries = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
            }
        }
        var entry = entries[name] ?? (0, nil, now)
        entry.failures += 1
        entry.last = now
        if let lock = LoginLockout.duration(failures: entry.failures, settings: settings) { entry.lockedUntil = now.addingTimeInterval(lock) }
        entries[name] = entry
        return entry.lockedUntil.flatMap { $0 > now ? $0 : nil }
    }
}
