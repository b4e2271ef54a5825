extension CapiMessage {
    /// Length of the DATA_B3 message part in its 64-bit form (payload follows).
    public static let dataB3MessageLength = 30

    /// Encodes the message (header + parameters; DATA_B3 REQ/IND in the 30-byte form with the payload appended).
    public func encoded() -> [UInt8] {
        var p = CapiWriter()
        var payload: [UInt8] = []
        switch body {
        case .listenReq(let c, let info, let cip, let cip2, let calling, let callingSub):
            p.dword(c); p.dword(info); p.dword(cip); p.dword(cip2); p.structure(calling); p.structure(callingSub)
        case .listenConf(let c, let info), .alertConf(let c, let info), .disconnectConf(let c, let info),
             .disconnectB3Conf(let c, let info), .connectConf(let c, let info), .connectB3Conf(let c, let info):
            p.dword(c); p.word(info.rawValue)
        case .connectInd(let plci, let cip, let called, let calling, let calledSub, let callingSub, let bc, let llc, let hlc, let add):
            p.dword(plci); p.word(cip); p.structure(called.encoded()); p.structure(calling?.encoded() ?? [])
            p.structure(calledSub); p.structure(callingSub); p.structure(bc); p.structure(llc); p.structure(hlc); p.structure(add)
        case .connectReq(let c, let cip, let called, let calling, let calledSub, let callingSub, let bp, let bc, let llc, let hlc, let add):
            p.dword(c); p.word(cip); p.structure(called.encoded()); p.structure(calling?.encoded() ?? [])
            p.structure(calledSub); p.structure(callingSub); p.structure(bp?.encoded() ?? []); p.structure(bc)
            p.structure(llc); p.structure(hlc); p.structure(add)
        case .connectResp(let plci, let reject, let bp, let num, let sub, let llc, let add):
            p.dword(plci); p.word(reject); p.structure(bp?.encoded() ?? []); p.structure(num); p.structure(sub)
            p.structure(llc); p.structure(add)
        case .connectActiveInd(let plci, let num, let sub, let llc):
            p.dword(plci); p.structure(num); p.structure(sub); p.structure(llc)
        case .connectActiveResp(let a), .infoResp(let a), .connectB3ActiveResp(let a), .disconnectB3Resp(let a),
             .disconnectResp(let a):
            p.dword(a)
        case .alertReq(let a, let add), .disconnectReq(let a, let add):
            p.dword(a); p.structure(add)
        case .infoInd(let a, let n, let e):
            p.dword(a); p.word(n); p.structure(e)
        case .connectB3Ind(let a, let ncpi), .connectB3ActiveInd(let a, let ncpi), .disconnectB3Req(let a, let ncpi),
             .connectB3Req(let a, let ncpi):
            p.dword(a); p.structure(ncpi)
        case .connectB3Resp(let a, let reject, let ncpi):
            p.dword(a); p.word(reject); p.structure(ncpi)
        case .dataB3Req(let a, let h, let f, let d), .dataB3Ind(let a, let h, let f, let d):
            p.dword(a); p.dword(0); p.word(UInt16(d.count)); p.word(h); p.word(f); p.qword(0)
            payload = d
        case .dataB3Conf(let a, let h, let info):
            p.dword(a); p.word(h); p.word(info.rawValue)
        case .dataB3Resp(let a, let h):
            p.dword(a); p.word(h)
        case .disconnectB3Ind(let a, let r, let ncpi):
            p.dword(a); p.word(r.rawValue); p.structure(ncpi)
        case .disconnectInd(let a, let r):
            p.dword(a); p.word(r.rawValue)
        case .other(_, _, let params):
            p.raw(params)
        }
        var w = CapiWriter()
        w.word(UInt16(8 + p.bytes.count)); w.word(applID); w.byte(command.rawValue); w.byte(subcommand.rawValue)
        w.word(messageNumber); w.raw(p.bytes); w.raw(payload)
        return w.bytes
    }
}
