// G.711 A-law as it travels on an ISDN B-channel through CAPI: each byte bit-reversed (LSB first on the wire).
// Kept here so the engine's tests and bench can put a fax through the same codec a FRITZ!Box line uses.

public enum LineALaw {
    /// Line byte (bit-reversed A-law) → linear sample.
    public static let decodeTable: [Int16] = (0..<256).map { decodeStandard(reverse(UInt8($0))) }
    /// 13-bit linear sample index (sample >> 3, offset by 4096) → line byte.
    private static let encodeTable: [UInt8] = (0..<8192).map { reverse(encodeStandard(Int16(($0 - 4096) << 3))) }

    @inline(__always) public static func encode(_ sample: Int16) -> UInt8 { encodeTable[Int(sample >> 3) + 4096] }
    @inline(__always) public static func decode(_ byte: UInt8) -> Int16 { decodeTable[Int(byte)] }

    static func reverse(_ b: UInt8) -> UInt8 {
        var v = b, r: UInt8 = 0
        for _ in 0..<8 { r = (r << 1) | (v & 1); v >>= 1 }
        return r
    }

    /// ITU-T G.711 A-law (even bits inverted), from the segment definition.
    static func encodeStandard(_ sample: Int16) -> UInt8 {
        var pcm = Int(sample) >> 3
        let mask: Int
        if pcm >= 0 { mask = 0xD5 } else { mask = 0x55; pcm = -pcm - 1 }
        let segmentEnds = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF]
        guard let segment = segmentEnds.firstIndex(where: { pcm <= $0 }) else { return UInt8(0x7F ^ mask) }
        var value = segment << 4
        value |= segment < 2 ? (pcm >> 1) & 0x0F : (pcm >> segment) & 0x0F
        return UInt8(value ^ mask)
    }

    static func decodeStandard(_ byte: UInt8) -> Int16 {
        let a = Int(byte ^ 0x55)
        var t = (a & 0x0F) << 4
        let segment = (a & 0x70) >> 4
        switch segment {
        case 0: t += 8
        case 1: t += 0x108
        default: t += 0x108; t <<= segment - 1
        }
        return Int16(a & 0x80 != 0 ? t : -t)
    }
}
