import CapiProtocol
import FaxDocument
import Foundation
import SoftFax

/// An incoming call from a fax machine on a transparent line: the gateway must answer with B 1/1/0 and run its
/// own fax modem; the simulator's spandsp engine sends `pages` as audio (bit-reversed A-law in DATA_B3_IND).
///
/// With a voice CIP (1 speech, 16 telephony) it is a fax machine dialling a voicemail number: it sends CNG at
/// once, hears the greeting, and faxes as soon as the gateway's own engine answers on the same B-channel. No
/// FACILITY 'X' is indicated: a controller without fax firmware detects no fax tone.
public struct SimulatedSoftFaxCall: Sendable {
    public var controller: Int
    public var callingNumber: String
    public var callingNumberRestricted: Bool
    public var calledNumber: String
    /// 17 fax G2/G3 (default), 4 3.1 kHz audio, 1 speech, 16 telephony.
    public var cip: UInt16
    public var pages: [FaxPage]
    public var remote: SoftFaxRemote
    /// Calling party number octet 3 (type of number, numbering plan).
    public var callingTypeAndPlan: UInt8 = 0x00
    /// Octet 3a; nil = from `callingNumberRestricted`.
    public var callingPresentation: UInt8? = nil
    public var calledTypeAndPlan: UInt8 = 0x80

    public init(controller: Int = 1, from callingNumber: String, to calledNumber: String, pages: [FaxPage],
                callingNumberRestricted: Bool = false, cip: UInt16 = 17, remote: SoftFaxRemote = SoftFaxRemote()) {
        self.controller = controller; self.callingNumber = callingNumber; self.calledNumber = calledNumber
        self.callingNumberRestricted = callingNumberRestricted; self.cip = cip; self.pages = pages; self.remote = remote
    }

    /// A fax machine calling a voice number (CIP 1, speech bearer); its audio is recorded so the greeting can be checked.
    public static func voiceCall(controller: Int = 1, from callingNumber: String, to calledNumber: String, pages: [FaxPage],
                                 remote: SoftFaxRemote = SoftFaxRemote()) -> SimulatedSoftFaxCall {
        var r = remote
        r.recordGatewayAudio = true
        return SimulatedSoftFaxCall(controller: controller, from: callingNumber, to: calledNumber, pages: pages, cip: 1, remote: r)
    }

    var isVoice: Bool { cip == 1 || cip == 16 }
}

public struct SoftFaxCallResult: Sendable, Equatable {
    public var plci: UInt32
    public var alerted = false
    /// CONNECT_RESP Reject (0 = answered).
    public var rejectCode: UInt16 = 0
    /// The B protocol the gateway chose in CONNECT_RESP (1/1/0 for a software fax).
    public var bProtocol: BProtocol?
    /// Transparent profile: the controller refused that B protocol (0x3001 for B1 = 4) and cleared the call.
    public var refusedInfo: UInt16?
    /// Why the line never came up although the call was answered (e.g. the gateway chose firmware fax B 4/4/4,
    /// which this software fax machine cannot be reached with).
    public var problem: String?
    /// The line as the simulator's fax machine saw it; nil when no B3 link came up.
    public var session: SoftFaxSession?
    /// Reason_B3 / Reason the simulator indicated when the call ended.
    public var reasonB3: UInt16?
    public var reason: UInt16?

    public var accepted: Bool { rejectCode == 0 && refusedInfo == nil }
    /// The sending engine's result.
    public var engineResult: FaxEngineResult? { session?.result }
    public var pagesSent: Int { session?.pagesSent ?? 0 }
    public var underruns: Int { session?.underruns ?? 0 }
}

extension CapiSimulator {
    /// Places an incoming call from a software fax machine and runs it to the end.
    public func placeSoftFaxCall(_ call: SimulatedSoftFaxCall) async throws -> SoftFaxCallResult {
        let t = call.remote.responseTimeout
        let offer = try await offerCall(
            controller: call.controller, cip: call.cip, calledNumber: call.calledNumber, callingNumber: call.callingNumber,
            restricted: call.callingNumberRestricted, bc: call.isVoice ? [0x80, 0x90, 0xA3] : [0x90, 0x90, 0xA3],
            hlc: call.isVoice ? [0x91, 0x81] : [0x91, 0x84], timeout: t, callingTypeAndPlan: call.callingTypeAndPlan,
            callingPresentation: call.callingPresentation, calledTypeAndPlan: call.calledTypeAndPlan)
        let (listen, plci) = (offer.listen, offer.plci)
        let ncci = plci | 1 << 16
        var result = SoftFaxCallResult(plci: plci, alerted: offer.alerted, rejectCode: offer.rejectCode, bProtocol: offer.bProtocol)
        if offer.rejectCode != 0 { result.reason = offer.disconnectReason; return result }
        if offer.refusedInfo != 0 { result.refusedInfo = offer.refusedInfo; result.reason = offer.refusedInfo; return result }

        let inbox = MessageInbox()
        state.withLock { $0.lineInboxes[plci] = (listen.connection.id, inbox) }
        defer { state.withLock { s in _ = s.lineInboxes.removeValue(forKey: plci) } }

        try await step(listen, .connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: []),
                       "CONNECT_ACTIVE_RESP", t) { if case .connectActiveResp(plci) = $0 { true } else { false } }
        guard let bp = offer.bProtocol, bp.b1 == 1, bp.b2 == 1, bp.b3 == 0 else {
            // Firmware fax (or HDLC data) cannot reach a fax machine that only speaks audio in this simulator.
            let chosen = offer.bProtocol.map { "\($0.b1)/\($0.b2)/\($0.b3)" } ?? "default"
            result.problem = "the gateway answered with B protocol \(chosen), not transparent 1/1/0"
            try await clearCall(listen, plci: plci, inbox: inbox, reason: 0x3490, timeout: t)
            result.reason = 0x3490
            return result
        }
        let b3 = try await step(listen, .connectB3Ind(ncci: ncci, ncpi: []), "CONNECT_B3_RESP", t) {
            if case .connectB3Resp(ncci, _, _) = $0 { true } else { false }
        }
        if case .connectB3Resp(_, let reject, _) = b3.body, reject != 0 {
            result.problem = "CONNECT_B3_RESP rejected the B3 connection (0x\(String(reject, radix: 16)))"
            try await clearCall(listen, plci: plci, inbox: inbox, reason: 0x3490, timeout: t)
            result.reason = 0x3490
            return result
        }
        let work = try Self.makeWorkDirectory()
        defer { try? FileManager.default.removeItem(atPath: work) }
        let engine: FaxEngine
        do { engine = try FaxEngine(options: call.remote.engineOptions(calling: true), send: call.pages, workDirectory: work) }
        catch { throw SimulatorError.protocolViolation("cannot start the simulator's fax engine: \(error)") }
        try await step(listen, .connectB3ActiveInd(ncci: ncci, ncpi: []), "CONNECT_B3_ACTIVE_RESP", t) {
            if case .connectB3ActiveResp(ncci) = $0 { true } else { false }
        }
        var session = SoftFaxSession()
        let end = await runSoftFaxLine(listen, plci: plci, ncci: ncci, inbox: inbox, engine: engine, remote: call.remote, session: &session)
        result.session = session
        let (reasonB3, reason) = try await endSoftFaxCall(listen, plci: plci, ncci: ncci, inbox: inbox, end: end, timeout: t)
        result.reasonB3 = reasonB3
        result.reason = reason
        return result
    }

    static func makeWorkDirectory() throws -> String {
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("capisim-softfax-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Next message on the line's inbox matching `match` (others are dropped: the line is over); nil on timeout or
    /// when the connection is gone.
    func nextOnLine(_ inbox: MessageInbox, timeout: Duration, _ match: (CapiMessageBody) -> Bool) async -> CapiMessage? {
        let deadline = ContinuousClock.now + timeout
        while true {
            let left = deadline - ContinuousClock.now
            if left <= .zero { return nil }
            switch await inbox.next(timeout: left) {
            case .message(let m): if match(m.body) { return m }
            case .timeout, .closed: return nil
            }
        }
    }

    /// DISCONNECT_IND and its response.
    func clearCall(_ listen: Listen, plci: UInt32, inbox: MessageInbox, reason: UInt16, timeout: Duration) async throws {
        indicate(listen, .disconnectInd(plci: plci, reason: CapiInfo(reason)))
        if await nextOnLine(inbox, timeout: timeout, { if case .disconnectResp(plci) = $0 { true } else { false } }) == nil,
           !listen.connection.isClosed {
            throw SimulatorError.timeout("DISCONNECT_RESP")
        }
    }

    /// Clears the B3 link and the call after a software fax line ended, the way a controller reports it.
    /// Returns the Reason_B3 and Reason indicated.
    func endSoftFaxCall(_ listen: Listen, plci: UInt32, ncci: UInt32, inbox: MessageInbox, end: SoftFaxLineEnd,
                        timeout t: Duration) async throws -> (UInt16?, UInt16?) {
        if end == .connectionLost { return (nil, nil) }
        // Transparent B3 has no fax reasons: the link goes down normally, whoever ended it.
        indicate(listen, .disconnectB3Ind(ncci: ncci, reasonB3: .noError, ncpi: []))
        var gatewayHungUp = end == .gatewayHungUp
        while true {
            guard let m = await nextOnLine(inbox, timeout: t, {
                switch $0 { case .disconnectB3Resp(ncci), .disconnectReq: true; default: false }
            }) else {
                if listen.connection.isClosed { return (0, nil) }
                throw SimulatorError.timeout("DISCONNECT_B3_RESP")
            }
            if case .disconnectReq = m.body { gatewayHungUp = true; continue }
            break
        }
        if end == .gatewayB3Down && !gatewayHungUp {
            // The gateway ended the fax; it is expected to clear the call next.
            gatewayHungUp = await nextOnLine(inbox, timeout: .seconds(5), { if case .disconnectReq = $0 { true } else { false } }) != nil
        }
        let reason: UInt16 = gatewayHungUp ? 0x3400 : 0x3490
        try await clearCall(listen, plci: plci, inbox: inbox, reason: reason, timeout: t)
        return (0, reason)
    }
}
