/// Fax-specific CAPI structures: B protocol selection, B3 configuration and NCPI for T.30.

/// BProtocol struct of CONNECT_RESP / CONNECT_REQ / SELECT_B_PROTOCOL_REQ.
public struct BProtocol: Sendable, Equatable {
    public var b1: UInt16, b2: UInt16, b3: UInt16
    public var b1Configuration: [UInt8], b2Configuration: [UInt8], b3Configuration: [UInt8]
    public var globalConfiguration: [UInt8]
    public init(b1: UInt16, b2: UInt16, b3: UInt16, b1Configuration: [UInt8] = [], b2Configuration: [UInt8] = [],
                b3Configuration: [UInt8] = [], globalConfiguration: [UInt8] = []) {
        self.b1 = b1; self.b2 = b2; self.b3 = b3
        self.b1Configuration = b1Configuration; self.b2Configuration = b2Configuration
        self.b3Configuration = b3Configuration; self.globalConfiguration = globalConfiguration
    }
    /// G3 fax: T.30 modem (4), T.30 (4), T.30 for fax group 3 (4), with our station id etc.
    public static func fax(_ config: FaxB3Configuration) -> BProtocol {
        BProtocol(b1: 4, b2: 4, b3: 4, b3Configuration: config.encoded())
    }

    public func encoded() -> [UInt8] {
        var w = CapiWriter()
        w.word(b1); w.word(b2); w.word(b3)
        w.structure(b1Configuration); w.structure(b2Configuration); w.structure(b3Configuration)
        w.structure(globalConfiguration)
        return w.bytes
    }
    /// Decodes the struct content; an empty struct means "default" and yields nil.
    public static func decode(_ content: [UInt8]) throws -> BProtocol? {
        if content.isEmpty { return nil }
        var r = CapiReader(content)
        return BProtocol(b1: try r.word(), b2: try r.word(), b3: try r.word(), b1Configuration: try r.structure(),
                         b2Configuration: try r.structure(), b3Configuration: try r.structure(),
                         globalConfiguration: try r.structure())
    }
    public var faxConfiguration: FaxB3Configuration? { try? FaxB3Configuration.decode(b3Configuration) }
}

/// B3 configuration for T.30 fax (B3 protocol 4 / 5).
public struct FaxB3Configuration: Sendable, Equatable {
    /// Bit 0: fine resolution (196 lpi).
    public var options: UInt16
    /// 0 = SFF.
    public var format: UInt16
    public var stationID: String
    public var headline: String
    public init(fine: Bool, format: UInt16 = 0, stationID: String, headline: String) {
        self.options = fine ? 1 : 0; self.format = format; self.stationID = stationID; self.headline = headline
    }
    public var fine: Bool { options & 1 != 0 }

    public func encoded() -> [UInt8] {
        var w = CapiWriter()
        w.word(options); w.word(format)
        // The station id is limited to 20 characters by T.30; Latin-1 is what fax machines show.
        w.structure(Array(latin1(stationID).prefix(20))); w.structure(Array(latin1(headline).prefix(254)))
        return w.bytes
    }
    public static func decode(_ content: [UInt8]) throws -> FaxB3Configuration {
        var r = CapiReader(content)
        let options = try r.word(), format = try r.word()
        var c = FaxB3Configuration(fine: false, format: format, stationID: string(try r.structure()),
                                   headline: string(try r.structure()))
        c.options = options
        return c
    }
}

/// NCPI for fax in CONNECT_B3_ACTIVE_IND / DISCONNECT_B3_IND.
public struct FaxNCPI: Sendable, Equatable {
    public var rate: UInt16
    public var options: UInt16
    public var format: UInt16
    public var pages: UInt16
    public var stationID: String
    public init(rate: UInt16, fine: Bool, format: UInt16 = 0, pages: UInt16, stationID: String) {
        self.rate = rate; self.options = fine ? 1 : 0; self.format = format; self.pages = pages; self.stationID = stationID
    }
    public var fine: Bool { options & 1 != 0 }

    public func encoded() -> [UInt8] {
        var w = CapiWriter()
        w.word(rate); w.word(options); w.word(format); w.word(pages)
        w.structure(Array(latin1(stationID).prefix(20)))
        return w.bytes
    }
    /// Empty content (no NCPI) yields nil.
    public static func decode(_ content: [UInt8]) throws -> FaxNCPI? {
        if content.isEmpty { return nil }
        var r = CapiReader(content)
        let rate = try r.word(), options = try r.word(), format = try r.optionalWord(), pages = try r.optionalWord()
        var n = FaxNCPI(rate: rate, fine: false, format: format, pages: pages, stationID: string(try r.structure()))
        n.options = options
        return n
    }
}

func latin1(_ s: String) -> [UInt8] {
    s.unicodeScalars.map { $0.value < 256 ? UInt8($0.value) : UInt8(ascii: "?") }
}

/// Station ids are padded with spaces by many machines; keep the text, drop the padding.
func string(_ bytes: [UInt8]) -> String {
    String(String.UnicodeScalarView(bytes.map { Unicode.Scalar($0) })).trimmingSpaces()
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while s.first == " " || s.first == "\0" { s.removeFirst() }
        while s.last == " " || s.last == "\0" { s.removeLast() }
        return String(s)
    }
}

/// Called party number struct: type/plan octet + digits.
public struct CalledPartyNumber: Sendable, Equatable {
    public var typeAndPlan: UInt8
    public var digits: String
    public init(typeAndPlan: UInt8 = 0x80, digits: String) { self.typeAndPlan = typeAndPlan; self.digits = digits }
    public func encoded() -> [UInt8] { digits.isEmpty && typeAndPlan == 0 ? [] : [typeAndPlan] + Array(digits.utf8) }
    public static func decode(_ c: [UInt8]) -> CalledPartyNumber {
        guard let first = c.first else { return CalledPartyNumber(typeAndPlan: 0, digits: "") }
        return CalledPartyNumber(typeAndPlan: first, digits: String(decoding: c.dropFirst(), as: UTF8.self))
    }
    /// Q.931 type of number (octet 3 bits 7-5): 0 unknown, 1 international, 2 national, 3 network specific,
    /// 4 subscriber, 6 abbreviated.
    public var typeOfNumber: UInt8 { (typeAndPlan >> 4) & 0x07 }
    /// Q.931 numbering plan (octet 3 bits 4-1): 0 unknown, 1 ISDN/telephony (E.164), 9 private.
    public var numberingPlan: UInt8 { typeAndPlan & 0x0F }
}

/// Calling party number struct: type/plan octet + presentation/screening octet + digits.
public struct CallingPartyNumber: Sendable, Equatable {
    public var typeAndPlan: UInt8
    /// 0x80 allowed; bits 5-6 = 01 (0xA0) presentation restricted.
    public var presentation: UInt8
    public var digits: String
    public init(typeAndPlan: UInt8 = 0x00, presentation: UInt8 = 0x80, digits: String) {
        self.typeAndPlan = typeAndPlan; self.presentation = presentation; self.digits = digits
    }
    public var restricted: Bool { (presentation & 0x60) == 0x20 }
    /// Q.931 presentation indicator (octet 3a bits 7-6): 0 allowed, 1 restricted, 2 not available (interworking),
    /// 3 reserved.
    public var presentationIndicator: UInt8 { (presentation >> 5) & 0x03 }
    /// Q.931 type of number and numbering plan, as for the called party number.
    public var typeOfNumber: UInt8 { (typeAndPlan >> 4) & 0x07 }
    public var numberingPlan: UInt8 { typeAndPlan & 0x0F }
    public func encoded() -> [UInt8] { [typeAndPlan, presentation] + Array(digits.utf8) }
    /// Empty struct = number not signalled (nil).
    public static func decode(_ c: [UInt8]) -> CallingPartyNumber? {
        guard let first = c.first else { return nil }
        // Octet 3a (presentation) is present only when bit 8 of octet 3 is 0.
        if first & 0x80 != 0 {
            return CallingPartyNumber(typeAndPlan: first, presentation: 0x80, digits: String(decoding: c.dropFirst(), as: UTF8.self))
        }
        let pres = c.count > 1 ? c[1] : 0x80
        return CallingPartyNumber(typeAndPlan: first, presentation: pres, digits: String(decoding: c.dropFirst(2), as: UTF8.self))
    }
}
