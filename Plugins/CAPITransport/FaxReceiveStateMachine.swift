import CapiProtocol
import FaxgateCore

/// The incoming-fax protocol per PLCI/NCCI, without I/O: feed it messages and decisions, perform the
/// actions it returns in order.
public struct FaxReceiveStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Put this message (ApplID is filled in by the link).
        case send(CapiMessage)
        /// Ask the gateway what to do; answer with `decided(plci:_:)`.
        case decide(IncomingCall)
        /// Call `ringDelayElapsed(plci:)` after this delay.
        case startRingDelay(plci: UInt32, delay: Duration)
        /// Append received document bytes to the reception's spool file.
        case append(receptionID: Int64, data: [UInt8])
        /// The fax session is up.
        case connected(receptionID: Int64, info: FaxSessionInfo)
        /// The call is over: finish the spool file and report.
        case finished(FinishedCall)
        /// The gateway takes this call as voice: `VoiceCallStateMachine.start` continues it (goneReason: hung up meanwhile).
        case handOverVoice(plci: UInt32, indicationNumber: UInt16, answer: VoiceAnswer, goneReason: UInt16?)
        /// Software engine: the transparent B3 link is up; run T.30 on it (answering side).
        case startSoftFax(plci: UInt32, ncci: UInt32, answer: FaxAnswer)
        /// Software engine: audio from the line (bit-reversed A-law) for the call's modem.
        case softAudio(plci: UInt32, data: [UInt8])
        /// Software engine: the controller took a DATA_B3_REQ of the call's modem.
        case softAudioConfirmed(plci: UInt32, handle: UInt16)
    }

    public struct FinishedCall: Sendable, Equatable {
        public var receptionID: Int64
        public var answer: FaxAnswer
        public var reason: UInt16
        public var reasonB3: UInt16
        public var session: FaxSessionInfo
        /// Set when the call did not end through the protocol (controller lost, shutdown); replaces the reason text.
        public var textOverride: String?
        /// `.lineLost` when the call did not end through the protocol (see `abandonAll`).
        public var cause: CallRecord.EndCause = .cleared
    }

    enum Phase: Sendable, Equatable { case deciding, ringing, connecting, rejected, active, b3Active, b3Down, disconnecting }

    struct Call: Sendable {
        var plci: UInt32
        var indicationNumber: UInt16
        var phase: Phase
        var answer: FaxAnswer?
        var ncci: UInt32?
        var session = FaxSessionInfo()
        var reasonB3: UInt16 = 0
        /// DISCONNECT_IND came while the gateway was still deciding.
        var goneReason: UInt16?
        /// Who runs T.30 for this call (fixed when it is answered).
        var engine: FaxEngineKind = .controller
        /// Software engine: the session's outcome, once the modem finished.
        var softSession: FaxSessionInfo?
        var softText: String?
    }

    public struct Options: Sendable {
        public var answerAudioAsFax: Bool
        /// Some extension has voicemail: speech/telephony (and 3.1 kHz audio) calls go to the gateway to decide.
        public var answerVoice: Bool
        public init(answerAudioAsFax: Bool, answerVoice: Bool = false) {
            self.answerAudioAsFax = answerAudioAsFax; self.answerVoice = answerVoice
        }
    }

    public let options: Options
    /// Controllers whose calls run T.30 in our software modem (B protocols 1/1/0); the rest use 4/4/4.
    public var softwareControllers: Set<Int> = []
    private(set) var calls: [UInt32: Call] = [:]
    private var nextMessageNumber: UInt16 = 1

    public init(options: Options) { self.options = options }

    public var isIdle: Bool { calls.isEmpty }

    /// The answer of a call in progress, by reception id.
    public func answer(for receptionID: Int64) -> FaxAnswer? {
        calls.values.first { $0.answer?.receptionID == receptionID }?.answer
    }
    public var callCount: Int { calls.count }

    private mutating func number() -> UInt16 {
        defer { nextMessageNumber = nextMessageNumber == 0x7FFF ? 1 : nextMessageNumber + 1 }
        return nextMessageNumber
    }

    private func respond(_ indication: CapiMessage, _ body: CapiMessageBody) -> Action {
        .send(CapiMessage(applID: indication.applID, messageNumber: indication.messageNumber, body: body))
    }

    private mutating func request(_ body: CapiMessageBody) -> Action {
        .send(CapiMessage(applID: 0, messageNumber: number(), body: body))
    }

    static func rejectCode(_ decision: CallDecision) -> UInt16 {
        switch decision {
        case .answerFax, .answerVoice: 0
        case .ignore: 1
        case .reject(.normalClearing): 2
        case .reject(.busy): 3
        case .reject(.incompatibleDestination): 7
        case .reject(.unallocatedNumber): 0x3481
        }
    }

    // MARK: Inputs

    public mutating func handle(_ m: CapiMessage) -> [Action] {
        switch m.body {
        case .connectInd(let plci, let cip, let called, let calling, _, _, _, _, _, _):
            let service: IncomingCall.Service = switch cip {
            case 17: .fax
            case 4: .audio
            case 1, 16: .voice
            default: .other(Int(cip))
            }
            calls[plci] = Call(plci: plci, indicationNumber: m.messageNumber, phase: .deciding)
            let wanted = switch service {
            case .fax: true
            case .audio: options.answerAudioAsFax || options.answerVoice
            case .voice: options.answerVoice
            case .other: false
            }
            if !wanted {
                // Not ours to take: leave it to other devices.
                calls[plci]?.phase = .rejected
                return [respond(m, .connectResp(plci: plci, reject: 1, bProtocol: nil, connectedNumber: [],
                                                connectedSubaddress: [], llc: [], additionalInfo: []))]
            }
            let call = IncomingCall(handle: plci, controller: plci.capiController, service: service,
                                    called: PartyNumber(called), caller: calling.map(PartyNumber.init))
            return [.decide(call)]

        case .connectActiveInd(let plci, _, _, _):
            if calls[plci]?.phase == .connecting { calls[plci]?.phase = .active }
            return [respond(m, .connectActiveResp(plci: plci))]

        case .connectB3Ind(let ncci, _):
            let plci = ncci.capiPLCI
            let accept = calls[plci]?.answer != nil
            if accept { calls[plci]?.ncci = ncci }
            // Reject 2 = "normal clearing" for a B3 connection we never asked for.
            return [respond(m, .connectB3Resp(ncci: ncci, reject: accept ? 0 : 2, ncpi: []))]

        case .connectB3ActiveInd(let ncci, let ncpi):
            let plci = ncci.capiPLCI
            var actions = [respond(m, .connectB3ActiveResp(ncci: ncci))]
            if var call = calls[plci], let answer = call.answer {
                call.phase = .b3Active
                if call.engine == .software {
                    // A transparent link carries no NCPI: the modem reports the session (faxConnected at negotiation).
                    call.ncci = ncci
                    calls[plci] = call
                    actions.append(.startSoftFax(plci: plci, ncci: ncci, answer: answer))
                    return actions
                }
                call.session.merge(ncpi)
                calls[plci] = call
                actions.append(.connected(receptionID: answer.receptionID, info: call.session))
            }
            return actions

        case .dataB3Ind(let ncci, let handle, _, let data):
            var actions: [Action] = []
            if let call = calls[ncci.capiPLCI], call.engine == .software {
                // Answer first: the controller's buffer is free again while the modem works on the audio.
                actions.append(respond(m, .dataB3Resp(ncci: ncci, handle: handle)))
                if call.phase == .b3Active, !data.isEmpty { actions.append(.softAudio(plci: call.plci, data: data)) }
                return actions
            }
            if let answer = calls[ncci.capiPLCI]?.answer, !data.isEmpty {
                actions.append(.append(receptionID: answer.receptionID, data: data))
            }
            // Answer every block at once, or the controller's buffer pool runs dry.
            actions.append(respond(m, .dataB3Resp(ncci: ncci, handle: handle)))
            return actions

        case .dataB3Conf(let ncci, let handle, _):
            guard let call = calls[ncci.capiPLCI], call.engine == .software else { return [] }
            return [.softAudioConfirmed(plci: call.plci, handle: handle)]

        case .disconnectB3Ind(let ncci, let reasonB3, let ncpi):
            let plci = ncci.capiPLCI
            if var call = calls[plci] {
                call.reasonB3 = reasonB3.rawValue
                if call.engine == .controller { call.session.merge(ncpi) }
                if call.phase != .disconnecting { call.phase = .b3Down }
                calls[plci] = call
            }
            return [respond(m, .disconnectB3Resp(ncci: ncci))]

        case .disconnectInd(let plci, let reason):
            var actions = [respond(m, .disconnectResp(plci: plci))]
            if let call = calls[plci] {
                if call.phase == .deciding {
                    // Keep it until the decision arrives: the gateway may already have opened a reception.
                    calls[plci]?.goneReason = reason.rawValue
                    return actions
                }
                calls[plci] = nil
                if let answer = call.answer {
                    if call.engine == .software {
                        // The modem ran T.30: its session is the truth; a transparent link has no Reason_B3 of its own.
                        actions.append(.finished(FinishedCall(receptionID: answer.receptionID, answer: answer, reason: reason.rawValue,
                                                              reasonB3: 0, session: call.softSession ?? Self.softSessionStub,
                                                              textOverride: call.softText)))
                        return actions
                    }
                    actions.append(.finished(FinishedCall(receptionID: answer.receptionID, answer: answer, reason: reason.rawValue,
                                                          reasonB3: call.reasonB3, session: call.session, textOverride: nil)))
                }
            }
            return actions

        case .infoInd(let plci, _, _):
            return [respond(m, .infoResp(plci: plci))]

        default:
            if m.subcommand == .ind, let r = m.simpleResponse() { return [.send(r)] }
            return []
        }
    }

    public mutating func decided(plci: UInt32, _ decision: CallDecision) -> [Action] {
        if case .answerVoice(let voice) = decision {
            guard let call = calls[plci], call.phase == .deciding else {
                return [.handOverVoice(plci: plci, indicationNumber: 0, answer: voice, goneReason: 0)]
            }
            calls[plci] = nil
            return [.handOverVoice(plci: plci, indicationNumber: call.indicationNumber, answer: voice, goneReason: call.goneReason)]
        }
        guard var call = calls[plci], call.phase == .deciding else {
            if case .answerFax(let a) = decision {
                return [.finished(FinishedCall(receptionID: a.receptionID, answer: a, reason: 0, reasonB3: 0, session: FaxSessionInfo(),
                                               textOverride: "call ended before it was answered"))]
            }
            return []
        }
        if let gone = call.goneReason {
            calls[plci] = nil
            if case .answerFax(let a) = decision {
                return [.finished(FinishedCall(receptionID: a.receptionID, answer: a, reason: gone, reasonB3: 0,
                                               session: FaxSessionInfo(), textOverride: nil))]
            }
            return []
        }
        switch decision {
        case .answerFax(let answer):
            call.answer = answer
            // ALERT first: the caller hears ringing while the ring delay runs.
            var actions = [request(.alertReq(plci: plci, additionalInfo: []))]
            if answer.ringDelay > .zero {
                call.phase = .ringing
                calls[plci] = call
                actions.append(.startRingDelay(plci: plci, delay: answer.ringDelay))
            } else {
                calls[plci] = call
                actions += accept(plci)
            }
            return actions
        case .answerVoice:
            return []   // handled above
        case .reject, .ignore:
            call.phase = .rejected
            calls[plci] = call
            return [.send(CapiMessage(applID: 0, messageNumber: call.indicationNumber, body: .connectResp(
                plci: plci, reject: Self.rejectCode(decision), bProtocol: nil, connectedNumber: [], connectedSubaddress: [],
                llc: [], additionalInfo: [])))]
        }
    }

    /// A voice call switched to fax (SELECT_B_PROTOCOL_REQ 4/4/4 sent): from CONNECT_B3_IND on it is a fax reception.
    public mutating func adoptSwitchedCall(plci: UInt32, answer: FaxAnswer) {
        calls[plci] = Call(plci: plci, indicationNumber: 0, phase: .active, answer: answer)
    }

    /// A voice call on a software-engine controller heard CNG: the transparent B3 link (already 1/1/0) stays up
    /// and carries the fax from now on, no SELECT_B_PROTOCOL needed.
    public mutating func adoptSwitchedSoftCall(plci: UInt32, ncci: UInt32, answer: FaxAnswer) -> [Action] {
        calls[plci] = Call(plci: plci, indicationNumber: 0, phase: .b3Active, answer: answer, ncci: ncci, engine: .software)
        return [.startSoftFax(plci: plci, ncci: ncci, answer: answer)]
    }

    /// The software modem finished the session (or lost the line): keep its report for `finished`, and clear
    /// the call unless the line is already going (`lineGone`). `failureText` replaces the reason text.
    public mutating func softFaxFinished(plci: UInt32, session: FaxSessionInfo, failureText: String?, lineGone: Bool) -> [Action] {
        guard var call = calls[plci], call.engine == .software else { return [] }
        call.softSession = session
        call.softText = failureText
        let clear = !lineGone && call.phase != .disconnecting
        if clear { call.phase = .disconnecting }
        calls[plci] = call
        return clear ? [request(.disconnectReq(plci: plci, additionalInfo: []))] : []
    }

    /// A software call that ended before its modem reported anything (the line dropped before B3 came up).
    static let softSessionStub = FaxSessionInfo(engine: .software)

    public mutating func ringDelayElapsed(plci: UInt32) -> [Action] {
        guard calls[plci]?.phase == .ringing else { return [] }
        return accept(plci)
    }

    private mutating func accept(_ plci: UInt32) -> [Action] {
        guard var call = calls[plci], let answer = call.answer else { return [] }
        call.phase = .connecting
        call.engine = softwareControllers.contains(plci.capiController) ? .software : .controller
        calls[plci] = call
        let b3 = FaxB3Configuration(fine: answer.fine, format: 0, stationID: answer.stationID, headline: answer.headline)
        // Software engine: a transparent 64 kbit/s channel (1/1/0) carries the modem's audio; no B3 configuration.
        let bProtocol: BProtocol = call.engine == .software ? .transparentVoice : .fax(b3)
        return [.send(CapiMessage(applID: 0, messageNumber: call.indicationNumber, body: .connectResp(
            plci: plci, reject: 0, bProtocol: bProtocol, connectedNumber: [], connectedSubaddress: [], llc: [], additionalInfo: [])))]
    }

    /// Hangs up every call (shutdown deadline). Calls still deciding or ringing are rejected.
    public mutating func disconnectAll() -> [Action] {
        var actions: [Action] = []
        for (plci, call) in calls.sorted(by: { $0.key < $1.key }) {
            switch call.phase {
            case .ringing:
                calls[plci]?.phase = .rejected
                actions.append(.send(CapiMessage(applID: 0, messageNumber: call.indicationNumber, body: .connectResp(
                    plci: plci, reject: 2, bProtocol: nil, connectedNumber: [], connectedSubaddress: [], llc: [], additionalInfo: []))))
            case .connecting, .active, .b3Active, .b3Down:
                calls[plci]?.phase = .disconnecting
                actions.append(request(.disconnectReq(plci: plci, additionalInfo: [])))
            case .deciding, .rejected, .disconnecting:
                break
            }
        }
        return actions
    }

    /// The controller is gone (or we give up on it): every answered call ends now.
    public mutating func abandonAll(text: String) -> [Action] {
        let ended = calls.values.sorted { $0.plci < $1.plci }.compactMap { call -> Action? in
            guard let a = call.answer else { return nil }
            // The call did not end by a DISCONNECT_IND: never report it as a normal clearing.
            // 0x3301 = protocol error layer 1 (line or controller gone).
            return .finished(FinishedCall(receptionID: a.receptionID, answer: a, reason: call.goneReason ?? 0x3301, reasonB3: call.reasonB3,
                                          session: call.session, textOverride: text, cause: .lineLost))
        }
        // Calls still deciding get reported when their decision arrives (see `decided`).
        calls = calls.filter { $0.value.phase == .deciding }
        for plci in calls.keys { calls[plci]?.goneReason = 0x3301 }
        return ended
    }
}

extension FaxSessionInfo {
    /// Takes what a fax NCPI tells; absent values keep what was known.
    mutating func merge(_ ncpi: [UInt8]) {
        // Only calls on the controller's fax firmware come here (a transparent link has no NCPI): it ran T.30.
        engine = .controller
        guard let n = try? FaxNCPI.decode(ncpi) else { return }
        if n.rate != 0 { bitRate = Int(n.rate) }
        fine = n.fine
        pages = Int(n.pages)
        if !n.stationID.isEmpty { remoteStationID = n.stationID }
    }
}

extension PartyNumber {
    /// Q.931 octet 3 (type of number, numbering plan) and 3a (presentation) as the core's value. Types only mean
    /// international/national/subscriber in the E.164 plan (or an unknown plan, which networks send with
    /// international numbers); in a private plan they mean something else, so those numbers stay of unknown type.
    init(_ c: CallingPartyNumber) {
        let presentation: PartyNumber.Presentation = switch c.presentationIndicator {
        case 0: .allowed
        case 2: .unavailable
        default: .restricted   // 1 restricted; 3 reserved: when in doubt, withhold
        }
        self.init(digits: c.digits, type: Self.numberType(typeOfNumber: c.typeOfNumber, plan: c.numberingPlan),
                  presentation: presentation)
    }

    init(_ c: CalledPartyNumber) {
        self.init(digits: c.digits, type: Self.numberType(typeOfNumber: c.typeOfNumber, plan: c.numberingPlan))
    }

    static func numberType(typeOfNumber: UInt8, plan: UInt8) -> PartyNumber.NumberType {
        guard plan == 0 || plan == 1 else { return .unknown }
        return switch typeOfNumber {
        case 1: .international
        case 2: .national
        case 4: .subscriber
        default: .unknown
        }
    }
}
