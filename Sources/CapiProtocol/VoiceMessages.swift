/// The messages a voice call adds (FACILITY for DTMF, SELECT_B_PROTOCOL for the switch to fax). They travel as
/// `.other` bodies so the typed enum (and every switch over it) stays as the fax path knows it; these helpers
/// build and read their parameters.

/// FACILITY_REQ/IND/RESP/CONF parameters.
public struct CapiFacility: Sendable, Equatable {
    public static let dtmfSelector: UInt16 = 1
    public var address: UInt32
    public var selector: UInt16
    /// Request/indication: the facility parameter struct content. CONF: the Info word comes first.
    public var parameter: [UInt8]
    public var info: UInt16?

    public init(address: UInt32, selector: UInt16, parameter: [UInt8], info: UInt16? = nil) {
        self.address = address; self.selector = selector; self.parameter = parameter; self.info = info
    }

    /// DTMF function: 1 start listening, 2 stop listening, 3 send digits.
    public static func dtmfRequest(address: UInt32, function: UInt16, toneMs: UInt16 = 40, gapMs: UInt16 = 40,
                                   digits: String = "") -> CapiMessageBody {
        var p = CapiWriter()
        p.word(function); p.word(toneMs); p.word(gapMs); p.structure(Array(digits.utf8)); p.structure([])
        var w = CapiWriter()
        w.dword(address); w.word(dtmfSelector); w.structure(p.bytes)
        return .other(command: .facility, subcommand: .req, parameters: w.bytes)
    }

    /// FACILITY_IND with DTMF characters (selector 1): the parameter is the characters themselves.
    public static func dtmfIndication(address: UInt32, characters: String) -> CapiMessageBody {
        var w = CapiWriter()
        w.dword(address); w.word(dtmfSelector); w.structure(Array(characters.utf8))
        return .other(command: .facility, subcommand: .ind, parameters: w.bytes)
    }

    public static func response(address: UInt32, selector: UInt16) -> CapiMessageBody {
        var w = CapiWriter()
        w.dword(address); w.word(selector); w.structure([])
        return .other(command: .facility, subcommand: .resp, parameters: w.bytes)
    }

    public static func confirmation(address: UInt32, info: UInt16, selector: UInt16) -> CapiMessageBody {
        var w = CapiWriter()
        w.dword(address); w.word(info); w.word(selector); w.structure([])
        return .other(command: .facility, subcommand: .conf, parameters: w.bytes)
    }

    /// Reads a FACILITY message of any subcommand; nil for other messages or damaged parameters.
    public init?(_ m: CapiMessage) {
        guard case .other(.facility, let sub, let params) = m.body else { return nil }
        var r = CapiReader(params)
        guard let a = try? r.dword() else { return nil }
        address = a
        if sub == .conf {
            guard let i = try? r.word(), let s = try? r.word() else { return nil }
            info = i; selector = s; parameter = (try? r.structure()) ?? []
        } else {
            guard let s = try? r.word() else { return nil }
            selector = s; info = nil; parameter = (try? r.structure()) ?? []
        }
    }

    /// DTMF characters of a FACILITY_IND ('0'-'9', '*', '#', 'A'-'D'; 'X' = CNG fax tone, 'Y' = CED).
    public var dtmfCharacters: String {
        selector == Self.dtmfSelector ? String(decoding: parameter.filter { $0 >= 0x20 && $0 < 0x7F }, as: UTF8.self) : ""
    }

    /// DTMF function of a FACILITY_REQ (first word of the parameter).
    public var dtmfFunction: UInt16? {
        guard selector == Self.dtmfSelector, parameter.count >= 2 else { return nil }
        return UInt16(parameter[0]) | UInt16(parameter[1]) << 8
    }
}

public enum CapiSelectBProtocol {
    public static func request(plci: UInt32, _ bp: BProtocol) -> CapiMessageBody {
        var w = CapiWriter()
        w.dword(plci); w.structure(bp.encoded())
        return .other(command: .selectBProtocol, subcommand: .req, parameters: w.bytes)
    }
    public static func confirmation(plci: UInt32, info: UInt16) -> CapiMessageBody {
        var w = CapiWriter()
        w.dword(plci); w.word(info)
        return .other(command: .selectBProtocol, subcommand: .conf, parameters: w.bytes)
    }
    /// PLCI and B protocol of a SELECT_B_PROTOCOL_REQ.
    public static func decodeRequest(_ m: CapiMessage) -> (plci: UInt32, bProtocol: BProtocol?)? {
        guard case .other(.selectBProtocol, .req, let params) = m.body else { return nil }
        var r = CapiReader(params)
        guard let plci = try? r.dword(), let s = try? r.structure() else { return nil }
        return (plci, try? BProtocol.decode(s))
    }
}

extension BProtocol {
    /// Speech: 64 kbit/s transparent (1), transparent (1), transparent (0).
    public static let transparentVoice = BProtocol(b1: 1, b2: 1, b3: 0)
}
