import CapiProtocol
import FaxDocument
import Foundation

/// An incoming voice call: the caller listens to what the gateway plays, speaks once the greeting is over,
/// presses keys (or sends a fax tone) at chosen moments and hangs up when told.
///
/// Time is call time: seconds of line audio since the B3 connection came up. With `speed` > 1 the simulated
/// line runs faster than real time (both directions: what we send and how fast we confirm what is played),
/// so a gateway that measures in audio bytes sees the same call, only sooner.
public struct SimulatedVoiceCall: Sendable {
    public var controller: Int
    public var callingNumber: String
    public var callingNumberRestricted: Bool
    public var calledNumber: String
    /// 1 speech, 4 3.1 kHz audio, 16 telephony.
    public var cip: UInt16
    /// Line bytes (bit-reversed A-law) spoken after the greeting.
    public var speech: [UInt8]
    /// Line silence after the speech, then hang up (unless the gateway ends the call first).
    public var silenceAfterSpeech: Double
    /// Hang up at this call time no matter what (e.g. during the greeting).
    public var hangUpAt: Double?
    /// DTMF characters ('0'-'9', '*', '#', 'X' = CNG fax tone) sent as FACILITY_IND at these call times.
    public var dtmf: [DTMF]
    public var speed: Double
    /// The fax sent when the gateway switches to fax protocols.
    public var faxAfterSwitch: SimulatedFaxCall?
    public var responseTimeout: Duration
    /// Safety limit in call time.
    public var maxCallSeconds: Double
    /// Calling party number octet 3 (type of number, numbering plan) in CONNECT_IND: 0x00 unknown, 0x11 international,
    /// 0x21 national, 0x41 subscriber (ISDN plan). Unknown by default: the digits are shown as given.
    public var callingTypeAndPlan: UInt8 = 0x00
    /// Octet 3a (presentation, screening): nil = 0x80 (allowed) or 0xA0 (restricted) from `callingNumberRestricted`;
    /// 0xC0 = not available.
    public var callingPresentation: UInt8? = nil
    /// Called party number octet 3 (0x80 unknown, 0xC1 subscriber, 0xA1 national).
    public var calledTypeAndPlan: UInt8 = 0x80
    /// The caller is a fax machine on a transparent line (software mode): it sends CNG at once and these pages
    /// as soon as the gateway's own fax engine answers on the same B-channel. Speech, DTMF and `faxAfterSwitch`
    /// are ignored; the outcome is in `SimulatedVoiceCallResult.softFax`. Same as `placeSoftFaxCall(.voiceCall(…))`.
    public var softFaxCaller: SoftFaxCaller? = nil

    public struct SoftFaxCaller: Sendable {
        public var pages: [FaxPage]
        public var remote: SoftFaxRemote
        public init(pages: [FaxPage], remote: SoftFaxRemote = SoftFaxRemote()) { self.pages = pages; self.remote = remote }
    }

    public struct DTMF: Sendable, Equatable {
        public var at: Double
        public var characters: String
        public init(at: Double, _ characters: String) { self.at = at; self.characters = characters }
    }

    public init(controller: Int = 1, from callingNumber: String, to calledNumber: String, callingNumberRestricted: Bool = false,
                cip: UInt16 = 1, speech: [UInt8] = [], silenceAfterSpeech: Double = 0, hangUpAt: Double? = nil, dtmf: [DTMF] = [],
                speed: Double = 1, faxAfterSwitch: SimulatedFaxCall? = nil, responseTimeout: Duration = .seconds(15),
                maxCallSeconds: Double = 120) {
        self.controller = controller; self.callingNumber = callingNumber; self.calledNumber = calledNumber
        self.callingNumberRestricted = callingNumberRestricted; self.cip = cip; self.speech = speech
        self.silenceAfterSpeech = silenceAfterSpeech; self.hangUpAt = hangUpAt; self.dtmf = dtmf; self.speed = max(0.1, speed)
        self.faxAfterSwitch = faxAfterSwitch; self.responseTimeout = responseTimeout; self.maxCallSeconds = maxCallSeconds
    }
}

public struct SimulatedVoiceCallResult: Sendable {
    public enum EndedBy: Sendable, Equatable { case caller, gateway, switchedToFax, rejected }
    public var plci: UInt32
    public var alerted = false
    public var rejectCode: UInt16 = 0
    public var bProtocol: BProtocol?
    /// Everything the gateway played (DATA_B3_REQ payloads, line format), in order.
    public var played: [UInt8] = []
    /// Call time at which the gateway's playing stopped (greeting + beep over); nil if it never did.
    public var greetingEndedAt: Double?
    /// Everything we sent after the greeting ended (line format): what a recording should contain.
    public var sentAfterGreeting: [UInt8] = []
    public var sentTotal = 0
    public var dtmfListening = false
    public var endedBy: EndedBy = .caller
    public var endedAt: Double = 0
    /// SELECT_B_PROTOCOL_REQ after the switch.
    public var selectedBProtocol: BProtocol?
    /// Transparent profile: the Info a SELECT_B_PROTOCOL_REQ was refused with (0x3001 for firmware fax).
    public var refusedSelectBProtocol: UInt16?
    public var fax: SimulatedCallResult?
    /// `softFaxCaller`: the whole call as the fax machine saw it (`played` holds the same gateway audio).
    public var softFax: SoftFaxCallResult?
}

extension CapiSimulator {
    public func placeVoiceCall(_ call: SimulatedVoiceCall) async throws -> SimulatedVoiceCallResult {
        if let caller = call.softFaxCaller { return try await placeSoftFaxVoiceCall(call, caller) }
        let t = call.responseTimeout
        let offer = try await offerCall(
            controller: call.controller, cip: call.cip, calledNumber: call.calledNumber, callingNumber: call.callingNumber,
            restricted: call.callingNumberRestricted, bc: [0x80, 0x90, 0xA3], hlc: [0x91, 0x81], timeout: t,
            callingTypeAndPlan: call.callingTypeAndPlan, callingPresentation: call.callingPresentation,
            calledTypeAndPlan: call.calledTypeAndPlan)
        let (listen, plci) = (offer.listen, offer.plci)
        let ncci = plci | 1 << 16
        var result = SimulatedVoiceCallResult(plci: plci)
        result.alerted = offer.alerted
        result.rejectCode = offer.rejectCode
        result.bProtocol = offer.bProtocol
        if offer.rejectCode != 0 {
            result.endedBy = .rejected
            return result
        }
        try await step(listen, .connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: []),
                       "CONNECT_ACTIVE_RESP", t) { if case .connectActiveResp(plci) = $0 { true } else { false } }
        try await step(listen, .connectB3Ind(ncci: ncci, ncpi: []), "CONNECT_B3_RESP", t) {
            if case .connectB3Resp(ncci, _, _) = $0 { true } else { false }
        }
        var scan = cursor
        indicate(listen, .connectB3ActiveInd(ncci: ncci, ncpi: []))

        // The line clock: one tick = 40 ms of audio in each direction.
        let tickBytes = 320
        let tickSeconds = Double(tickBytes) / 8000
        let start = ContinuousClock.now
        var tick = 0
        var playQueue: [(handle: UInt16, remaining: Int)] = []
        var sawPlay = false
        var emptyTicks = 0
        var speechOffset = 0
        var silenceSent = 0
        var handle: UInt16 = 0
        var unanswered = 0
        var pendingDTMF = call.dtmf.sorted { $0.at < $1.at }
        var b3Up = true

        func hangUp(_ by: SimulatedVoiceCallResult.EndedBy, reason: UInt16) async throws {
            let s = cursor
            if b3Up { indicate(listen, .disconnectB3Ind(ncci: ncci, reasonB3: .noError, ncpi: [])) }
            indicate(listen, .disconnectInd(plci: plci, reason: CapiInfo(reason)))
            _ = try await expectWithin("DISCONNECT_RESP", listen, since: s, timeout: t) { m in
                if case .disconnectResp(plci) = m.body { true } else { false }
            }
            result.endedBy = by
        }

        while true {
            let now = Double(tick) * tickSeconds
            result.endedAt = now
            // 1. What the gateway sent since the last tick.
            let (news, end) = state.withLock { s -> ([CapiMessage], Int) in
                let slice = s.messages[min(scan, s.messages.count)...]
                    .filter { $0.connection == listen.connection.id && $0.direction == .fromGateway }.compactMap(\.message)
                return (slice, s.messages.count)
            }
            scan = end
            var gatewayHungUp = false
            var switchRequested: BProtocol?? = nil
            for m in news {
                switch m.body {
                case .dataB3Req(ncci, let h, _, let data):
                    result.played += data
                    playQueue.append((h, data.count))
                    sawPlay = true
                case .dataB3Resp(ncci, _):
                    unanswered -= 1
                case .disconnectB3Req(ncci, _):
                    b3Up = false
                    indicate(listen, .disconnectB3Ind(ncci: ncci, reasonB3: .noError, ncpi: []))
                case .disconnectReq(plci, _):
                    gatewayHungUp = true
                case .other(.facility, .req, _):
                    if let f = CapiFacility(m) {
                        if f.dtmfFunction == 1 { result.dtmfListening = true }
                        reply(listen.connection, to: m, CapiFacility.confirmation(address: f.address, info: 0, selector: f.selector))
                    }
                case .other(.selectBProtocol, .req, _):
                    let requested = CapiSelectBProtocol.decodeRequest(m)?.bProtocol
                    // A transparent-only controller refuses firmware fax (0x3001): the call stays on voice.
                    let info = refusal(for: requested)
                    reply(listen.connection, to: m, CapiSelectBProtocol.confirmation(plci: plci, info: info))
                    if info == 0 { switchRequested = .some(requested) } else { result.refusedSelectBProtocol = info }
                default: break
                }
            }
            if gatewayHungUp {
                try await hangUp(.gateway, reason: 0x3400)
                return result
            }
            if let selected = switchRequested {
                result.selectedBProtocol = selected
                result.endedBy = .switchedToFax
                guard let fax = call.faxAfterSwitch else {
                    try await hangUp(.caller, reason: 0x3490)
                    return result
                }
                var faxResult = SimulatedCallResult(plci: plci, alerted: result.alerted, rejectCode: 0, bProtocol: selected,
                                                    bytesSent: 0, blocksSent: 0, reasonB3: nil, reason: nil, connectionDropped: false)
                try await runFaxB3(listen, plci: plci, ncci: ncci, call: fax, result: &faxResult)
                result.fax = faxResult
                return result
            }
            // 2. Play out one tick of what the gateway sent; confirm blocks that are fully played.
            var budget = tickBytes
            while budget > 0, !playQueue.isEmpty {
                let used = min(budget, playQueue[0].remaining)
                playQueue[0].remaining -= used
                budget -= used
                if playQueue[0].remaining == 0 {
                    let h = playQueue.removeFirst().handle
                    indicate(listen, .dataB3Conf(ncci: ncci, handle: h, info: .noError))
                }
            }
            if result.greetingEndedAt == nil && sawPlay {
                emptyTicks = playQueue.isEmpty ? emptyTicks + 1 : 0
                if emptyTicks >= 2 { result.greetingEndedAt = now }
            }
            // 3. Caller's events.
            if let h = call.hangUpAt, now >= h {
                try await hangUp(.caller, reason: 0x3490)
                return result
            }
            while let d = pendingDTMF.first, d.at <= now {
                pendingDTMF.removeFirst()
                indicate(listen, CapiFacility.dtmfIndication(address: plci, characters: d.characters))
            }
            // 4. One tick of what the caller says: silence while listening, then the speech, then silence.
            if b3Up && unanswered < 7 {
                var block: [UInt8]
                if result.greetingEndedAt != nil && speechOffset < call.speech.count {
                    let e = min(speechOffset + tickBytes, call.speech.count)
                    block = Array(call.speech[speechOffset..<e])
                    speechOffset = e
                } else {
                    block = [UInt8](repeating: 0xAB, count: tickBytes)
                    if result.greetingEndedAt != nil { silenceSent += tickBytes }
                }
                if result.greetingEndedAt != nil { result.sentAfterGreeting += block }
                handle &+= 1
                unanswered += 1
                indicate(listen, .dataB3Ind(ncci: ncci, handle: handle, flags: 0, data: block))
                result.sentTotal += block.count
            }
            if result.greetingEndedAt != nil && speechOffset >= call.speech.count
                && Double(silenceSent) / 8000 >= call.silenceAfterSpeech && call.hangUpAt == nil {
                try await hangUp(.caller, reason: 0x3490)
                return result
            }
            if now > call.maxCallSeconds {
                try await hangUp(.caller, reason: 0x3490)
                return result
            }
            tick += 1
            let next = start + .nanoseconds(Int64(Double(tick) * tickSeconds / call.speed * 1e9))
            try await Task.sleep(until: next, clock: .continuous)
        }
    }
}

extension CapiSimulator {
    /// A voice call whose caller is a software fax machine: runs as a soft-fax call with the voice bearer.
    func placeSoftFaxVoiceCall(_ call: SimulatedVoiceCall, _ caller: SimulatedVoiceCall.SoftFaxCaller) async throws -> SimulatedVoiceCallResult {
        var remote = caller.remote
        remote.recordGatewayAudio = true
        remote.responseTimeout = call.responseTimeout
        var soft = SimulatedSoftFaxCall(controller: call.controller, from: call.callingNumber, to: call.calledNumber, pages: caller.pages,
                                        callingNumberRestricted: call.callingNumberRestricted, cip: call.cip, remote: remote)
        soft.callingTypeAndPlan = call.callingTypeAndPlan
        soft.callingPresentation = call.callingPresentation
        soft.calledTypeAndPlan = call.calledTypeAndPlan
        let r = try await placeSoftFaxCall(soft)
        var result = SimulatedVoiceCallResult(plci: r.plci)
        result.alerted = r.alerted
        result.rejectCode = r.rejectCode
        result.bProtocol = r.bProtocol
        result.softFax = r
        result.played = r.session?.gatewayAudio ?? []
        result.sentTotal = (r.session?.indicationsSent ?? 0) * remote.blockSize
        result.endedAt = r.session?.lineSeconds ?? 0
        result.refusedSelectBProtocol = r.session?.selectBProtocolInfo.first { $0 != 0 }
        result.selectedBProtocol = r.session?.selectBProtocol.last ?? nil
        result.endedBy = !r.accepted ? .rejected : r.session?.endedBy == .gateway ? .gateway : .caller
        return result
    }
}
