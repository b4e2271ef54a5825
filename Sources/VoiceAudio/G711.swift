/// G.711 A-law as it travels on an ISDN B-channel through CAPI: one byte per sample at 8000 samples/s,
/// each byte bit-reversed (the line sends the least significant bit first), so silence 0xD5 arrives as 0xAB.
public enum G711 {
    public static let sampleRate = 8000
    /// A-law silence on the line (0xD5, bit-reversed).
    public static let lineSilence: UInt8 = 0xAB

    /// Reverses the bit order of a byte.
    @inline(__always)
    public static func reverseBits(_ b: UInt8) -> UInt8 { reverseTable[Int(b)] }

    static let reverseTable: [UInt8] = (0..<256).map { v -> UInt8 in
        var x = UInt8(v), r: UInt8 = 0
        for _ in 0..<8 { r = r << 1 | x & 1; x >>= 1 }
        return r
    }

    /// Encodes one linear 16-bit sample to A-law (ITU-T G.711, segment search as in the reference code).
    public static func alaw(_ sample: Int16) -> UInt8 {
        var pcm = Int(sample) >> 3          // 13-bit magnitude domain
        var mask: Int
        if pcm >= 0 { mask = 0xD5 } else { mask = 0x55; pcm = -pcm - 1 }
        let segEnds = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]
        var seg = 8
        for (i, end) in segEnds.enumerated() where pcm <= end { seg = i; break }
        if seg >= 8 { return UInt8(0x7F ^ mask) }
        var aval = seg << 4
        aval |= seg < 2 ? (pcm >> 1) & 0x0F : (pcm >> seg) & 0x0F
        mask &= 0xFF
        return UInt8((aval ^ mask) & 0xFF)
    }

    /// Decodes one A-law byte to a linear 16-bit sample.
    public static func linear(_ a: UInt8) -> Int16 { decodeTable[Int(a)] }

    static let decodeTable: [Int16] = (0..<256).map { v -> Int16 in
        let a = v ^ 0x55
        var t = (a & 0x0F) << 4
        let seg = (a & 0x70) >> 4
        switch seg {
        case 0: t += 8
        case 1: t += 0x108
        default: t += 0x108; t <<= seg - 1
        }
        return Int16(a & 0x80 != 0 ? t : -t)
    }

    /// One linear sample to its line byte (A-law, bit-reversed) by table: the software fax modem converts every
    /// sample of a call, so the segment search runs once per 13-bit value at start instead of per sample.
    @inline(__always) public static func lineByte(_ sample: Int16) -> UInt8 { lineEncodeTable[Int(sample >> 3) + 4096] }
    /// One line byte to its linear sample.
    @inline(__always) public static func lineSample(_ byte: UInt8) -> Int16 { lineDecodeTable[Int(byte)] }
    /// A-law only looks at sample >> 3: 8192 entries cover every Int16.
    static let lineEncodeTable: [UInt8] = (0..<8192).map { reverseBits(alaw(Int16(($0 - 4096) << 3))) }
    static let lineDecodeTable: [Int16] = (0..<256).map { linear(reverseBits(UInt8($0))) }

    /// PCM samples to line bytes (A-law, bit-reversed).
    public static func lineBytes(_ pcm: [Int16]) -> [UInt8] { pcm.map(lineByte) }
    /// Line bytes to PCM samples.
    public static func pcm(fromLine bytes: [UInt8]) -> [Int16] { bytes.map(lineSample) }
    /// Plain A-law (as `sox -e a-law` writes it) to line bytes and back: the same operation.
    public static func reversed(_ bytes: [UInt8]) -> [UInt8] { bytes.map(reverseBits) }
}
