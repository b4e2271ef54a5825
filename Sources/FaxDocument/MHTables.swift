// ITU-T T.4 modified Huffman (MH) code tables, written as the bit strings of the recommendation
// (first transmitted bit leftmost) so they can be checked against the printed tables by eye.

/// Terminating codes for white runs 0...63 (T.4 table 2).
let mhWhiteTerminating: [String] = [
    "00110101", "000111", "0111", "1000", "1011", "1100", "1110", "1111",                    // 0-7
    "10011", "10100", "00111", "01000", "001000", "000011", "110100", "110101",              // 8-15
    "101010", "101011", "0100111", "0001100", "0001000", "0010111", "0000011", "0000100",    // 16-23
    "0101000", "0101011", "0010011", "0100100", "0011000", "00000010", "00000011", "00011010", // 24-31
    "00011011", "00010010", "00010011", "00010100", "00010101", "00010110", "00010111", "00101000", // 32-39
    "00101001", "00101010", "00101011", "00101100", "00101101", "00000100", "00000101", "00001010", // 40-47
    "00001011", "01010010", "01010011", "01010100", "01010101", "00100100", "00100101", "01011000", // 48-55
    "01011001", "01011010", "01011011", "01001010", "01001011", "00110010", "00110011", "00110100", // 56-63
]

/// Terminating codes for black runs 0...63 (T.4 table 2).
let mhBlackTerminating: [String] = [
    "0000110111", "010", "11", "10", "011", "0011", "0010", "00011",                         // 0-7
    "000101", "000100", "0000100", "0000101", "0000111", "00000100", "00000111", "000011000", // 8-15
    "0000010111", "0000011000", "0000001000", "00001100111", "00001101000", "00001101100", "00000110111", "00000101000", // 16-23
    "00000010111", "00000011000", "000011001010", "000011001011", "000011001100", "000011001101", "000001101000", "000001101001", // 24-31
    "000001101010", "000001101011", "000011010010", "000011010011", "000011010100", "000011010101", "000011010110", "000011010111", // 32-39
    "000001101100", "000001101101", "000011011010", "000011011011", "000001010100", "000001010101", "000001010110", "000001010111", // 40-47
    "000001100100", "000001100101", "000001010010", "000001010011", "000000100100", "000000110111", "000000111000", "000000100111", // 48-55
    "000000101000", "000001011000", "000001011001", "000000101011", "000000101100", "000001011010", "000001100110", "000001100111", // 56-63
]

/// Make-up codes for white runs 64, 128, ... 1728 (T.4 table 3).
let mhWhiteMakeUp: [String] = [
    "11011", "10010", "010111", "0110111", "00110110", "00110111", "01100100", "01100101",   // 64-512
    "01101000", "01100111", "011001100", "011001101", "011010010", "011010011", "011010100", "011010101", // 576-1024
    "011010110", "011010111", "011011000", "011011001", "011011010", "011011011", "010011000", "010011001", // 1088-1536
    "010011010", "011000", "010011011",                                                       // 1600-1728
]

/// Make-up codes for black runs 64, 128, ... 1728 (T.4 table 3).
let mhBlackMakeUp: [String] = [
    "0000001111", "000011001000", "000011001001", "000001011011", "000000110011", "000000110100", "000000110101", "0000001101100", // 64-512
    "0000001101101", "0000001001010", "0000001001011", "0000001001100", "0000001001101", "0000001110010", "0000001110011", "0000001110100", // 576-1024
    "0000001110101", "0000001110110", "0000001110111", "0000001010010", "0000001010011", "0000001010100", "0000001010101", "0000001011010", // 1088-1536
    "0000001011011", "0000001100100", "0000001100101",                                        // 1600-1728
]

/// Extended make-up codes 1792, 1856, ... 2560, shared by both colours (T.4 table 4).
let mhExtendedMakeUp: [String] = [
    "00000001000", "00000001100", "00000001101", "000000010010", "000000010011", "000000010100", "000000010101", // 1792-2176
    "000000010110", "000000010111", "000000011100", "000000011101", "000000011110", "000000011111",              // 2240-2560
]

/// A code ready for an LSB-first bit writer: `bits` holds the first transmitted bit in bit 0.
struct MHCode: Sendable {
    var bits: UInt32
    var length: UInt8
}

/// Both colours' code sets as (run length, code) pairs: terminating, make-up and extended make-up.
func mhCodeList(black: Bool) -> [(run: Int, code: String)] {
    var list: [(Int, String)] = []
    for (run, code) in (black ? mhBlackTerminating : mhWhiteTerminating).enumerated() { list.append((run, code)) }
    for (i, code) in (black ? mhBlackMakeUp : mhWhiteMakeUp).enumerated() { list.append(((i + 1) * 64, code)) }
    for (i, code) in mhExtendedMakeUp.enumerated() { list.append((1792 + i * 64, code)) }
    return list
}

/// Converts a T.4 bit string into the LSB-first representation used by the SFF bit order.
func mhCode(_ string: String) -> MHCode {
    var bits: UInt32 = 0
    for (i, ch) in string.utf8.enumerated() where ch == UInt8(ascii: "1") { bits |= 1 << UInt32(i) }
    return MHCode(bits: bits, length: UInt8(string.utf8.count))
}

/// Longest code in either colour (black make-up codes have 13 bits); the decode tables are indexed by this many bits.
let mhLookupBits = 13

/// Decode table entry: run length (negative = invalid), code length in bits, and whether it is a make-up code.
struct MHDecodeEntry: Sendable {
    var run: Int16
    var length: UInt8
    var makeUp: Bool
}

/// Encoder and decoder tables, built once from the bit strings above.
struct MHTables: Sendable {
    var terminating: [[MHCode]]   // [colour][0...63], colour 0 = white, 1 = black
    var makeUp: [[MHCode]]        // [colour][0...39]: run = (index + 1) * 64, up to 2560
    var decode: [[MHDecodeEntry]] // [colour][next 13 bits, first bit in bit 0]

    static let shared = MHTables()

    private init() {
        var terminating: [[MHCode]] = []
        var makeUp: [[MHCode]] = []
        var decode: [[MHDecodeEntry]] = []
        for black in [false, true] {
            terminating.append((black ? mhBlackTerminating : mhWhiteTerminating).map(mhCode))
            makeUp.append(((black ? mhBlackMakeUp : mhWhiteMakeUp) + mhExtendedMakeUp).map(mhCode))
            var table = [MHDecodeEntry](repeating: MHDecodeEntry(run: -1, length: 0, makeUp: false), count: 1 << mhLookupBits)
            for (run, string) in mhCodeList(black: black) {
                let code = mhCode(string)
                // Every index whose low `length` bits equal the code decodes to it (the upper bits belong to the next code).
                let free = mhLookupBits - Int(code.length)
                for high in 0..<(1 << free) {
                    table[Int(code.bits) | (high << Int(code.length))] = MHDecodeEntry(
                        run: Int16(run), length: code.length, makeUp: run >= 64)
                }
            }
            decode.append(table)
        }
        self.terminating = terminating
        self.makeUp = makeUp
        self.decode = decode
    }
}
