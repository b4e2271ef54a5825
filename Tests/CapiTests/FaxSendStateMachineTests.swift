import CAPITransport
import CapiProtocol
import FaxgateCore
import Foundation
import Testing

/// The send state machine driven message by message, without I/O.
@Suite struct FaxSendStateMachineTests {
    typealias SM = FaxSendStateMachine

    static func fax(_ size: Int = 5000, restrict: Bool = true, timeout: Duration = .seconds(30)) -> OutgoingFax {
        OutgoingFax(jobID: 42, dialString: DialString("0301234567")!, callingNumber: "4711", restrictCallingNumber: restrict,
                    stationID: "+49 40 5555", headline: "Faxgate", fine: true,
                    sff: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }, answerTimeout: timeout)
    }
    static func ind(_ n: UInt16, _ body: CapiMessageBody) -> CapiMessage { CapiMessage(applID: 1, messageNumber: n, body: body) }

    func sent(_ actions: [SM.Action]?) -> [CapiMessage] {
        (actions ?? []).compactMap { if case .send(let m) = $0 { m } else { nil } }
    }
    func finished(_ actions: [SM.Action]?) -> SM.FinishedSend? {
        (actions ?? []).lazy.compactMap { if case .finished(let f) = $0 { f } else { nil } }.first
    }

    let plci: UInt32 = 0x201, ncci: UInt32 = 0x10201

    /// Dials and brings the call to CONNECT_B3_ACTIVE; returns the first DATA_B3_REQs.
    func connect(_ sm: inout SM, _ fax: OutgoingFax = fax()) throws -> [CapiMessage] {
        let req = try #require(sent(sm.start(call: 1, fax: fax, controller: 2)).first)
        var a = sm.handle(CapiMessage(applID: 1, messageNumber: req.messageNumber, body: .connectConf(plci: plci, info: .noError)))
        #expect(a?.contains { if case .startAnswerTimer(1, _, fax.answerTimeout) = $0 { true } else { false } } == true)
        a = sm.handle(Self.ind(2, .infoInd(plci: plci, infoNumber: 0x8001, infoElement: [])))
        #expect(sent(a).map(\.body) == [.infoResp(plci: plci)])
        a = sm.handle(Self.ind(3, .connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: [])))
        #expect(sent(a).map(\.body) == [.connectActiveResp(plci: plci), .connectB3Req(plci: plci, ncpi: [])])
        let b3 = try #require(sent(a).last)
        #expect(sm.handle(CapiMessage(applID: 1, messageNumber: b3.messageNumber, body: .connectB3Conf(ncci: ncci, info: .noError))) == [])
        a = sm.handle(Self.ind(4, .connectB3ActiveInd(ncci: ncci, ncpi: FaxNCPI(rate: 9600, fine: true, pages: 0, stationID: "REMOTE").encoded())))
        #expect(sent(a).first?.body == .connectB3ActiveResp(ncci: ncci))
        return Array(sent(a).dropFirst())
    }

    func confirm(_ sm: inout SM, _ m: CapiMessage, info: CapiInfo = .noError) -> [SM.Action]? {
        guard case .dataB3Req(let n, let h, _, _) = m.body else { return nil }
        return sm.handle(CapiMessage(applID: 1, messageNumber: m.messageNumber, body: .dataB3Conf(ncci: n, handle: h, info: info)))
    }

    /// The last check before CONNECT_REQ, on the bytes of the called party number: ASCII digits only.
    @Test func calledPartyNumber_isASCIIDigitsOrNothing() {
        #expect(SM.calledPartyNumber("0301234567")?.encoded() == [0x80] + Array("0301234567".utf8))
        for bad in ["", "+49301234567", "030 1234567", "0\u{0301}301234567", "030\u{0663}1234567", "\u{FF10}301234567",
                    "0301234\u{200B}567", "\u{202E}0301234567", "030*1234567", String(repeating: "1", count: 31)] {
            #expect(SM.calledPartyNumber(bad) == nil, "\(bad.debugDescription)")
        }
    }

    @Test func dialsWithFaxParameters() throws {
        var sm = SM()
        let req = try #require(sent(sm.start(call: 1, fax: Self.fax(), controller: 2)).first)
        guard case .connectReq(2, 17, let called, let calling?, _, _, let bp?, _, _, _, _) = req.body else {
            Issue.record("bad CONNECT_REQ \(req)"); return
        }
        #expect(called.encoded() == [0x80] + Array("0301234567".utf8))
        #expect(calling.encoded() == [0x00, 0xA0] + Array("4711".utf8))
        #expect((bp.b1, bp.b2, bp.b3) == (4, 4, 4))
        #expect(bp.faxConfiguration == FaxB3Configuration(fine: true, format: 0, stationID: "+49 40 5555", headline: "Faxgate"))
        // Encoded and decoded through the wire format: the calling number without digits keeps its presentation byte.
        var anonymous = Self.fax()
        anonymous.callingNumber = nil
        anonymous.restrictCallingNumber = false
        let req2 = try #require(sent(sm.start(call: 2, fax: anonymous, controller: 1)).first)
        let back = try CapiMessage.decode(req2.encoded())
        #expect(back == req2)
        guard case .connectReq(_, _, _, let c2?, _, _, _, _, _, _, _) = back.body else { Issue.record("no calling"); return }
        #expect(c2.encoded() == [0x00, 0x80])
        #expect(req2.messageNumber != req.messageNumber)
    }

    @Test func happyPathSendsEveryByteAndSucceeds() throws {
        var sm = SM()
        let fax = Self.fax(5000)
        var blocks = try connect(&sm, fax)
        #expect(blocks.count == 3)
        var data: [UInt8] = []
        for b in blocks { if case .dataB3Req(ncci, _, 0, let d) = b.body { data += d } }
        #expect(data == fax.sff)
        #expect(blocks.allSatisfy { if case .dataB3Req(_, _, _, let d) = $0.body { d.count <= 2048 } else { false } })
        let last = blocks.removeLast()
        for b in blocks { #expect(sent(confirm(&sm, b)).isEmpty, "no DISCONNECT_B3_REQ before the last DATA_B3_CONF") }
        #expect(sent(confirm(&sm, last)).map(\.body) == [.disconnectB3Req(ncci: ncci, ncpi: [])])
        var a = sm.handle(Self.ind(9, .disconnectB3Ind(ncci: ncci, reasonB3: .noError,
                                                       ncpi: FaxNCPI(rate: 9600, fine: true, pages: 2, stationID: "REMOTE").encoded())))
        #expect(sent(a).map(\.body) == [.disconnectB3Resp(ncci: ncci), .disconnectReq(plci: plci, additionalInfo: [])])
        #expect(sent(a).first?.messageNumber == 9)
        a = sm.handle(Self.ind(10, .disconnectInd(plci: plci, reason: .normalClearing)))
        #expect(sent(a).map(\.body) == [.disconnectResp(plci: plci)])
        let f = try #require(finished(a))
        #expect(f.cause == .success && f.pagesSent == 2 && f.jobID == 42)
        #expect(f.session == FaxSessionInfo(bitRate: 9600, fine: true, pages: 2, remoteStationID: "REMOTE", engine: .controller))
        #expect(f.connectedAt != nil)
        #expect(sm.isIdle)
    }

    @Test func busyRightAfterConnectConf() throws {
        var sm = SM()
        let req = try #require(sent(sm.start(call: 7, fax: Self.fax(), controller: 1)).first)
        _ = sm.handle(CapiMessage(applID: 1, messageNumber: req.messageNumber, body: .connectConf(plci: 0x301, info: .noError)))
        let a = sm.handle(Self.ind(5, .disconnectInd(plci: 0x301, reason: .userBusy)))
        #expect(sent(a).map(\.body) == [.disconnectResp(plci: 0x301)])
        let f = try #require(finished(a))
        #expect(f.call == 7 && f.cause == .busy && f.reason == 0x3491 && f.pagesSent == 0 && f.connectedAt == nil)
    }

    @Test func reasonsMapToCauses() throws {
        let cases: [(UInt16, SendOutcome.Cause)] = [(0x3491, .busy), (0x3492, .noAnswer), (0x3493, .noAnswer), (0x3481, .invalidNumber),
                                                    (0x349C, .invalidNumber), (0x3495, .rejected), (0x34A2, .networkFailure),
                                                    (0x34A9, .networkFailure), (0x3301, .networkFailure)]
        for (reason, cause) in cases {
            var sm = SM()
            let req = try #require(sent(sm.start(call: 1, fax: Self.fax(), controller: 1)).first)
            _ = sm.handle(CapiMessage(applID: 1, messageNumber: req.messageNumber, body: .connectConf(plci: 0x101, info: .noError)))
            #expect(finished(sm.handle(Self.ind(5, .disconnectInd(plci: 0x101, reason: CapiInfo(reason)))))?.cause == cause,
                    "0x\(String(reason, radix: 16))")
        }
        // CONNECT_CONF refused: nothing was dialled.
        var sm = SM()
        let req = try #require(sent(sm.start(call: 1, fax: Self.fax(), controller: 9)).first)
        let f = finished(sm.handle(CapiMessage(applID: 1, messageNumber: req.messageNumber, body: .connectConf(plci: 9, info: CapiInfo(0x2002)))))
        #expect(f?.cause == .localError && f?.info == 0x2002)
        #expect(sm.isIdle)
    }

    @Test func noAnswerTimeoutHangsUp() throws {
        var sm = SM()
        let req = try #require(sent(sm.start(call: 1, fax: Self.fax(timeout: .milliseconds(1500)), controller: 1)).first)
        let first = sm.handle(CapiMessage(applID: 1, messageNumber: req.messageNumber, body: .connectConf(plci: plci, info: .noError)))
        guard case .startAnswerTimer(1, let t1, _) = first?.first else { Issue.record("no timer: \(String(describing: first))"); return }
        let a = sm.handle(Self.ind(2, .infoInd(plci: plci, infoNumber: 0x8001, infoElement: [])))
        guard case .startAnswerTimer(1, let t2, .milliseconds(1500)) = a?.last else { Issue.record("ALERTING restarts the timer"); return }
        #expect(sm.answerTimerFired(call: 1, token: t1).isEmpty, "the superseded timer is void")
        #expect(sent(sm.answerTimerFired(call: 1, token: t2)).map(\.body) == [.disconnectReq(plci: plci, additionalInfo: [])])
        let f = try #require(finished(sm.handle(Self.ind(3, .disconnectInd(plci: plci, reason: .normalClearing)))))
        #expect(f.cause == .noAnswer)
        #expect(f.textOverride == "no answer within 1500 ms")
    }

    @Test func remoteAbortAfterPage2() throws {
        var sm = SM()
        let blocks = try connect(&sm, Self.fax(30_000))
        #expect(blocks.count == 7)
        _ = confirm(&sm, blocks[0])
        var a = sm.handle(Self.ind(20, .disconnectB3Ind(ncci: ncci, reasonB3: .remoteAbort,
                                                        ncpi: FaxNCPI(rate: 9600, fine: true, pages: 2, stationID: "REMOTE").encoded())))
        #expect(sent(a).map(\.body) == [.disconnectB3Resp(ncci: ncci), .disconnectReq(plci: plci, additionalInfo: [])])
        #expect(sent(confirm(&sm, blocks[1])).isEmpty, "no more data after the B3 link is down")
        a = sm.handle(Self.ind(21, .disconnectInd(plci: plci, reason: .normalClearing)))
        let f = try #require(finished(a))
        #expect(f.cause == .faxProtocolError && f.reasonB3 == 0x3314 && f.pagesSent == 2)
        #expect(f.context.contains("after 2 pages"))
    }

    @Test func notAFaxIsAFaxProtocolError() throws {
        var sm = SM()
        _ = try connect(&sm, Self.fax(100))
        _ = sm.handle(Self.ind(20, .disconnectB3Ind(ncci: ncci, reasonB3: .remoteNotFax, ncpi: [])))
        let f = try #require(finished(sm.handle(Self.ind(21, .disconnectInd(plci: plci, reason: .normalClearing)))))
        #expect(f.cause == .faxProtocolError && f.reasonB3 == 0x3311)
    }

    @Test func windowOfSevenWith20Blocks() throws {
        var sm = SM()
        let fax = Self.fax(20 * 2048 - 100)
        var outstanding = try connect(&sm, fax)
        var all = outstanding
        var maxOutstanding = outstanding.count
        var disconnectB3: CapiMessage? = nil
        var rng = SystemRandomNumberGenerator()
        while !outstanding.isEmpty {
            // Confirm in an arbitrary order, as a controller may.
            let m = outstanding.remove(at: Int.random(in: 0..<outstanding.count, using: &rng))
            #expect(disconnectB3 == nil, "DISCONNECT_B3_REQ only after the last confirmation")
            for s in sent(confirm(&sm, m)) {
                if case .dataB3Req = s.body { outstanding.append(s); all.append(s) }
                if case .disconnectB3Req = s.body { disconnectB3 = s }
            }
            maxOutstanding = max(maxOutstanding, outstanding.count)
            #expect(outstanding.count <= 7)
        }
        #expect(maxOutstanding == 7)
        #expect(all.count == 20)
        #expect(disconnectB3 != nil)
        let data: [UInt8] = all.flatMap { m -> [UInt8] in if case .dataB3Req(_, _, _, let d) = m.body { d } else { [] } }
        #expect(data == fax.sff)
        let handles = all.compactMap { if case .dataB3Req(_, let h, _, _) = $0.body { h } else { nil } }
        #expect(Set(handles).count == 20)
    }

    @Test func dataB3ConfErrorStopsTheDocument() throws {
        var sm = SM()
        let blocks = try connect(&sm, Self.fax(30_000))
        _ = confirm(&sm, blocks[0])
        let a = confirm(&sm, blocks[1], info: CapiInfo(0x300C))
        #expect(sent(a).map(\.body) == [.disconnectB3Req(ncci: ncci, ncpi: [])], "no new block after the error")
        for b in blocks.dropFirst(2) { #expect(sent(confirm(&sm, b)).isEmpty) }
        _ = sm.handle(Self.ind(30, .disconnectB3Ind(ncci: ncci, reasonB3: .noError,
                                                    ncpi: FaxNCPI(rate: 9600, fine: true, pages: 1, stationID: "R").encoded())))
        let f = try #require(finished(sm.handle(Self.ind(31, .disconnectInd(plci: plci, reason: .normalClearing)))))
        #expect(f.cause == .localError && f.info == 0x300C, "pages confirmed but the document was incomplete: not a success")
    }

    @Test func controllerLossAndShutdown() throws {
        var sm = SM()
        _ = try connect(&sm)
        let other = try #require(sent(sm.start(call: 2, fax: Self.fax(), controller: 1)).first)
        // Shutdown: the connected call is hung up; the one still dialling is hung up when its CONNECT_CONF comes.
        #expect(sent(sm.disconnectAll(text: "gateway shutting down")).map(\.body) == [.disconnectReq(plci: plci, additionalInfo: [])])
        let late = sm.handle(CapiMessage(applID: 1, messageNumber: other.messageNumber, body: .connectConf(plci: 0x401, info: .noError)))
        #expect(sent(late).map(\.body) == [.disconnectReq(plci: 0x401, additionalInfo: [])])
        let f = try #require(finished(sm.handle(Self.ind(40, .disconnectInd(plci: 0x401, reason: .normalClearing)))))
        #expect(f.cause == .networkFailure && f.textOverride == "gateway shutting down")
        // Then the controller goes away with the first call still up.
        let lost = sm.abandonAll(text: "controller connection lost").compactMap { if case .finished(let f) = $0 { f } else { nil } }
        #expect(lost.count == 1)
        #expect(lost.first?.cause == .networkFailure && lost.first?.textOverride == "controller connection lost" && lost.first?.reason == 0x3301)
        #expect(sm.isIdle)
    }

    @Test func leavesOtherCallsToTheReceiveSide() throws {
        var sm = SM()
        _ = try connect(&sm)
        #expect(!sm.owns(Self.ind(50, .connectInd(plci: 0x501, cip: 17, called: CalledPartyNumber(digits: "1"), calling: nil,
                                                 calledSubaddress: [], callingSubaddress: [], bc: [], llc: [], hlc: [], additionalInfo: []))))
        #expect(sm.handle(Self.ind(51, .dataB3Ind(ncci: 0x10501, handle: 1, flags: 0, data: [1]))) == nil)
        #expect(sm.handle(CapiMessage(applID: 1, messageNumber: 0x8000, body: .connectConf(plci: 0x601, info: .noError))) == nil,
                "CONNECT_CONF only for a pending CONNECT_REQ")
        #expect(sm.owns(Self.ind(52, .disconnectInd(plci: plci, reason: .normalClearing))))
    }
}
