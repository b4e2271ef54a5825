// ITU-T T.4 one-dimensional (modified Huffman) coding of single fax lines, in SFF's bit order:
// the first code bit is the least significant bit of the first byte, no EOL, zero padding to a byte.

/// Why a line could not be decoded.
public enum MHError: Error, Sendable, Equatable {
    /// The bits at `bitOffset` are no code of the expected colour.
    case invalidCode(bitOffset: Int)
    /// The data ends inside a code or after a make-up code without its terminating code.
    case truncated
    /// The line decoded, but to `actual` pixels instead of the expected `expected`.
    case lengthMismatch(expected: Int, actual: Int)
}

public enum MHCodec {
    /// Encodes one packed row (1 = black, MSB first, at least `(width+7)/8` bytes) as MH, LSB-first, byte-padded.
    public static func encodeLine(_ row: UnsafeRawBufferPointer, width: Int) -> [UInt8] {
        precondition(row.count * 8 >= width, "row shorter than width")
        var writer = MHBitWriter(capacity: 8)
        if width > 0, let base = row.baseAddress {
            encodeRuns(base.assumingMemoryBound(to: UInt8.self), width: width, into: &writer)
        } else {
            writer.put(MHTables.shared.terminating[0][0])  // an empty line is one white run of 0
        }
        return writer.finish()
    }

    public static func encodeLine(_ row: [UInt8], width: Int) -> [UInt8] {
        row.withUnsafeBytes { encodeLine($0, width: width) }
    }

    /// Decodes one line to a packed row of `width` pixels. Strict: the code must describe exactly `width` pixels.
    public static func decodeLine(_ code: [UInt8], width: Int) throws(MHError) -> [UInt8] {
        var row = [UInt8](repeating: 0, count: (width + 7) / 8)
        let actual = try row.withUnsafeMutableBufferPointer { (out) throws(MHError) -> Int in
            try code.withUnsafeBufferPointer { (input) throws(MHError) -> Int in
                try decodeRuns(input, into: out, width: width)
            }
        }
        if actual != width { throw .lengthMismatch(expected: width, actual: actual) }
        return row
    }

    /// `table[b]` is `b` with its bit order reversed: converts between SFF's LSB-first and PDF/TIFF's MSB-first order.
    public static let bitReversed: [UInt8] = (0..<256).map { value in
        var v = UInt8(value), r: UInt8 = 0
        for _ in 0..<8 { r = (r << 1) | (v & 1); v >>= 1 }
        return r
    }

    // MARK: - Internals shared with the SFF reader and the page initializer

    static func encodeRuns(_ row: UnsafePointer<UInt8>, width: Int, into writer: inout MHBitWriter) {
        let tables = MHTables.shared
        var x = 0
        var colour = 0  // a line always starts with a white run, possibly of length 0
        repeat {
            let end = nextChange(row, from: x, width: width, black: colour == 1)
            var run = end - x
            // Runs beyond the largest make-up code repeat the 2560 code (T.4 4.1.1.3).
            while run > 2560 {
                writer.put(tables.makeUp[colour][39])
                run -= 2560
            }
            if run >= 64 {
                writer.put(tables.makeUp[colour][run / 64 - 1])
                run %= 64
            }
            writer.put(tables.terminating[colour][run])
            x = end
            colour ^= 1
        } while x < width
    }

    /// First pixel at or after `x` whose colour differs from `black`, or `width`.
    @inline(__always)
    static func nextChange(_ row: UnsafePointer<UInt8>, from start: Int, width: Int, black: Bool) -> Int {
        let flip: UInt8 = black ? 0xFF : 0x00
        var x = start
        while x < width {
            // Look for a 1 bit (a change) in the rest of this byte; whole uniform bytes are skipped at once.
            let byte = (row[x >> 3] ^ flip) & (0xFF >> UInt8(x & 7))
            if byte != 0 { return min((x & ~7) + byte.leadingZeroBitCount, width) }
            x = (x | 7) + 1
        }
        return width
    }

    /// Decodes a line into `out` (zeroed by the caller, `(width+7)/8` bytes); pixels past `width` are dropped.
    /// Returns the number of pixels the code describes, which may differ from `width`.
    static func decodeRuns(_ code: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>, width: Int)
        throws(MHError) -> Int
    {
        let tables = MHTables.shared
        let count = code.count
        var acc: UInt64 = 0
        var accBits = 0
        var next = 0
        var consumed = 0
        var x = 0
        var colour = 0
        var inMakeUp = false
        let mask = (1 << mhLookupBits) - 1
        return try tables.decode[0].withUnsafeBufferPointer { (white) throws(MHError) -> Int in
            try tables.decode[1].withUnsafeBufferPointer { (black) throws(MHError) -> Int in
                while true {
                    while accBits <= 56 && next < count {
                        acc |= UInt64(code[next]) << UInt64(accBits)
                        accBits += 8
                        next += 1
                    }
                    if consumed == 0 && acc & 0x7FF == 0 && acc != 0 {
                        // Some writers put an EOL (000000000001, possibly after fill zeros) before each line despite SFF.
                        let zeros = acc.trailingZeroBitCount
                        if zeros >= 11 && zeros < accBits {
                            acc >>= UInt64(zeros + 1)
                            accBits -= zeros + 1
                            consumed += zeros + 1
                            continue
                        }
                    }
                    let entry = (colour == 0 ? white : black)[Int(truncatingIfNeeded: acc) & mask]
                    if entry.run < 0 || Int(entry.length) > accBits {
                        // Only zero padding left: the line ended (short lines are the caller's concern).
                        if acc == 0 && next == count && !inMakeUp { return x }
                        if acc == 0 && next == count { throw .truncated }
                        if entry.run >= 0 { throw .truncated }
                        throw .invalidCode(bitOffset: consumed)
                    }
                    acc >>= UInt64(entry.length)
                    accBits -= Int(entry.length)
                    consumed += Int(entry.length)
                    let run = Int(entry.run)
                    if colour == 1 && x < width { setBits(out, from: x, to: min(x + run, width)) }
                    x += run
                    if entry.makeUp {
                        inMakeUp = true
                        continue
                    }
                    inMakeUp = false
                    colour ^= 1
                    if x >= width { return x }
                }
            }
        }
    }

    /// Sets pixels `from..<to` to black in a packed MSB-first row.
    @inline(__always)
    static func setBits(_ row: UnsafeMutableBufferPointer<UInt8>, from a: Int, to b: Int) {
        guard a < b else { return }
        let first = a >> 3, last = (b - 1) >> 3
        let startMask: UInt8 = 0xFF >> UInt8(a & 7)
        let endMask: UInt8 = 0xFF << UInt8(7 - ((b - 1) & 7))
        if first == last {
            row[first] |= startMask & endMask
        } else {
            row[first] |= startMask
            var i = first + 1
            while i < last { row[i] = 0xFF; i += 1 }
            row[last] |= endMask
        }
    }
}

/// Accumulates codes LSB-first (SFF order) and emits whole bytes.
struct MHBitWriter {
    var bytes: [UInt8]
    private var acc: UInt64 = 0
    private var count = 0

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always)
    mutating func put(_ code: MHCode) {
        acc |= UInt64(code.bits) << UInt64(count)
        count += Int(code.length)
        while count >= 8 {
            bytes.append(UInt8(truncatingIfNeeded: acc))
            acc >>= 8
            count -= 8
        }
    }

    /// Pads the last byte with zeros and returns the line.
    mutating func finish() -> [UInt8] {
        if count > 0 { bytes.append(UInt8(truncatingIfNeeded: acc)) }
        acc = 0
        count = 0
        return bytes
    }
}
