// Two FaxEngines on one virtual line, in virtual time: the tests' and the bench's way to run a whole T.30
// session through spandsp in milliseconds, deterministically (impairments come from a seeded generator).
#if canImport(Glibc)
import Glibc
#endif
import FaxDocument
import VoiceAudio

public struct BackToBackLine: Sendable {
    public enum Codec: Sendable { case linear, alaw }
    public var codec: Codec
    /// Samples per frame in each direction (160 = 20 ms, the B-channel block size).
    public var frameSamples: Int
    /// Probability that a frame is lost, per frame and direction.
    public var frameLoss: Double
    /// A lost frame is replaced by silence (a jitter buffer underrun) instead of vanishing (concealment/drop).
    public var lostFramesBecomeSilence: Bool
    /// A lost frame is reported to the receiving engine as lost (`receiveLost`, spandsp's fill-in), as a receiver
    /// that sees packet sequence numbers can. Ignored when `lostFramesBecomeSilence`.
    public var lostFramesFilledIn: Bool = false
    /// Probability of each bit of an A-law byte flipping (ignored for `.linear`).
    public var bitErrorRate: Double
    /// Clock difference between the two ends in ppm: one sample dropped (positive) or repeated (negative) each 10⁶/|ppm|.
    public var clockDriftPPM: Double
    public var seed: UInt64
    /// Line time after which both ends are hung up.
    public var maxLineSeconds: Double
    /// After one end finished, how long the other gets before the line is hung up under it.
    public var hangupDelaySeconds: Double

    public init(codec: Codec = .linear, frameSamples: Int = 160, frameLoss: Double = 0, lostFramesBecomeSilence: Bool = false,
                bitErrorRate: Double = 0, clockDriftPPM: Double = 0, seed: UInt64 = 1, maxLineSeconds: Double = 600,
                hangupDelaySeconds: Double = 1) {
        self.codec = codec; self.frameSamples = frameSamples; self.frameLoss = frameLoss
        self.lostFramesBecomeSilence = lostFramesBecomeSilence; self.bitErrorRate = bitErrorRate
        self.clockDriftPPM = clockDriftPPM; self.seed = seed; self.maxLineSeconds = maxLineSeconds
        self.hangupDelaySeconds = hangupDelaySeconds
    }
}

public struct BackToBackOutcome: Sendable {
    public var sender: FaxEngineResult
    public var receiver: FaxEngineResult
    public var receivedPages: [FaxPage]
    public var senderEvents: [FaxEngineEvent]
    public var receiverEvents: [FaxEngineEvent]
    /// Virtual line time the session took.
    public var lineSeconds: Double
    /// CPU time spent inside both engines (this thread), and wall time of the whole run.
    public var engineCPUSeconds: Double
    public var wallSeconds: Double
    /// Frames lost and bits flipped, per the impairments.
    public var framesLost: Int
    public var bitsFlipped: Int
}

public enum BackToBack {
    /// Sends `pages` from an engine with `sender` options to one with `receiver` options. Work files go into
    /// `workDirectory`/sender and /receiver.
    public static func run(pages: [FaxPage], sender: FaxEngineOptions, receiver: FaxEngineOptions,
                           line: BackToBackLine = BackToBackLine(), workDirectory: String) throws(FaxEngineError) -> BackToBackOutcome {
        let wallStart = now(CLOCK_MONOTONIC)
        for dir in [workDirectory, workDirectory + "/sender", workDirectory + "/receiver"] { mkdir(dir, 0o700) }
        let tx = try FaxEngine(options: sender, send: pages, workDirectory: workDirectory + "/sender")
        let rx = try FaxEngine(options: receiver, send: nil, workDirectory: workDirectory + "/receiver")
        var rng = SeededRandom(seed: line.seed)
        var forward = Channel(line: line, driftSign: 1)
        var backward = Channel(line: line, driftSign: -1)
        var txEvents: [FaxEngineEvent] = [], rxEvents: [FaxEngineEvent] = []
        var cpu = 0.0
        var samples = 0
        let maxSamples = Int(line.maxLineSeconds * 8000)
        var hangupAt: Int?
        let frame = max(1, line.frameSamples)
        while !(tx.isFinished && rx.isFinished) {
            if samples >= maxSamples || (hangupAt.map { samples >= $0 } ?? false) {
                let t0 = now(CLOCK_THREAD_CPUTIME_ID)
                tx.lineDisconnected()
                rx.lineDisconnected()
                cpu += now(CLOCK_THREAD_CPUTIME_ID) - t0
                txEvents += tx.takeEvents(); rxEvents += rx.takeEvents()
                break
            }
            let t0 = now(CLOCK_THREAD_CPUTIME_ID)
            let a = tx.transmit(count: frame)
            let b = rx.transmit(count: frame)
            cpu += now(CLOCK_THREAD_CPUTIME_ID) - t0
            let toRx = forward.carry(a, rng: &rng)
            let toTx = backward.carry(b, rng: &rng)
            let t1 = now(CLOCK_THREAD_CPUTIME_ID)
            if let toRx { rx.receive(toRx) } else if line.lostFramesFilledIn { rx.receiveLost(count: frame) }
            if let toTx { tx.receive(toTx) } else if line.lostFramesFilledIn { tx.receiveLost(count: frame) }
            cpu += now(CLOCK_THREAD_CPUTIME_ID) - t1
            txEvents += tx.takeEvents(); rxEvents += rx.takeEvents()
            samples += frame
            // The end that finishes first hangs up shortly after (its DCN has gone out by then).
            if hangupAt == nil && (tx.isFinished || rx.isFinished) {
                hangupAt = samples + Int(line.hangupDelaySeconds * 8000)
            }
        }
        func result(_ events: [FaxEngineEvent]) -> FaxEngineResult {
            for case .finished(let r) in events { return r }
            return FaxEngineResult(kind: .other, code: -1, text: "no result", pages: 0, remoteIdent: nil, bitRate: nil, ecm: nil,
                                   compression: nil, ecmRetransmittedFrames: 0)
        }
        var received: [FaxPage] = []
        for case .page(_, let page?) in rxEvents { received.append(page) }
        return BackToBackOutcome(sender: result(txEvents), receiver: result(rxEvents), receivedPages: received,
                                 senderEvents: txEvents, receiverEvents: rxEvents, lineSeconds: Double(samples) / 8000,
                                 engineCPUSeconds: cpu, wallSeconds: now(CLOCK_MONOTONIC) - wallStart,
                                 framesLost: forward.framesLost + backward.framesLost,
                                 bitsFlipped: forward.bitsFlipped + backward.bitsFlipped)
    }

    static func now(_ clock: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(clock, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// One direction of the line: codec, loss, bit errors, clock drift.
    struct Channel {
        let line: BackToBackLine
        /// Samples between two drift corrections (0 = none); the two directions drift opposite ways.
        let driftEvery: Int
        let dropOnDrift: Bool
        var untilDrift: Int
        var framesLost = 0
        var bitsFlipped = 0

        init(line: BackToBackLine, driftSign: Double) {
            self.line = line
            let ppm = line.clockDriftPPM * driftSign
            driftEvery = ppm == 0 ? 0 : max(1, Int((1e6 / abs(ppm)).rounded()))
            dropOnDrift = ppm > 0
            untilDrift = driftEvery
        }

        /// nil: the frame was lost.
        mutating func carry(_ input: [Int16], rng: inout SeededRandom) -> [Int16]? {
            var samples = input
            if line.codec == .alaw {
                var bytes = samples.map(G711.lineByte)
                if line.bitErrorRate > 0 {
                    for i in bytes.indices {
                        for bit in 0..<8 where rng.nextDouble() < line.bitErrorRate {
                            bytes[i] ^= UInt8(1 << bit)
                            bitsFlipped += 1
                        }
                    }
                }
                samples = bytes.map(G711.lineSample)
            }
            if line.frameLoss > 0 && rng.nextDouble() < line.frameLoss {
                framesLost += 1
                if !line.lostFramesBecomeSilence { return nil }
                samples = [Int16](repeating: 0, count: samples.count)
            }
            if driftEvery > 0 {
                var out: [Int16] = []
                out.reserveCapacity(samples.count + 1)
                for s in samples {
                    untilDrift -= 1
                    if untilDrift == 0 {
                        untilDrift = driftEvery
                        if dropOnDrift { continue }
                        out.append(s)
                    }
                    out.append(s)
                }
                samples = out
            }
            return samples
        }
    }
}

