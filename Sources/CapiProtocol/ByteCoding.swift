/// Little-endian writer/reader for CAPI parameters (d = u32, w = u16, s = struct).

public struct CapiWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    public init() {}
    public mutating func byte(_ v: UInt8) { bytes.append(v) }
    public mutating func word(_ v: UInt16) { bytes.append(UInt8(v & 0xFF)); bytes.append(UInt8(v >> 8)) }
    public mutating func dword(_ v: UInt32) { word(UInt16(v & 0xFFFF)); word(UInt16(v >> 16)) }
    public mutating func qword(_ v: UInt64) { dword(UInt32(v & 0xFFFF_FFFF)); dword(UInt32(v >> 32)) }
    public mutating func raw(_ v: [UInt8]) { bytes.append(contentsOf: v) }
    /// A CAPI struct: length byte + content; 0xFF + u16 length when the content is 255 bytes or more.
    public mutating func structure(_ content: [UInt8]) {
        if content.count < 255 { byte(UInt8(content.count)) } else { byte(0xFF); word(UInt16(content.count)) }
        raw(content)
    }
}

public struct CapiDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public struct CapiReader: Sendable {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    public init(_ bytes: [UInt8], offset: Int = 0) { self.bytes = bytes; self.offset = offset }
    public var remaining: Int { bytes.count - offset }
    public var atEnd: Bool { offset >= bytes.count }

    private mutating func need(_ n: Int, _ what: String) throws {
        guard remaining >= n else { throw CapiDecodingError("truncated \(what) at offset \(offset)") }
    }
    public mutating func byte() throws -> UInt8 { try need(1, "byte"); defer { offset += 1 }; return bytes[offset] }
    public mutating func word() throws -> UInt16 {
        try need(2, "word"); defer { offset += 2 }
        return UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }
    public mutating func dword() throws -> UInt32 { let lo = try word(); let hi = try word(); return UInt32(lo) | UInt32(hi) << 16 }
    public mutating func qword() throws -> UInt64 { let lo = try dword(); let hi = try dword(); return UInt64(lo) | UInt64(hi) << 32 }
    public mutating func raw(_ n: Int) throws -> [UInt8] {
        try need(n, "\(n) bytes"); defer { offset += n }; return Array(bytes[offset..<offset + n])
    }
    /// A struct's content. Missing trailing structs decode as empty: some stacks omit them.
    public mutating func structure() throws -> [UInt8] {
        if atEnd { return [] }
        var n = Int(try byte())
        if n == 0xFF { n = Int(try word()) }
        return try raw(n)
    }
    /// Trailing optional word, 0 when absent.
    public mutating func optionalWord() throws -> UInt16 { atEnd ? 0 : try word() }
}
