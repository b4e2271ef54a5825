/// CAPI 2.0 messages as typed values. Header: u16 total length, u16 ApplID, u8 command, u8 subcommand,
/// u16 message number; parameters follow in the order of the CAPI 2.0 specification.

public struct CapiCommand: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let alert = CapiCommand(rawValue: 0x01)
    public static let connect = CapiCommand(rawValue: 0x02)
    public static let connectActive = CapiCommand(rawValue: 0x03)
    public static let disconnect = CapiCommand(rawValue: 0x04)
    public static let listen = CapiCommand(rawValue: 0x05)
    public static let info = CapiCommand(rawValue: 0x08)
    public static let selectBProtocol = CapiCommand(rawValue: 0x41)
    public static let facility = CapiCommand(rawValue: 0x80)
    public static let connectB3 = CapiCommand(rawValue: 0x82)
    public static let connectB3Active = CapiCommand(rawValue: 0x83)
    public static let disconnectB3 = CapiCommand(rawValue: 0x84)
    public static let dataB3 = CapiCommand(rawValue: 0x86)
    public static let resetB3 = CapiCommand(rawValue: 0x87)

    static let names: [UInt8: String] = [
        0x01: "ALERT", 0x02: "CONNECT", 0x03: "CONNECT_ACTIVE", 0x04: "DISCONNECT", 0x05: "LISTEN", 0x08: "INFO",
        0x41: "SELECT_B_PROTOCOL", 0x80: "FACILITY", 0x82: "CONNECT_B3", 0x83: "CONNECT_B3_ACTIVE",
        0x84: "DISCONNECT_B3", 0x86: "DATA_B3", 0x87: "RESET_B3", 0x88: "CONNECT_B3_T90_ACTIVE", 0xFF: "MANUFACTURER",
    ]
    public var description: String { Self.names[rawValue] ?? "CMD_\(String(rawValue, radix: 16))" }
}

public enum CapiSubcommand: UInt8, Sendable, CustomStringConvertible {
    case req = 0x80, conf = 0x81, ind = 0x82, resp = 0x83
    public var description: String {
        switch self { case .req: "REQ"; case .conf: "CONF"; case .ind: "IND"; case .resp: "RESP" }
    }
}

/// The parameters of the messages a fax receiver and its controller exchange. Anything else is kept
/// as `.other` with its raw parameter bytes so it can still be relayed and recorded.
public enum CapiMessageBody: Sendable, Equatable {
    case listenReq(controller: UInt32, infoMask: UInt32, cipMask: UInt32, cipMask2: UInt32, callingNumber: [UInt8], callingSubaddress: [UInt8])
    case listenConf(controller: UInt32, info: CapiInfo)
    case connectInd(plci: UInt32, cip: UInt16, called: CalledPartyNumber, calling: CallingPartyNumber?, calledSubaddress: [UInt8],
                    callingSubaddress: [UInt8], bc: [UInt8], llc: [UInt8], hlc: [UInt8], additionalInfo: [UInt8])
    case connectResp(plci: UInt32, reject: UInt16, bProtocol: BProtocol?, connectedNumber: [UInt8], connectedSubaddress: [UInt8],
                     llc: [UInt8], additionalInfo: [UInt8])
    /// Outgoing call. `calling` nil = empty struct (the line's default number).
    case connectReq(controller: UInt32, cip: UInt16, called: CalledPartyNumber, calling: CallingPartyNumber?, calledSubaddress: [UInt8],
                    callingSubaddress: [UInt8], bProtocol: BProtocol?, bc: [UInt8], llc: [UInt8], hlc: [UInt8], additionalInfo: [UInt8])
    case connectConf(plci: UInt32, info: CapiInfo)
    case connectActiveInd(plci: UInt32, connectedNumber: [UInt8], connectedSubaddress: [UInt8], llc: [UInt8])
    case connectActiveResp(plci: UInt32)
    case alertReq(plci: UInt32, additionalInfo: [UInt8])
    case alertConf(plci: UInt32, info: CapiInfo)
    case infoInd(plci: UInt32, infoNumber: UInt16, infoElement: [UInt8])
    case infoResp(plci: UInt32)
    case connectB3Req(plci: UInt32, ncpi: [UInt8])
    case connectB3Conf(ncci: UInt32, info: CapiInfo)
    case connectB3Ind(ncci: UInt32, ncpi: [UInt8])
    case connectB3Resp(ncci: UInt32, reject: UInt16, ncpi: [UInt8])
    case connectB3ActiveInd(ncci: UInt32, ncpi: [UInt8])
    case connectB3ActiveResp(ncci: UInt32)
    /// DATA_B3 REQ/IND. `data` is the payload that follows the message; the 64-bit pointer field is zero on the wire.
    case dataB3Req(ncci: UInt32, handle: UInt16, flags: UInt16, data: [UInt8])
    case dataB3Ind(ncci: UInt32, handle: UInt16, flags: UInt16, data: [UInt8])
    case dataB3Conf(ncci: UInt32, handle: UInt16, info: CapiInfo)
    case dataB3Resp(ncci: UInt32, handle: UInt16)
    case disconnectB3Req(ncci: UInt32, ncpi: [UInt8])
    case disconnectB3Conf(ncci: UInt32, info: CapiInfo)
    case disconnectB3Ind(ncci: UInt32, reasonB3: CapiInfo, ncpi: [UInt8])
    case disconnectB3Resp(ncci: UInt32)
    case disconnectReq(plci: UInt32, additionalInfo: [UInt8])
    case disconnectConf(plci: UInt32, info: CapiInfo)
    case disconnectInd(plci: UInt32, reason: CapiInfo)
    case disconnectResp(plci: UInt32)
    case other(command: CapiCommand, subcommand: CapiSubcommand, parameters: [UInt8])
}

public struct CapiMessage: Sendable, Equatable, CustomStringConvertible {
    public var applID: UInt16
    public var messageNumber: UInt16
    public var body: CapiMessageBody

    public init(applID: UInt16, messageNumber: UInt16, body: CapiMessageBody) {
        self.applID = applID; self.messageNumber = messageNumber; self.body = body
    }

    public var command: CapiCommand { kind.0 }
    public var subcommand: CapiSubcommand { kind.1 }
    public var name: String { "\(command)_\(subcommand)" }

    /// PLCI / NCCI / controller: the first dword of every message defined here.
    public var address: UInt32? {
        switch body {
        case .listenReq(let c, _, _, _, _, _), .listenConf(let c, _): c
        case .connectInd(let a, _, _, _, _, _, _, _, _, _), .connectResp(let a, _, _, _, _, _, _),
             .connectReq(let a, _, _, _, _, _, _, _, _, _, _), .connectConf(let a, _), .connectB3Req(let a, _), .connectB3Conf(let a, _),
             .connectActiveInd(let a, _, _, _), .connectActiveResp(let a), .alertReq(let a, _), .alertConf(let a, _),
             .infoInd(let a, _, _), .infoResp(let a), .connectB3Ind(let a, _), .connectB3Resp(let a, _, _),
             .connectB3ActiveInd(let a, _), .connectB3ActiveResp(let a), .dataB3Req(let a, _, _, _),
             .dataB3Ind(let a, _, _, _), .dataB3Conf(let a, _, _), .dataB3Resp(let a, _), .disconnectB3Req(let a, _),
             .disconnectB3Conf(let a, _), .disconnectB3Ind(let a, _, _), .disconnectB3Resp(let a),
             .disconnectReq(let a, _), .disconnectConf(let a, _), .disconnectInd(let a, _), .disconnectResp(let a): a
        case .other(_, _, let p): p.count >= 4 ? UInt32(p[0]) | UInt32(p[1]) << 8 | UInt32(p[2]) << 16 | UInt32(p[3]) << 24 : nil
        }
    }

    public var description: String {
        var s = "\(name) app=\(applID) #\(messageNumber)"
        if let a = address { s += " addr=0x" + String(a, radix: 16) }
        switch body {
        case .connectInd(_, let cip, let called, let calling, _, _, _, _, _, _):
            // A withheld number (CLIR) is not written into traces either.
            s += " cip=\(cip) called=\(called.digits) calling=\(calling.map { $0.presentationIndicator % 2 == 1 ? "withheld" : $0.digits } ?? "-")"
        case .connectResp(_, let reject, let bp, _, _, _, _):
            s += " reject=\(reject)"
            if let bp { s += " B=\(bp.b1)/\(bp.b2)/\(bp.b3)" }
        case .dataB3Ind(_, let h, _, let d), .dataB3Req(_, let h, _, let d): s += " handle=\(h) len=\(d.count)"
        case .dataB3Resp(_, let h): s += " handle=\(h)"
        case .disconnectB3Ind(_, let r, _): s += " reasonB3=\(r)"
        case .disconnectInd(_, let r): s += " reason=\(r)"
        case .connectReq(_, let cip, let called, let calling, _, _, let bp, _, _, _, _):
            s += " cip=\(cip) called=\(called.digits) calling=\(calling?.digits ?? "-")"
            if let bp { s += " B=\(bp.b1)/\(bp.b2)/\(bp.b3)" }
        case .listenConf(_, let i), .alertConf(_, let i), .disconnectConf(_, let i), .disconnectB3Conf(_, let i),
             .connectConf(_, let i), .connectB3Conf(_, let i): s += " info=\(i)"
        case .dataB3Conf(_, let h, let i): s += " handle=\(h) info=\(i)"
        default: break
        }
        return s
    }

    var kind: (CapiCommand, CapiSubcommand) {
        switch body {
        case .listenReq: (.listen, .req)
        case .listenConf: (.listen, .conf)
        case .connectInd: (.connect, .ind)
        case .connectResp: (.connect, .resp)
        case .connectReq: (.connect, .req)
        case .connectConf: (.connect, .conf)
        case .connectB3Req: (.connectB3, .req)
        case .connectB3Conf: (.connectB3, .conf)
        case .connectActiveInd: (.connectActive, .ind)
        case .connectActiveResp: (.connectActive, .resp)
        case .alertReq: (.alert, .req)
        case .alertConf: (.alert, .conf)
        case .infoInd: (.info, .ind)
        case .infoResp: (.info, .resp)
        case .connectB3Ind: (.connectB3, .ind)
        case .connectB3Resp: (.connectB3, .resp)
        case .connectB3ActiveInd: (.connectB3Active, .ind)
        case .connectB3ActiveResp: (.connectB3Active, .resp)
        case .dataB3Req: (.dataB3, .req)
        case .dataB3Ind: (.dataB3, .ind)
        case .dataB3Conf: (.dataB3, .conf)
        case .dataB3Resp: (.dataB3, .resp)
        case .disconnectB3Req: (.disconnectB3, .req)
        case .disconnectB3Conf: (.disconnectB3, .conf)
        case .disconnectB3Ind: (.disconnectB3, .ind)
        case .disconnectB3Resp: (.disconnectB3, .resp)
        case .disconnectReq: (.disconnect, .req)
        case .disconnectConf: (.disconnect, .conf)
        case .disconnectInd: (.disconnect, .ind)
        case .disconnectResp: (.disconnect, .resp)
        case .other(let c, let s, _): (c, s)
        }
    }

    /// The matching response for an indication (same address, message number echoed), when one is simple.
    public func simpleResponse() -> CapiMessage? {
        let body: CapiMessageBody
        switch self.body {
        case .connectActiveInd(let a, _, _, _): body = .connectActiveResp(plci: a)
        case .infoInd(let a, _, _): body = .infoResp(plci: a)
        case .connectB3ActiveInd(let a, _): body = .connectB3ActiveResp(ncci: a)
        case .dataB3Ind(let a, let h, _, _): body = .dataB3Resp(ncci: a, handle: h)
        case .disconnectB3Ind(let a, _, _): body = .disconnectB3Resp(ncci: a)
        case .disconnectInd(let a, _): body = .disconnectResp(plci: a)
        case .other(let c, .ind, let p) where p.count >= 4:
            body = .other(command: c, subcommand: .resp, parameters: Array(p.prefix(4)))
        default: return nil
        }
        return CapiMessage(applID: applID, messageNumber: messageNumber, body: body)
    }
}

extension UInt32 {
    /// Controller number of a controller / PLCI / NCCI address (low 7 bits).
    public var capiController: Int { Int(self & 0x7F) }
    /// PLCI part of an NCCI.
    public var capiPLCI: UInt32 { self & 0xFFFF }
}
