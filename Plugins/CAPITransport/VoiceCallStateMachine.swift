import CapiProtocol
import FaxgateCore
import VoiceAudio

/// A voice call per PLCI, without I/O: answer with B protocols 1/1/0, play the greeting (which ends with the
/// beep) in DATA_B3_REQ blocks within the 7-block window, then record DATA_B3_IND until hang-up, the maximum
/// length, trailing silence or '#'. A fax tone ('X') during greeting or recording tears down B3 and selects
/// fax B protocols; the call then belongs to `FaxReceiveStateMachine`.
///
/// Lengths are counted in audio bytes, not wall time: the controller delivers 8000 bytes per second of call,
/// so a limit in bytes is a limit in seconds on a real line and stays right on a faster simulated one.
public struct VoiceCallStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        case send(CapiMessage)
        /// Call `ringDelayElapsed(plci:)` after this delay.
        case startRingDelay(plci: UInt32, delay: Duration)
        /// Call `watchdogFired(plci:)` after this delay (a line that stops delivering audio must still end).
        case startWatchdog(plci: UInt32, delay: Duration)
        /// Append recorded line bytes to the answer's recording file.
        case record(receptionID: Int64, data: [UInt8])
        /// B3 is down and fax B protocols are requested: hand the PLCI to the fax machine with this fallback.
        case switchedToFax(plci: UInt32, answer: VoiceAnswer, fallback: VoiceAnswer.FaxFallback)
        /// The call is over: finish the recording file and report.
        case finished(FinishedVoiceCall)
        /// Software-engine controller (it reports no fax tones): listen for CNG in this audio; call
        /// `faxToneHeard(plci:)` when it is there.
        case detectFaxTone(plci: UInt32, data: [UInt8])
        /// CNG on a software-engine controller: the voice part is over, the same transparent B3 link carries the
        /// fax from now on. `outstanding`: greeting DATA_B3_REQ still unconfirmed (they occupy the window).
        case switchedToSoftFax(plci: UInt32, ncci: UInt32, answer: VoiceAnswer, fallback: VoiceAnswer.FaxFallback,
                               outstanding: Set<UInt16>, nextHandle: UInt16)
    }

    public struct FinishedVoiceCall: Sendable, Equatable {
        public var answer: VoiceAnswer
        public var cause: VoiceCallEnd.Cause
        public var reason: UInt16
        public var recordedBytes: Int
        public var greetingCompleted: Bool
        public var textOverride: String?
        public var recordedSeconds: Double { Double(recordedBytes) / Double(G711.sampleRate) }
    }

    enum Phase: Sendable, Equatable { case ringing, connecting, active, greeting, recording, switching, ending, b3Down }

    struct Call: Sendable {
        var plci: UInt32
        var indicationNumber: UInt16
        var answer: VoiceAnswer
        var phase: Phase
        var ncci: UInt32?
        var greetingOffset = 0
        var unconfirmed: Set<UInt16> = []
        var nextHandle: UInt16 = 0
        var recorded = 0
        var silence = SilenceDetector()
        var cause: VoiceCallEnd.Cause?
        var greetingCompleted = false
    }

    /// Bytes per DATA_B3_REQ: 128 ms of audio, well below the 2048 registered, so 7 blocks buffer < 1 s.
    public static let blockSize = 1024
    public static let window = 7

    private(set) var calls: [UInt32: Call] = [:]
    private var nextMessageNumber: UInt16 = 0x2000
    /// Controllers whose fax runs in our software modem: they report no fax tones, so we listen for CNG ourselves.
    public var softwareControllers: Set<Int> = []

    public init() {}

    public var isIdle: Bool { calls.isEmpty }
    public var callCount: Int { calls.count }
    public var callsPerController: [Int: Int] {
        calls.keys.reduce(into: [:]) { $0[$1.capiController, default: 0] += 1 }
    }
    public func answer(for receptionID: Int64) -> VoiceAnswer? {
        calls.values.first { $0.answer.receptionID == receptionID }?.answer
    }

    public func receptionID(plci: UInt32) -> Int64? { calls[plci]?.answer.receptionID }

    private mutating func request(_ body: CapiMessageBody) -> Action {
        defer { nextMessageNumber = nextMessageNumber == 0x3FFF ? 0x2000 : nextMessageNumber + 1 }
        return .send(CapiMessage(applID: 0, messageNumber: nextMessageNumber, body: body))
    }
    private func respond(_ m: CapiMessage, _ body: CapiMessageBody) -> Action {
        .send(CapiMessage(applID: m.applID, messageNumber: m.messageNumber, body: body))
    }

    // MARK: Inputs

    /// The gateway decided to take the call as voice. `goneReason` is set when the caller hung up meanwhile.
    public mutating func start(plci: UInt32, indicationNumber: UInt16, answer: VoiceAnswer, goneReason: UInt16?) -> [Action] {
        if let gone = goneReason {
            return [.finished(FinishedVoiceCall(answer: answer, cause: .hangUp, reason: gone, recordedBytes: 0,
                                                greetingCompleted: false, textOverride: gone == 0 ? "call ended before it was answered" : nil))]
        }
        calls[plci] = Call(plci: plci, indicationNumber: indicationNumber, answer: answer, phase: .ringing)
        // ALERT first: the caller hears ringing while the ring delay runs.
        var actions = [request(.alertReq(plci: plci, additionalInfo: []))]
        if answer.ringDelay > .zero {
            actions.append(.startRingDelay(plci: plci, delay: answer.ringDelay))
        } else {
            actions += accept(plci)
        }
        return actions
    }

    public mutating func ringDelayElapsed(plci: UInt32) -> [Action] {
        guard calls[plci]?.phase == .ringing else { return [] }
        return accept(plci)
    }

    private mutating func accept(_ plci: UInt32) -> [Action] {
        guard let call = calls[plci] else { return [] }
        calls[plci]?.phase = .connecting
        return [.send(CapiMessage(applID: 0, messageNumber: call.indicationNumber, body: .connectResp(
            plci: plci, reject: 0, bProtocol: .transparentVoice, connectedNumber: [], connectedSubaddress: [], llc: [],
            additionalInfo: [])))]
    }

    /// Handles a message for one of our calls; nil when the message is not about a voice call.
    public mutating func handle(_ m: CapiMessage) -> [Action]? {
        guard let address = m.address, var call = calls[address.capiPLCI] else { return nil }
        let plci = call.plci
        switch m.body {
        case .connectActiveInd:
            if call.phase == .connecting { calls[plci]?.phase = .active }
            return [respond(m, .connectActiveResp(plci: plci))]

        case .connectB3Ind(let ncci, _):
            calls[plci]?.ncci = ncci
            return [respond(m, .connectB3Resp(ncci: ncci, reject: 0, ncpi: []))]

        case .connectB3ActiveInd(let ncci, _):
            call.ncci = ncci
            var actions = [respond(m, .connectB3ActiveResp(ncci: ncci))]
            guard call.phase == .active || call.phase == .connecting else { calls[plci] = call; return actions }
            // Listen for DTMF (and the fax tones the controller reports as 'X'/'Y') from the first moment.
            actions.append(request(CapiFacility.dtmfRequest(address: plci, function: 1)))
            let greetingSeconds = Double(call.answer.greeting.count) / Double(G711.sampleRate)
            actions.append(.startWatchdog(plci: plci, delay: .seconds(greetingSeconds + call.answer.maxSeconds + 30)))
            call.phase = .greeting
            calls[plci] = call
            actions += pump(plci)
            return actions

        case .dataB3Conf(_, let handle, _):
            calls[plci]?.unconfirmed.remove(handle)
            return pump(plci)

        case .dataB3Ind(let ncci, let handle, _, let data):
            var actions: [Action] = []
            if call.phase == .recording {
                let maxBytes = Int(call.answer.maxSeconds * Double(G711.sampleRate))
                let take = Array(data.prefix(max(0, maxBytes - call.recorded)))
                if !take.isEmpty {
                    actions.append(.record(receptionID: call.answer.receptionID, data: take))
                    call.recorded += take.count
                    call.silence.feed(line: take)
                }
                calls[plci] = call
                if call.recorded >= maxBytes {
                    actions += end(plci, .maxLength)
                } else if call.answer.silenceSeconds > 0 && call.silence.trailingSilence >= call.answer.silenceSeconds {
                    actions += end(plci, .silence)
                }
            }
            if softwareControllers.contains(plci.capiController), call.answer.faxFallback != nil, !data.isEmpty,
               let phase = calls[plci]?.phase, phase == .greeting || phase == .recording {
                actions.append(.detectFaxTone(plci: plci, data: data))
            }
            // Answer every block at once, or the controller's buffer pool runs dry.
            actions.insert(respond(m, .dataB3Resp(ncci: ncci, handle: handle)), at: 0)
            return actions

        case .other(.facility, .ind, _):
            guard let f = CapiFacility(m) else { return [] }
            var actions = [respond(m, CapiFacility.response(address: f.address, selector: f.selector))]
            for c in f.dtmfCharacters {
                guard let phase = calls[plci]?.phase else { break }
                if c == "X", phase == .greeting || phase == .recording, call.answer.faxFallback != nil, let ncci = call.ncci {
                    // CNG: a fax machine is calling. Drop the voice B3 link; fax protocols follow at DISCONNECT_B3_IND.
                    calls[plci]?.phase = .switching
                    actions.append(request(.disconnectB3Req(ncci: ncci, ncpi: [])))
                    break
                }
                if c == "#", phase == .recording {
                    actions += end(plci, .dtmfHash)
                    break
                }
            }
            return actions

        case .disconnectB3Ind(let ncci, _, _):
            var actions = [respond(m, .disconnectB3Resp(ncci: ncci))]
            if call.phase == .switching, let fallback = call.answer.faxFallback {
                calls[plci] = nil
                let b3 = FaxB3Configuration(fine: fallback.fine, format: 0, stationID: fallback.stationID, headline: fallback.headline)
                actions.append(request(CapiSelectBProtocol.request(plci: plci, .fax(b3))))
                actions.append(.switchedToFax(plci: plci, answer: call.answer, fallback: fallback))
                return actions
            }
            if call.cause == nil { call.cause = .hangUp }
            if call.phase != .ending { call.phase = .b3Down }
            call.unconfirmed.removeAll()   // no DATA_B3_CONF arrives after DISCONNECT_B3_IND
            calls[plci] = call
            return actions

        case .disconnectInd(_, let reason):
            calls[plci] = nil
            return [respond(m, .disconnectResp(plci: plci)),
                    .finished(FinishedVoiceCall(answer: call.answer, cause: call.cause ?? .hangUp, reason: reason.rawValue,
                                                recordedBytes: call.recorded, greetingCompleted: call.greetingCompleted))]

        case .infoInd:
            return [respond(m, .infoResp(plci: plci))]

        default:
            // Confirmations (ALERT, FACILITY, DISCONNECT …) need no answer; other indications get their simple one.
            if m.subcommand == .ind, let r = m.simpleResponse() { return [.send(r)] }
            return []
        }
    }

    /// Our own tone detector heard CNG (software-engine controller): stop greeting and recording; the B-channel
    /// is already transparent (1/1/0), so the fax modem takes over the same B3 link without SELECT_B_PROTOCOL.
    public mutating func faxToneHeard(plci: UInt32) -> [Action] {
        guard let call = calls[plci], call.phase == .greeting || call.phase == .recording,
              let fallback = call.answer.faxFallback, let ncci = call.ncci else { return [] }
        calls[plci] = nil
        return [.switchedToSoftFax(plci: plci, ncci: ncci, answer: call.answer, fallback: fallback,
                                   outstanding: call.unconfirmed, nextHandle: call.nextHandle &+ 1)]
    }

    /// Sends greeting blocks while the window has room; starts recording once the last one is confirmed (played).
    private mutating func pump(_ plci: UInt32) -> [Action] {
        guard var call = calls[plci], call.phase == .greeting, let ncci = call.ncci else { return [] }
        var actions: [Action] = []
        let greeting = call.answer.greeting
        while call.unconfirmed.count < Self.window && call.greetingOffset < greeting.count {
            let end = min(call.greetingOffset + Self.blockSize, greeting.count)
            call.nextHandle &+= 1
            call.unconfirmed.insert(call.nextHandle)
            actions.append(request(.dataB3Req(ncci: ncci, handle: call.nextHandle, flags: 0,
                                              data: Array(greeting[call.greetingOffset..<end]))))
            call.greetingOffset = end
        }
        if call.greetingOffset >= greeting.count && call.unconfirmed.isEmpty {
            call.greetingCompleted = true
            call.phase = .recording
        }
        calls[plci] = call
        return actions
    }

    private mutating func end(_ plci: UInt32, _ cause: VoiceCallEnd.Cause) -> [Action] {
        guard let call = calls[plci], call.phase != .ending else { return [] }
        calls[plci]?.cause = cause
        calls[plci]?.phase = .ending
        // DISCONNECT_REQ clears B3 too; the controller answers with DISCONNECT_B3_IND and DISCONNECT_IND.
        return [request(.disconnectReq(plci: plci, additionalInfo: []))]
    }

    /// Wall-time limit reached (the line stopped delivering audio): end as if the maximum length was reached.
    public mutating func watchdogFired(plci: UInt32) -> [Action] {
        guard let call = calls[plci], call.phase == .greeting || call.phase == .recording else { return [] }
        return end(plci, .maxLength)
    }

    /// Hangs up every call (shutdown deadline).
    public mutating func disconnectAll() -> [Action] {
        var actions: [Action] = []
        for (plci, call) in calls.sorted(by: { $0.key < $1.key }) {
            switch call.phase {
            case .ringing:
                calls[plci]?.phase = .ending
                calls[plci]?.cause = .interrupted
                actions.append(.send(CapiMessage(applID: 0, messageNumber: call.indicationNumber, body: .connectResp(
                    plci: plci, reject: 2, bProtocol: nil, connectedNumber: [], connectedSubaddress: [], llc: [], additionalInfo: []))))
            case .ending:
                break
            default:
                actions += end(plci, call.cause ?? .interrupted)
            }
        }
        return actions
    }

    /// The controller is gone: every call ends now. 0x3301 = protocol error layer 1.
    public mutating func abandonAll(text: String) -> [Action] {
        let ended = calls.values.sorted { $0.plci < $1.plci }.map { call -> Action in
            .finished(FinishedVoiceCall(answer: call.answer, cause: .interrupted, reason: 0x3301, recordedBytes: call.recorded,
                                        greetingCompleted: call.greetingCompleted, textOverride: text))
        }
        calls.removeAll()
        return ended
    }
}
