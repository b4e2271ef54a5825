import CAPITransport
import CapiProtocol
import FaxgateCore
import Foundation
import SoftFax
import TestSupport
import Testing

/// The CAPI decisions of the software fax engine, without I/O: which engine per controller, which B protocols,
/// what happens to the audio, and the transmit pacing.
@Suite struct SoftFaxTransportMachineTests {
    static let firmware = CapiProfile.faxAndVoice(controllers: 2)
    /// What a FRITZ!Box reports: transparent and HDLC only, no T.30 in any layer.
    static let fritzbox = CapiProfile(controllers: 1, bChannels: 2, globalOptions: 0x19, b1Support: 0x03, b2Support: 0x03, b3Support: 0x01)

    static func ind(_ n: UInt16, _ body: CapiMessageBody) -> CapiMessage { CapiMessage(applID: 1, messageNumber: n, body: body) }

    // MARK: Engine choice

    @Test func autoFollowsTheProfilesT30Bits() {
        #expect(Self.firmware.supportsT30)
        #expect(!Self.fritzbox.supportsT30)
        #expect(FaxEngineResolution.resolve(.auto, profile: Self.firmware).engine == .controller)
        #expect(FaxEngineResolution.resolve(.auto, profile: Self.fritzbox).engine == .software)
        // Each layer must have T.30: one missing bit means the firmware cannot do 4/4/4.
        for (b1, b2, b3) in [(0x03, 0x13, 0x31), (0x13, 0x03, 0x31), (0x13, 0x13, 0x01)] as [(UInt32, UInt32, UInt32)] {
            let p = CapiProfile(controllers: 1, bChannels: 2, globalOptions: 0, b1Support: b1, b2Support: b2, b3Support: b3)
            #expect(FaxEngineResolution.resolve(.auto, profile: p).engine == .software, "B1 \(b1) B2 \(b2) B3 \(b3)")
        }
        // B3 bit 4 alone (T.30, not extended) is enough.
        let plainT30 = CapiProfile(controllers: 1, bChannels: 2, globalOptions: 0, b1Support: 0x10, b2Support: 0x10, b3Support: 0x10)
        #expect(FaxEngineResolution.resolve(.auto, profile: plainT30).engine == .controller)
        // No profile at all: keep what always worked.
        #expect(FaxEngineResolution.resolve(.auto, profile: nil).engine == .controller)
        #expect(FaxEngineResolution.resolve(.auto, profile: Self.fritzbox).why.contains("no T.30"))
    }

    @Test func configuredEngineWinsAndOverridesArePerController() {
        #expect(FaxEngineResolution.resolve(.software, profile: Self.firmware).engine == .software)
        #expect(FaxEngineResolution.resolve(.controller, profile: Self.fritzbox).engine == .controller)
        var settings = CAPITransportSettings()
        settings.faxEngine = .auto
        settings.faxEngines = [2: .software]
        let r = settings.resolveFaxEngines(controllers: [1, 2, 3], profiles: [1: Self.firmware, 2: Self.firmware, 3: Self.fritzbox])
        #expect(r.mapValues(\.engine) == [1: .controller, 2: .software, 3: .software])
        #expect(CAPIFaxEngineSetting(configValue: "Software") == .software)
        #expect(CAPIFaxEngineSetting(configValue: "modem") == nil)
    }

    // MARK: Incoming

    func answer(_ dir: TemporaryDirectory, _ id: Int64, fine: Bool = true) throws -> FaxAnswer {
        FaxAnswer(receptionID: id, stationID: "+49 40 5555", headline: "Faxgate", fine: fine,
                  spool: try ReceptionSpoolFile(path: dir.path + "/\(id).sff"))
    }

    static func connectInd(_ plci: UInt32) -> CapiMessage {
        ind(10, .connectInd(plci: plci, cip: 17, called: CalledPartyNumber(digits: "4711"),
                            calling: CallingPartyNumber(typeAndPlan: 0x21, presentation: 0x80, digits: "0301234"),
                            calledSubaddress: [], callingSubaddress: [], bc: [], llc: [], hlc: [], additionalInfo: []))
    }

    func sent(_ a: [FaxReceiveStateMachine.Action]) -> [CapiMessage] { a.compactMap { if case .send(let m) = $0 { m } else { nil } } }

    @Test func incomingOnASoftwareControllerIsTransparentAndFeedsTheModem() throws {
        let dir = try TemporaryDirectory("softfax-sm")
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        sm.softwareControllers = [1]
        let plci: UInt32 = 0x101, ncci: UInt32 = 0x10101
        _ = sm.handle(Self.connectInd(plci))
        let a = try answer(dir, 7)
        let resp = sent(sm.decided(plci: plci, .answerFax(a)))
        guard case .connectResp(plci, 0, let bp?, _, _, _, _) = resp.last?.body else { Issue.record("no CONNECT_RESP: \(resp)"); return }
        #expect((bp.b1, bp.b2, bp.b3) == (1, 1, 0))
        #expect(bp.b3Configuration.isEmpty, "no fax B3 configuration on a transparent channel")

        _ = sm.handle(Self.ind(11, .connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: [])))
        #expect(sent(sm.handle(Self.ind(12, .connectB3Ind(ncci: ncci, ncpi: [])))).map(\.body) == [.connectB3Resp(ncci: ncci, reject: 0, ncpi: [])])
        var actions = sm.handle(Self.ind(13, .connectB3ActiveInd(ncci: ncci, ncpi: [])))
        #expect(actions.contains(.startSoftFax(plci: plci, ncci: ncci, answer: a)))
        #expect(!actions.contains { if case .connected = $0 { true } else { false } }, "connected comes from the modem's negotiation")

        // Audio goes to the modem, never into the spool as document bytes; every block is answered.
        actions = sm.handle(Self.ind(14, .dataB3Ind(ncci: ncci, handle: 9, flags: 0, data: [0xAB, 0xAB])))
        #expect(sent(actions).map(\.body) == [.dataB3Resp(ncci: ncci, handle: 9)])
        #expect(actions.contains(.softAudio(plci: plci, data: [0xAB, 0xAB])))
        #expect(!actions.contains { if case .append = $0 { true } else { false } })
        #expect(sm.handle(Self.ind(15, .dataB3Conf(ncci: ncci, handle: 3, info: .noError))) == [.softAudioConfirmed(plci: plci, handle: 3)])

        // The modem finished: hang up; the modem's session is reported, Reason_B3 0 (transparent B3 has none).
        let session = FaxSessionInfo(bitRate: 14400, fine: true, pages: 2, remoteStationID: "REMOTE", ecm: true, engine: .software,
                                     compression: .mmr, ecmRetransmittedFrames: 0)
        let hang = sm.softFaxFinished(plci: plci, session: session, failureText: nil, lineGone: false)
        #expect(sent(hang).map(\.body) == [.disconnectReq(plci: plci, additionalInfo: [])])
        _ = sm.handle(Self.ind(16, .disconnectB3Ind(ncci: ncci, reasonB3: CapiInfo(0), ncpi: [])))
        actions = sm.handle(Self.ind(17, .disconnectInd(plci: plci, reason: CapiInfo(0x3490))))
        guard case .finished(let f)? = actions.last else { Issue.record("not finished: \(actions)"); return }
        #expect(f.reasonB3 == 0 && f.reason == 0x3490)
        #expect(f.session == session)
        #expect(CallEnd(reason: Int(f.reason), reasonB3: Int(f.reasonB3), text: "", session: f.session).succeeded)
    }

    @Test func aFirmwareControllerNextToASoftwareOneKeeps444() throws {
        let dir = try TemporaryDirectory("softfax-sm")
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        sm.softwareControllers = [2]
        _ = sm.handle(Self.connectInd(0x101))
        let resp = sent(sm.decided(plci: 0x101, .answerFax(try answer(dir, 1))))
        guard case .connectResp(_, 0, let bp?, _, _, _, _) = resp.last?.body else { Issue.record("no CONNECT_RESP"); return }
        #expect((bp.b1, bp.b2, bp.b3) == (4, 4, 4))
        let actions = sm.handle(Self.ind(13, .connectB3ActiveInd(ncci: 0x10101, ncpi: [])))
        #expect(!actions.contains { if case .startSoftFax = $0 { true } else { false } })
    }

    @Test func aSoftwareFailureIsTypedAndNotASuccess() throws {
        let dir = try TemporaryDirectory("softfax-sm")
        var sm = FaxReceiveStateMachine(options: .init(answerAudioAsFax: false))
        sm.softwareControllers = [1]
        _ = sm.handle(Self.connectInd(0x101))
        _ = sm.decided(plci: 0x101, .answerFax(try answer(dir, 1)))
        _ = sm.handle(Self.ind(13, .connectB3ActiveInd(ncci: 0x10101, ncpi: [])))
        let failure = T30Failure(kind: .trainingFailed, code: 5, text: "Training failed", bitRate: 9600)
        let session = FaxSessionInfo(pages: 0, engine: .software, failure: failure)
        // The caller hung up under the modem: no DISCONNECT_REQ of our own.
        #expect(sm.softFaxFinished(plci: 0x101, session: session, failureText: "training failed at 9600 bit/s", lineGone: true) == [])
        let actions = sm.handle(Self.ind(17, .disconnectInd(plci: 0x101, reason: CapiInfo(0x3490))))
        guard case .finished(let f)? = actions.last else { Issue.record("not finished"); return }
        #expect(f.session.failure == failure)
        #expect(f.textOverride == "training failed at 9600 bit/s")
        #expect(!CallEnd(reason: Int(f.reason), reasonB3: Int(f.reasonB3), text: "", session: f.session).succeeded)
    }

    // MARK: Outgoing

    typealias SM = FaxSendStateMachine
    static let fax = OutgoingFax(jobID: 42, dialString: DialString("0301234567")!, stationID: "+49 40 5555", headline: "Faxgate",
                                 fine: true, sff: [1, 2, 3], modem: ModemSettings(maxBitRate: 9600, ecm: false))
    func sent(_ a: [SM.Action]?) -> [CapiMessage] { (a ?? []).compactMap { if case .send(let m) = $0 { m } else { nil } } }
    func finished(_ a: [SM.Action]?) -> SM.FinishedSend? { (a ?? []).lazy.compactMap { if case .finished(let f) = $0 { f } else { nil } }.first }

    /// Dials on a software controller up to the transparent B3 link.
    func connectSoft(_ sm: inout SM, plci: UInt32 = 0x201, ncci: UInt32 = 0x10201) throws {
        let req = try #require(sent(sm.start(call: 1, fax: Self.fax, controller: 1, engine: .software)).first)
        guard case .connectReq(1, 17, _, _, _, _, let bp?, _, _, _, _) = req.body else { Issue.record("bad CONNECT_REQ \(req)"); return }
        #expect(bp == .transparentVoice)
        _ = sm.handle(CapiMessage(applID: 1, messageNumber: req.messageNumber, body: .connectConf(plci: plci, info: .noError)))
        let a = sm.handle(Self.ind(3, .connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: [])))
        #expect(sent(a).map(\.body) == [.connectActiveResp(plci: plci), .connectB3Req(plci: plci, ncpi: [])])
        let b3 = sm.handle(Self.ind(4, .connectB3ActiveInd(ncci: ncci, ncpi: [])))
        #expect(sent(b3).map(\.body) == [.connectB3ActiveResp(ncci: ncci)], "no document blocks: the modem makes the audio")
        #expect(b3?.contains(.startSoftFax(call: 1, plci: plci, ncci: ncci)) == true)
    }

    @Test func outgoingSoftwareSuccessComesFromTheModem() throws {
        var sm = SM()
        try connectSoft(&sm)
        let a = sm.handle(Self.ind(5, .dataB3Ind(ncci: 0x10201, handle: 4, flags: 0, data: [0xAB])))
        #expect(sent(a).map(\.body) == [.dataB3Resp(ncci: 0x10201, handle: 4)])
        #expect(a?.contains(.softAudio(call: 1, data: [0xAB])) == true)
        #expect(sm.handle(Self.ind(6, .dataB3Conf(ncci: 0x10201, handle: 1, info: .noError))) == [.softAudioConfirmed(call: 1, handle: 1)])
        let session = FaxSessionInfo(bitRate: 9600, pages: 2, ecm: false, engine: .software, compression: .mr)
        let hang = sm.softFaxFinished(call: 1, .init(succeeded: true, pagesSent: 2, session: session, text: "2 pages sent"), lineGone: false)
        #expect(sent(hang).map(\.body) == [.disconnectReq(plci: 0x201, additionalInfo: [])])
        let f = try #require(finished(sm.handle(Self.ind(7, .disconnectInd(plci: 0x201, reason: CapiInfo(0x3400))))))
        #expect(f.cause == .success && f.pagesSent == 2 && f.session == session)
        #expect(f.textOverride == "2 pages sent")
    }

    @Test func outgoingSoftwareFailureIsAFaxProtocolErrorWithTheModemsWords() throws {
        var sm = SM()
        try connectSoft(&sm)
        let failure = T30Failure(kind: .trainingFailed, code: 5, text: "Training failed", bitRate: 9600)
        let session = FaxSessionInfo(pages: 0, engine: .software, failure: failure)
        let text = "remote refused the page — training failed at 9600 bit/s"
        _ = sm.softFaxFinished(call: 1, .init(succeeded: false, pagesSent: 0, session: session, text: text), lineGone: false)
        _ = sm.handle(Self.ind(6, .disconnectB3Ind(ncci: 0x10201, reasonB3: CapiInfo(0), ncpi: [])))
        // Whatever the network says about the clearing, the modem's verdict stands.
        let f = try #require(finished(sm.handle(Self.ind(7, .disconnectInd(plci: 0x201, reason: CapiInfo(0x3490))))))
        #expect(f.cause == .faxProtocolError)
        #expect(f.session.failure == failure)
        #expect(f.textOverride == text)
        #expect(f.pagesSent == 0)
    }

    @Test func firmwareSendingIsUnchanged() throws {
        var sm = SM()
        let req = try #require(sent(sm.start(call: 1, fax: Self.fax, controller: 1)).first)
        guard case .connectReq(_, _, _, _, _, _, let bp?, _, _, _, _) = req.body else { Issue.record("bad"); return }
        #expect((bp.b1, bp.b2, bp.b3) == (4, 4, 4))
    }

    // MARK: Voice → fax

    func voiceAnswer(_ dir: TemporaryDirectory) throws -> VoiceAnswer {
        VoiceAnswer(receptionID: 9, greeting: [UInt8](repeating: 0x55, count: 20_000), maxSeconds: 10, silenceSeconds: 0,
                    recording: try ReceptionSpoolFile(path: dir.path + "/\(UUID().uuidString).alaw"),
                    faxFallback: .init(stationID: "+49 1", headline: "h", fine: true, spoolPath: dir.path + "/x.sff"))
    }

    func voiceUp(_ m: inout VoiceCallStateMachine, _ a: VoiceAnswer, plci: UInt32) -> [CapiMessage] {
        _ = m.start(plci: plci, indicationNumber: 3, answer: a, goneReason: nil)
        _ = m.handle(Self.ind(4, .connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: [])))
        _ = m.handle(Self.ind(5, .connectB3Ind(ncci: plci | 1 << 16, ncpi: [])))
        return (m.handle(Self.ind(6, .connectB3ActiveInd(ncci: plci | 1 << 16, ncpi: []))) ?? [])
            .compactMap { if case .send(let m) = $0 { m } else { nil } }
    }

    @Test func voiceOnASoftwareControllerListensForCNGAndSwitchesOnTheSameChannel() throws {
        let dir = try TemporaryDirectory("softfax-voice")
        var m = VoiceCallStateMachine()
        m.softwareControllers = [1]
        let plci: UInt32 = 0x101, ncci: UInt32 = 0x10101
        let a = try voiceAnswer(dir)
        let greeting = voiceUp(&m, a, plci: plci).compactMap { msg -> UInt16? in
            if case .dataB3Req(_, let h, _, _) = msg.body { h } else { nil }
        }
        #expect(greeting.count == 7)
        let audio = m.handle(Self.ind(7, .dataB3Ind(ncci: ncci, handle: 1, flags: 0, data: [1, 2, 3]))) ?? []
        #expect(audio.contains(.detectFaxTone(plci: plci, data: [1, 2, 3])))
        _ = m.handle(Self.ind(8, .dataB3Conf(ncci: ncci, handle: greeting[0], info: .noError)))
        let sw = m.faxToneHeard(plci: plci)
        guard case .switchedToSoftFax(plci, ncci, a, let fallback, let outstanding, let next)? = sw.first, sw.count == 1 else {
            Issue.record("no switch: \(sw)"); return
        }
        #expect(fallback == a.faxFallback)
        // No SELECT_B_PROTOCOL, no DISCONNECT_B3: the transparent link carries the fax.
        #expect(!sw.contains { if case .send = $0 { true } else { false } })
        // The greeting blocks still unconfirmed occupy the window; the modem's handles come after them.
        #expect(outstanding.count == 7, "one confirmed, one more sent by the pump")
        #expect(!outstanding.contains(next))
        #expect(m.isIdle)

        var pacer = SoftFaxPacer(outstanding: outstanding, nextHandle: next)
        let first = pacer.lineBlockReceived(count: 160).flatMap { pacer.enqueue([UInt8](repeating: 0xAB, count: $0)) }
        #expect(first.isEmpty, "window still full of greeting")
        let freed = pacer.confirmed(handle: outstanding.first!)
        #expect(freed.count == 1)
        #expect(!outstanding.contains(freed[0].handle))
    }

    @Test func voiceOnAFirmwareControllerDoesNotRunOurDetector() throws {
        let dir = try TemporaryDirectory("softfax-voice")
        var m = VoiceCallStateMachine()
        m.softwareControllers = [2]
        _ = voiceUp(&m, try voiceAnswer(dir), plci: 0x101)
        let audio = m.handle(Self.ind(7, .dataB3Ind(ncci: 0x10101, handle: 1, flags: 0, data: [1, 2, 3]))) ?? []
        #expect(!audio.contains { if case .detectFaxTone = $0 { true } else { false } })
    }

    // MARK: Pacing

    @Test func pacerPrimesAheadThenMatchesTheLine() {
        var p = SoftFaxPacer()
        #expect(p.lineBlockReceived(count: 160) == [160, 160, 160, 160])
        #expect(p.lineBlockReceived(count: 240) == [240])
        #expect(p.lineBlockReceived(count: 0) == [])
    }

    @Test(arguments: [1 as UInt64, 2, 3, 4, 5])
    func pacerNeverExceedsTheWindowAndKeepsOrder(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var p = SoftFaxPacer(maxQueued: 100_000)   // nothing dropped here: the bound has its own test
        var produced: [UInt8] = []
        var sentBytes: [UInt8] = []
        var inFlight: [UInt16] = []
        var counter: UInt8 = 0
        for _ in 0..<2000 {
            var out: [SoftFaxPacer.Block] = []
            if Int.random(in: 0..<3, using: &rng) > 0 {
                let n = Int.random(in: 1...400, using: &rng)
                for size in p.lineBlockReceived(count: n) {
                    let block = (0..<size).map { _ in counter &+= 1; return counter }
                    produced += block
                    out += p.enqueue(block)
                }
            } else if !inFlight.isEmpty {
                let i = Int.random(in: 0..<inFlight.count, using: &rng)   // the controller may confirm out of order
                out += p.confirmed(handle: inFlight.remove(at: i))
            }
            for b in out {
                #expect(!inFlight.contains(b.handle), "handle in use")
                inFlight.append(b.handle)
                sentBytes += b.data
            }
            #expect(inFlight.count <= 7)
            #expect(p.unconfirmed.count == inFlight.count)
        }
        #expect(p.maxUnconfirmed == 7)
        #expect(p.dropped == 0)
        // What went out is what was produced, in order; the rest is still queued.
        #expect(sentBytes == Array(produced.prefix(sentBytes.count)))
        #expect(sentBytes.count + p.queued.reduce(0) { $0 + $1.count } == produced.count)
    }

    @Test func pacerCountsUnderrunsAndBoundsItsQueue() {
        var p = SoftFaxPacer(maxQueued: 4)
        // Primed 4 blocks; the controller confirms nothing, so produced audio waits.
        var sent = 0
        for size in p.lineBlockReceived(count: 160) { sent += p.enqueue([UInt8](repeating: 0, count: size)).count }
        #expect(sent == 4 && p.underruns == 0)
        for _ in 0..<10 {
            for size in p.lineBlockReceived(count: 160) { sent += p.enqueue([UInt8](repeating: 0, count: size)).count }
        }
        #expect(sent == 7, "never more than the window")
        #expect(p.queued.count == 4 && p.dropped == 3, "the queue is bounded")
        #expect(p.underruns > 0, "the line ran past what the controller had")
        p.lineDown()
        #expect(p.unconfirmed.isEmpty && p.queued.isEmpty)
    }

    @Test func pacerUnderTheLineClockHasNoUnderruns() {
        // A controller that confirms each block when it has played it, one block per block received.
        var p = SoftFaxPacer()
        var inFlight: [UInt16] = []
        for _ in 0..<500 {
            for size in p.lineBlockReceived(count: 160) {
                inFlight += p.enqueue([UInt8](repeating: 0, count: size)).map(\.handle)
            }
            inFlight += p.confirmed(handle: inFlight.removeFirst()).map(\.handle)
        }
        #expect(p.underruns == 0)
        #expect(p.maxUnconfirmed <= 7)
        #expect(p.lead >= 160 * 3, "the primer stays ahead of the line")
    }
}


extension SoftFaxTransportMachineTests {
    @Test func failureTextsSayWhatHappenedInWords() {
        let f = T30Failure(kind: .trainingFailed, code: 5, text: "Failed to train with any of the compatible modems", bitRate: 9600)
        #expect(SoftFaxFailureText.describe(f, sending: true, pagesDone: 1, pagesTotal: 3)
                == "remote refused the page — training failed at 9600 bit/s (1 of 3 pages sent) — Failed to train with any of the compatible modems")
        let r = T30Failure(kind: .noResponse, code: 2, text: "")
        #expect(SoftFaxFailureText.describe(r, sending: false, pagesDone: 0, pagesTotal: nil) == "the caller sent no fax signals")
    }
}
