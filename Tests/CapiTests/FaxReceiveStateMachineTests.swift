import CAPITransport
import CapiProtocol
import FaxgateCore
import Foundation
import TestSupport
import Testing

@Suite struct FaxReceiveStateMachineTests {
    let dir: TemporaryDirectory
    init() throws { dir = try TemporaryDirectory("capi-sm") }

    func answer(_ id: Int64, ring: Duration = .zero) throws -> FaxAnswer {
        FaxAnswer(receptionID: id, stationID: "+49 40 5555", headline: "Faxgate", fine: false, ringDelay: ring,
                  spool: try ReceptionSpoolFile(path: dir.path + "/\(id).sff"))
    }

    static func ind(_ n: UInt16, _ body: CapiMessageBody) -> CapiMessage { CapiMessage(applID: 1, messageNumber: n, body: body) }

    static let connectInd = ind(10, .connectInd(
        plci: 0x101, cip: 17, called: CalledPartyNumber(digits: "4711"),
        calling: CallingPartyNumber(typeAndPlan: 0x21, presentation: 0xA0, digits: "0301234"),
        calledSubaddress: [], callingSubaddress: [], bc: [], llc: [], hlc: [], additionalInfo: []))

    func sent(_ actions: [FaxReceiveStateMachine.Action]) -> [CapiMessage] {
        actions.compactMap { if case .send(let m) = $0 { m } else { nil } }
    }

    @Test func answersAFaxCallFromStartToEnd() throws {
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        var a = sm.handle(Self.connectInd)
        guard case .decide(let call) = a.first else { Issue.record("no decision asked: \(a)"); return }
        // 0x21 = national number (ISDN plan), 0xA0 = presentation restricted; the called number 0x80 is of unknown type.
        #expect(call == IncomingCall(handle: 0x101, controller: 1, service: .fax, called: PartyNumber(digits: "4711"),
                                     caller: PartyNumber(digits: "0301234", type: .national, presentation: .restricted)))
        #expect(call.callingNumberRestricted)

        a = sm.decided(plci: 0x101, .answerFax(try answer(5, ring: .seconds(2))))
        #expect(sent(a).map(\.name) == ["ALERT_REQ"])
        #expect(a.contains(.startRingDelay(plci: 0x101, delay: .seconds(2))))

        a = sm.ringDelayElapsed(plci: 0x101)
        let resp = sent(a)
        #expect(resp.count == 1)
        #expect(resp.first?.messageNumber == 10, "CONNECT_RESP echoes the CONNECT_IND number")
        guard case .connectResp(0x101, 0, let bp?, _, _, _, _) = resp.first?.body else { Issue.record("bad \(resp)"); return }
        #expect((bp.b1, bp.b2, bp.b3) == (4, 4, 4))
        #expect(bp.faxConfiguration == FaxB3Configuration(fine: false, stationID: "+49 40 5555", headline: "Faxgate"))

        #expect(sent(sm.handle(Self.ind(11, .connectActiveInd(plci: 0x101, connectedNumber: [], connectedSubaddress: [], llc: [])))).map(\.body)
                == [.connectActiveResp(plci: 0x101)])
        #expect(sent(sm.handle(Self.ind(12, .connectB3Ind(ncci: 0x10101, ncpi: [])))).map(\.body)
                == [.connectB3Resp(ncci: 0x10101, reject: 0, ncpi: [])])
        a = sm.handle(Self.ind(13, .connectB3ActiveInd(ncci: 0x10101, ncpi: FaxNCPI(rate: 9600, fine: true, pages: 0, stationID: "REMOTE").encoded())))
        #expect(a.contains(.connected(receptionID: 5, info: FaxSessionInfo(bitRate: 9600, fine: true, pages: 0, remoteStationID: "REMOTE", engine: .controller))))

        a = sm.handle(Self.ind(14, .dataB3Ind(ncci: 0x10101, handle: 3, flags: 0, data: [1, 2, 3])))
        #expect(a.first == .append(receptionID: 5, data: [1, 2, 3]))
        #expect(sent(a).first == CapiMessage(applID: 1, messageNumber: 14, body: .dataB3Resp(ncci: 0x10101, handle: 3)))

        a = sm.handle(Self.ind(15, .disconnectB3Ind(ncci: 0x10101, reasonB3: .noError,
                                                    ncpi: FaxNCPI(rate: 9600, fine: true, pages: 2, stationID: "REMOTE").encoded())))
        #expect(sent(a).map(\.body) == [.disconnectB3Resp(ncci: 0x10101)])
        a = sm.handle(Self.ind(16, .disconnectInd(plci: 0x101, reason: .normalClearing)))
        #expect(sent(a).map(\.body) == [.disconnectResp(plci: 0x101)])
        guard case .finished(let f)? = a.last else { Issue.record("not finished: \(a)"); return }
        #expect(f.receptionID == 5 && f.reason == 0x3490 && f.reasonB3 == 0)
        #expect(f.session == FaxSessionInfo(bitRate: 9600, fine: true, pages: 2, remoteStationID: "REMOTE", engine: .controller))
        #expect(sm.isIdle)
    }

    @Test(arguments: [
        (CallDecision.ignore, UInt16(1)), (.reject(.normalClearing), 2), (.reject(.busy), 3),
        (.reject(.incompatibleDestination), 7), (.reject(.unallocatedNumber), 0x3481),
    ])
    func rejectCodes(decision: CallDecision, code: UInt16) {
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        _ = sm.handle(Self.connectInd)
        let a = sm.decided(plci: 0x101, decision)
        #expect(sent(a).map(\.body) == [.connectResp(plci: 0x101, reject: code, bProtocol: nil, connectedNumber: [],
                                                     connectedSubaddress: [], llc: [], additionalInfo: [])])
        #expect(sent(a).first?.messageNumber == 10)
        // The controller then clears the call; nothing is reported for a call that was never answered.
        let end = sm.handle(Self.ind(11, .disconnectInd(plci: 0x101, reason: .callRejected)))
        #expect(end.count == 1)
        #expect(sm.isIdle)
    }

    @Test func audioCallsAreLeftAloneUnlessAnsweredAsFax() {
        var audio = Self.connectInd
        if case .connectInd(let p, _, let c, let g, let cs, let gs, let bc, let llc, let hlc, let add) = audio.body {
            audio.body = .connectInd(plci: p, cip: 4, called: c, calling: g, calledSubaddress: cs, callingSubaddress: gs,
                                     bc: bc, llc: llc, hlc: hlc, additionalInfo: add)
        }
        var strict = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        guard case .send(let m) = strict.handle(audio).first, case .connectResp(_, 1, _, _, _, _, _) = m.body else {
            Issue.record("audio call not ignored"); return
        }
        var lenient = FaxReceiveStateMachine(options: .init(answerAudioAsFax: true))
        guard case .decide(let call) = lenient.handle(audio).first else { Issue.record("audio call not offered"); return }
        #expect(call.service == .audio)
    }

    @Test func callerHangingUpWhileDecidingStillReportsTheReception() throws {
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        _ = sm.handle(Self.connectInd)
        let a = sm.handle(Self.ind(11, .disconnectInd(plci: 0x101, reason: .noAnswer)))
        #expect(sent(a).map(\.body) == [.disconnectResp(plci: 0x101)])
        let d = sm.decided(plci: 0x101, .answerFax(try answer(9)))
        guard case .finished(let f)? = d.first else { Issue.record("no end: \(d)"); return }
        #expect(f.receptionID == 9 && f.reason == 0x3493)
        #expect(sent(d).isEmpty, "nothing is sent for a call that is gone")
        #expect(sm.isIdle)
    }

    @Test func abandonAndShutdownDisconnect() throws {
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        _ = sm.handle(Self.connectInd)
        _ = sm.decided(plci: 0x101, .answerFax(try answer(7)))
        _ = sm.handle(Self.ind(11, .connectActiveInd(plci: 0x101, connectedNumber: [], connectedSubaddress: [], llc: [])))
        let d = sm.disconnectAll()
        #expect(sent(d).map(\.name) == ["DISCONNECT_REQ"])
        let lost = sm.abandonAll(text: "controller connection lost")
        guard case .finished(let f)? = lost.first else { Issue.record("no end"); return }
        #expect(f.textOverride == "controller connection lost" && f.receptionID == 7)
        #expect(f.cause == .lineLost, "typed: the pipeline must not read the text to know the call was cut")
        #expect(sm.isIdle)
    }

    @Test func aCallThatEndsByItselfIsCleared() throws {
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        _ = sm.handle(Self.connectInd)
        _ = sm.decided(plci: 0x101, .answerFax(try answer(8)))
        _ = sm.handle(Self.ind(11, .connectActiveInd(plci: 0x101, connectedNumber: [], connectedSubaddress: [], llc: [])))
        let a = sm.handle(Self.ind(12, .disconnectInd(plci: 0x101, reason: CapiInfo(0x3490))))
        guard case .finished(let f)? = a.last else { Issue.record("no end: \(a)"); return }
        #expect(f.cause == .cleared && f.textOverride == nil)
    }

    /// Q.931 octet 3 (type of number, numbering plan) and 3a (presentation) of CONNECT_IND, as the core sees them.
    @Test(arguments: [
        // (octet 3, octet 3a or nil, expected type, expected presentation)
        (UInt8(0x00), UInt8?(0x80), PartyNumber.NumberType.unknown, PartyNumber.Presentation.allowed),
        (0x01, 0x80, .unknown, .allowed),
        (0x11, 0x80, .international, .allowed),
        (0x10, 0x80, .international, .allowed),     // unknown plan, international: common from networks
        (0x21, 0x80, .national, .allowed),
        (0x21, 0x81, .national, .allowed),          // screening bits do not matter
        (0x21, 0x83, .national, .allowed),
        (0x41, 0x80, .subscriber, .allowed),
        (0x31, 0x80, .unknown, .allowed),           // network specific
        (0x61, 0x80, .unknown, .allowed),           // abbreviated
        (0x49, 0x80, .unknown, .allowed),           // subscriber in a private plan: not an E.164 subscriber number
        (0x21, 0xA0, .national, .restricted),
        (0x11, 0xA3, .international, .restricted),
        (0x00, 0xC0, .unknown, .unavailable),
        (0x21, 0xE0, .national, .restricted),       // reserved presentation value: withhold
        (0xA1, nil, .national, .allowed),           // extension bit set: no octet 3a
        (0x91, nil, .international, .allowed),
    ])
    func callingPartyNumberOctets(octet3: UInt8, octet3a: UInt8?, type: PartyNumber.NumberType,
                                  presentation: PartyNumber.Presentation) throws {
        let raw = [octet3] + (octet3a.map { [$0] } ?? []) + Array("301234567".utf8)
        let decoded = try #require(CallingPartyNumber.decode(raw))
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        let a = sm.handle(Self.ind(10, .connectInd(
            plci: 0x101, cip: 17, called: CalledPartyNumber(typeAndPlan: 0xC1, digits: "4711"), calling: decoded,
            calledSubaddress: [], callingSubaddress: [], bc: [], llc: [], hlc: [], additionalInfo: [])))
        guard case .decide(let call)? = a.first else { Issue.record("no decision asked: \(a)"); return }
        #expect(call.caller == PartyNumber(digits: "301234567", type: type, presentation: presentation))
        #expect(call.called == PartyNumber(digits: "4711", type: .subscriber))
        #expect(call.callingNumberRestricted == (presentation == .restricted))
    }

    @Test func noCallingNumberStructMeansNoCaller() {
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        let a = sm.handle(Self.ind(10, .connectInd(
            plci: 0x101, cip: 17, called: CalledPartyNumber(typeAndPlan: 0xA1, digits: "301234100"), calling: nil,
            calledSubaddress: [], callingSubaddress: [], bc: [], llc: [], hlc: [], additionalInfo: [])))
        guard case .decide(let call)? = a.first else { Issue.record("no decision asked: \(a)"); return }
        #expect(call.caller == nil && call.callingNumber == nil && !call.callingNumberRestricted)
        #expect(call.called == PartyNumber(digits: "301234100", type: .national))
    }
}
