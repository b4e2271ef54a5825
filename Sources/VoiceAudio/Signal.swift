import Foundation

/// Finds the end of a message: trailing silence measured over whole 20 ms frames of line audio.
///
/// Telephone lines are never digitally silent (comfort noise, hum), so "silence" is an energy threshold:
/// a frame whose RMS stays below `threshold` (default −40 dBFS ≈ 328) counts as silent.
public struct SilenceDetector: Sendable {
    public let frameSamples = 160
    public var threshold: Double
    private var frameEnergy: Double = 0
    private var frameCount = 0
    /// Samples of silence at the end of what was fed so far.
    public private(set) var trailingSilentSamples = 0
    public private(set) var samplesSeen = 0

    public init(threshold: Double = 328) { self.threshold = threshold }

    public var trailingSilence: Double { Double(trailingSilentSamples) / Double(G711.sampleRate) }

    /// Feeds line bytes (bit-reversed A-law).
    public mutating func feed(line bytes: [UInt8]) {
        for b in bytes { feed(sample: G711.linear(G711.reverseBits(b))) }
    }

    public mutating func feed(sample: Int16) {
        let v = Double(sample)
        frameEnergy += v * v
        frameCount += 1
        samplesSeen += 1
        if frameCount == frameSamples {
            let rms = (frameEnergy / Double(frameSamples)).squareRoot()
            if rms < threshold { trailingSilentSamples += frameSamples } else { trailingSilentSamples = 0 }
            frameEnergy = 0; frameCount = 0
        }
    }
}

public enum Tone {
    /// A sine beep in PCM: `frequency` Hz for `seconds`, with 10 ms ramps so it does not click.
    public static func beep(frequency: Double = 1000, seconds: Double = 0.4, amplitude: Double = 8000) -> [Int16] {
        let n = Int(seconds * Double(G711.sampleRate)), ramp = G711.sampleRate / 100
        return (0..<n).map { i in
            let env = min(1, Double(min(i, n - 1 - i)) / Double(ramp))
            return Int16(amplitude * env * sin(2 * .pi * frequency * Double(i) / Double(G711.sampleRate)))
        }
    }

    /// What follows every greeting: a short pause, then the beep, in line format.
    public static var greetingBeep: [UInt8] {
        [UInt8](repeating: G711.lineSilence, count: G711.sampleRate / 5) + G711.lineBytes(beep())
    }
}

public enum AudioCompare {
    /// Pearson correlation of two sample arrays over their common length.
    public static func correlation(_ a: [Int16], _ b: [Int16]) -> Double {
        let n = min(a.count, b.count)
        guard n > 1 else { return 0 }
        var sa = 0.0, sb = 0.0
        for i in 0..<n { sa += Double(a[i]); sb += Double(b[i]) }
        let ma = sa / Double(n), mb = sb / Double(n)
        var num = 0.0, da = 0.0, db = 0.0
        for i in 0..<n {
            let x = Double(a[i]) - ma, y = Double(b[i]) - mb
            num += x * y; da += x * x; db += y * y
        }
        return da == 0 || db == 0 ? 0 : num / (da * db).squareRoot()
    }
}
