/// The retry policy's modem half: what the next attempt of a job may offer after a typed T.30 failure.
///
/// GOfax.IP's `disablev17afterretry` / `disableECMafterretry` are the model, made stepwise: a training failure
/// costs one rung of the rate ladder (V.17 14400 → V.29 9600 → V.27ter 4800), a refused page (or ECM that could
/// not repair it) turns ECM off. Limits only ever go down within a job: a line that failed once at a rate is not
/// trusted with it again on the next try.
public enum ModemFallback {
    /// The rates a next attempt may be limited to, best first.
    public static let ladder = [14400, 9600, 4800]

    /// Limits for the next attempt after an attempt that ran with `used` and ended with `failure`.
    /// A nil failure (or a kind that says nothing about the modems) leaves the limits as they are.
    public static func next(after failure: T30Failure?, used: ModemSettings) -> ModemSettings {
        guard let failure else { return used }
        var next = used
        switch failure.kind {
        case .trainingFailed:
            // Start from the rate it actually failed at; a lower limit already in force wins.
            let failedAt = min(failure.bitRate ?? used.maxBitRate ?? ladder[0], used.maxBitRate ?? Int.max)
            next.maxBitRate = lowerRate(than: failedAt)
        case .pageRefused:
            if used.ecm {
                next.ecm = false
            } else {
                // Without ECM a refused page means the line garbles it at this rate: slow down instead.
                let sentAt = min(failure.bitRate ?? used.maxBitRate ?? ladder[0], used.maxBitRate ?? Int.max)
                next.maxBitRate = lowerRate(than: sentAt)
            }
        case .noResponse, .incompatible, .remoteDisconnected, .local, .other:
            break
        }
        return next
    }

    /// The next ladder rate strictly below `rate`; the lowest rung when there is none below (it cannot go lower).
    static func lowerRate(than rate: Int) -> Int {
        ladder.first { $0 < rate } ?? ladder[ladder.count - 1]
    }

    /// Whether the failure kind is one the fallback acts on (it counts as a protocol error like any T.30 failure).
    public static func changesModem(_ kind: T30Failure.Kind) -> Bool { kind == .trainingFailed || kind == .pageRefused }
}

extension ModemSettings {
    /// For event lines and the journal (English): "at most 9600 bit/s, ECM off".
    public var summary: String {
        (maxBitRate.map { "at most \($0) bit/s" } ?? "best rate") + (ecm ? ", ECM on" : ", ECM off")
    }
}
