import CapiProtocol
import FaxgateCore
import Foundation

/// The outgoing-fax protocol for every call this application places, without I/O: start calls, feed it
/// messages and timer events, perform the actions it returns in order.
///
/// CONNECT_REQ → CONNECT_CONF (PLCI) → INFO_IND ALERTING → CONNECT_ACTIVE_IND → CONNECT_B3_REQ →
/// CONNECT_B3_ACTIVE_IND → DATA_B3_REQ (≤ 2048 bytes, ≤ 7 unconfirmed) → DISCONNECT_B3_REQ after the last
/// DATA_B3_CONF → DISCONNECT_B3_IND → DISCONNECT_REQ → DISCONNECT_IND.
public struct FaxSendStateMachine: Sendable {
    public enum Action: Sendable, Equatable {
        /// Put this message (ApplID is filled in by the link).
        case send(CapiMessage)
        /// Call `answerTimerFired(call:token:)` after this delay (a newer timer for the call replaces it).
        case startAnswerTimer(call: Int, token: Int, delay: Duration)
        /// The call is over; `FinishedSend` has everything for the outcome except the reason texts.
        case finished(FinishedSend)
        /// Software engine: the transparent B3 link is up; run T.30 on it (calling side) with the job's pages.
        case startSoftFax(call: Int, plci: UInt32, ncci: UInt32)
        /// Software engine: audio from the line (bit-reversed A-law) for the call's modem.
        case softAudio(call: Int, data: [UInt8])
        /// Software engine: the controller took a DATA_B3_REQ of the call's modem.
        case softAudioConfirmed(call: Int, handle: UInt16)
    }

    /// What the software modem reported at the end of a call it ran.
    public struct SoftFaxEnd: Sendable, Equatable {
        /// T.30 ended normally and every page of the document was confirmed.
        public var succeeded: Bool
        public var pagesSent: Int
        public var session: FaxSessionInfo
        /// What happened, in words (used as the outcome's text).
        public var text: String
        public init(succeeded: Bool, pagesSent: Int, session: FaxSessionInfo, text: String) {
            self.succeeded = succeeded; self.pagesSent = pagesSent; self.session = session; self.text = text
        }
    }

    public struct FinishedSend: Sendable, Equatable {
        public var call: Int
        public var jobID: Int64
        public var cause: SendOutcome.Cause
        public var reason: UInt16
        public var reasonB3: UInt16
        /// CONNECT_CONF / CONNECT_B3_CONF / DATA_B3_CONF info that stopped the call, if any.
        public var info: UInt16?
        /// What happened, in words, before the CAPI reason texts (e.g. "no answer within 30 s").
        public var context: String
        /// Replaces the reason texts entirely (controller lost, shutdown).
        public var textOverride: String?
        public var session: FaxSessionInfo
        public var pagesSent: Int
        public var dialedAt: Date
        public var connectedAt: Date?
        public var endedAt: Date
    }

    public struct Options: Sendable {
        /// Largest DATA_B3_REQ payload (the maxBDataLen registered).
        public var blockSize: Int
        /// Most DATA_B3_REQ without DATA_B3_CONF (the maxBDataBlocks registered).
        public var window: Int
        public init(blockSize: Int = 2048, window: Int = 7) {
            self.blockSize = max(1, min(blockSize, 2048)); self.window = max(1, window)
        }
    }

    enum Phase: Sendable, Equatable {
        case dialing, alerting, connected, b3Connecting, b3Active, b3Disconnecting, disconnecting
    }

    struct Call: Sendable {
        var id: Int
        var fax: OutgoingFax
        var controller: Int
        var connectRequestNumber: UInt16
        var plci: UInt32?
        var ncci: UInt32?
        var phase: Phase = .dialing
        var timerToken = 0
        /// Bytes of the document handed to DATA_B3_REQ so far.
        var offset = 0
        var outstanding: [UInt16: Int] = [:]   // handle → payload length
        var nextHandle: UInt16 = 1
        var confirmedBytes = 0
        var maxOutstanding = 0
        var session = FaxSessionInfo()
        var reason: UInt16 = 0
        var reasonB3: UInt16 = 0
        var b3Ended = false
        /// Set when we end the call ourselves (timeout, refused data, shutdown): overrides the network's reason.
        var ownEnd: (cause: SendOutcome.Cause, context: String, info: UInt16?, override: String?)?
        var dialedAt: Date
        var connectedAt: Date?
        /// Who runs T.30 for this call.
        var engine: FaxEngineKind = .controller
        var softEnd: SoftFaxEnd?
    }

    public let options: Options
    private(set) var calls: [Int: Call] = [:]
    private var nextMessageNumber: UInt16 = 0x8000

    public init(options: Options = Options()) { self.options = options }

    public var isIdle: Bool { calls.isEmpty }
    public var callCount: Int { calls.count }
    /// Calls in progress per controller (each holds a B-channel or is about to).
    public var callsPerController: [Int: Int] { calls.values.reduce(into: [:]) { $0[$1.controller, default: 0] += 1 } }
    /// The job a call is sending (the software modem reads its options).
    public func fax(call: Int) -> OutgoingFax? { calls[call]?.fax }
    /// Highest number of unconfirmed DATA_B3_REQ a call had (for tests and logs).
    public func maxOutstanding(call: Int) -> Int? { calls[call]?.maxOutstanding }

    /// Request numbers from the upper half: the receive side and LISTEN use the lower half.
    private mutating func number() -> UInt16 {
        defer { nextMessageNumber = nextMessageNumber == 0xFFFE ? 0x8000 : nextMessageNumber + 1 }
        return nextMessageNumber
    }
    private mutating func request(_ body: CapiMessageBody) -> Action {
        .send(CapiMessage(applID: 0, messageNumber: number(), body: body))
    }
    private func respond(_ indication: CapiMessage, _ body: CapiMessageBody) -> Action {
        .send(CapiMessage(applID: indication.applID, messageNumber: indication.messageNumber, body: body))
    }

    // MARK: Inputs

    /// Dials. `call` is the caller's id for this attempt, unique while it lasts.
    /// `engine`: `.software` connects a transparent channel (B protocols 1/1/0) for our modem instead of 4/4/4.
    public mutating func start(call id: Int, fax: OutgoingFax, controller: Int, now: Date = Date(),
                               engine: FaxEngineKind = .controller) -> [Action] {
        let number = number()
        var call = Call(id: id, fax: fax, controller: controller, connectRequestNumber: number, dialedAt: now, engine: engine)
        // The last check before the line: the called party number goes out as exactly these bytes, so they must
        // be ASCII digits (DialString promises it; a transport does not rely on a promise it cannot see).
        guard !fax.sff.isEmpty, let called = Self.calledPartyNumber(fax.dialString.digits) else {
            call.ownEnd = (.localError, fax.sff.isEmpty ? "empty document" : "the dial string is not ASCII digits; nothing dialled", nil, nil)
            return [.finished(finish(call, now: now))]
        }
        calls[id] = call
        // Calling number: type 0x00 (unknown) + presentation allowed (0x80) or restricted (0xA0, CLIR).
        let calling = CallingPartyNumber(typeAndPlan: 0x00, presentation: fax.restrictCallingNumber ? 0xA0 : 0x80,
                                         digits: fax.callingNumber ?? "")
        return [.send(CapiMessage(applID: 0, messageNumber: number, body: .connectReq(
            controller: UInt32(controller), cip: 17, called: called,
            calling: calling, calledSubaddress: [], callingSubaddress: [], bProtocol: Self.bProtocol(for: fax, engine: engine), bc: [], llc: [], hlc: [],
            additionalInfo: [])))]
    }

    /// B protocols for a call: the controller's T.30 (4/4/4 with our station id and headline) or a transparent
    /// channel for the software modem (1/1/0, no B3 configuration).
    static func bProtocol(for fax: OutgoingFax, engine: FaxEngineKind) -> BProtocol {
        switch engine {
        case .controller: .fax(FaxB3Configuration(fine: fax.fine, format: 0, stationID: fax.stationID, headline: fax.headline))
        case .software: .transparentVoice
        }
    }

    /// The called party number for CONNECT_REQ (type/plan 0x80: unknown, ISDN plan), or nil unless `digits`
    /// is 1…30 bytes of ASCII `0`–`9`. Checked on the bytes that go into the message.
    public static func calledPartyNumber(_ digits: String) -> CalledPartyNumber? {
        let bytes = Array(digits.utf8)
        guard (1...DialString.maxLength).contains(bytes.count), bytes.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        let number = CalledPartyNumber(typeAndPlan: 0x80, digits: digits)
        guard number.encoded().dropFirst().elementsEqual(bytes) else { return nil }
        return number
    }

    /// The call (if any) a message belongs to: CONNECT_CONF by message number, the rest by PLCI.
    public func owns(_ m: CapiMessage) -> Bool { callID(for: m) != nil }

    private func callID(for m: CapiMessage) -> Int? {
        if case .connectConf = m.body {
            return calls.values.first { $0.plci == nil && $0.connectRequestNumber == m.messageNumber }?.id
        }
        guard let address = m.address, address & 0xFF00 != 0 else { return nil }
        let plci = address.capiPLCI
        return calls.values.first { $0.plci == plci }?.id
    }

    /// Handles a message for one of our calls; nil when it is not ours (hand it to the receive side).
    public mutating func handle(_ m: CapiMessage, now: Date = Date()) -> [Action]? {
        guard let id = callID(for: m), var call = calls[id] else { return nil }
        var actions: [Action] = []
        switch m.body {
        case .connectConf(let plci, let info):
            if info != .noError {
                calls[id] = nil
                // Out of PLCI / busy controller is transient; anything else means our request was bad.
                let transient: Set<UInt16> = [0x2003, 0x1103, 0x1107, 0x1108]
                call.ownEnd = (transient.contains(info.rawValue) ? .networkFailure : .localError, "CONNECT_REQ refused", info.rawValue, nil)
                return [.finished(finish(call, now: now))]
            }
            call.plci = plci
            call.phase = .alerting
            call.timerToken += 1
            calls[id] = call
            if call.ownEnd != nil { return disconnect(id) }   // shutdown came while dialling
            // Bounds the dialling too, in case the network never signals ALERTING; restarted at ALERTING.
            return [.startAnswerTimer(call: id, token: call.timerToken, delay: call.fax.answerTimeout)]

        case .infoInd(let plci, let infoNumber, _):
            actions.append(respond(m, .infoResp(plci: plci)))
            if infoNumber == 0x8001 && call.phase == .alerting {
                call.timerToken += 1
                calls[id] = call
                actions.append(.startAnswerTimer(call: id, token: call.timerToken, delay: call.fax.answerTimeout))
            }
            return actions

        case .connectActiveInd(let plci, _, _, _):
            actions.append(respond(m, .connectActiveResp(plci: plci)))
            call.timerToken += 1   // answered: the pending timer is void
            call.connectedAt = call.connectedAt ?? now
            if call.phase == .alerting || call.phase == .dialing {
                call.phase = .b3Connecting
                actions.append(request(.connectB3Req(plci: plci, ncpi: [])))
            }
            calls[id] = call
            return actions

        case .connectB3Conf(let ncci, let info):
            if info != .noError {
                call.ownEnd = call.ownEnd ?? (.localError, "CONNECT_B3_REQ refused", info.rawValue, nil)
                calls[id] = call
                return disconnect(id)
            }
            call.ncci = ncci
            calls[id] = call
            return []

        case .connectB3Ind(let ncci, _):
            // Not expected for a call we placed, but a stack may offer the B3 link itself: take it.
            call.ncci = ncci
            calls[id] = call
            return [respond(m, .connectB3Resp(ncci: ncci, reject: 0, ncpi: []))]

        case .connectB3ActiveInd(let ncci, let ncpi):
            actions.append(respond(m, .connectB3ActiveResp(ncci: ncci)))
            call.ncci = ncci
            if call.engine == .software {
                // No NCPI on a transparent link: the modem reports the session.
                if call.phase == .b3Connecting || call.phase == .connected, let plci = call.plci {
                    call.phase = .b3Active
                    calls[id] = call
                    actions.append(.startSoftFax(call: id, plci: plci, ncci: ncci))
                } else {
                    calls[id] = call
                }
                return actions
            }
            call.session.merge(ncpi)
            if call.phase == .b3Connecting || call.phase == .connected {
                call.phase = .b3Active
                calls[id] = call
                actions += pump(id)
            } else {
                calls[id] = call
            }
            return actions

        case .dataB3Ind(let ncci, let handle, _, let data) where call.engine == .software:
            // Answer first: the controller's buffer is free again while the modem works on the audio.
            actions.append(respond(m, .dataB3Resp(ncci: ncci, handle: handle)))
            if call.phase == .b3Active, !data.isEmpty { actions.append(.softAudio(call: id, data: data)) }
            return actions

        case .dataB3Conf(_, let handle, _) where call.engine == .software:
            return [.softAudioConfirmed(call: id, handle: handle)]

        case .dataB3Conf(_, let handle, let info):
            guard let length = call.outstanding.removeValue(forKey: handle) else { return [] }
            if info != .noError {
                call.ownEnd = call.ownEnd ?? (.localError, "controller refused document data (DATA_B3_REQ)", info.rawValue, nil)
                calls[id] = call
                return call.phase == .b3Active ? disconnectB3(id) : []
            }
            call.confirmedBytes += length
            calls[id] = call
            return call.phase == .b3Active ? pump(id) : []

        case .disconnectB3Conf(_, let info):
            // The B3 link could not be cleared the polite way: clear the call.
            if info != .noError && call.phase == .b3Disconnecting { return disconnect(id) }
            return []

        case .disconnectB3Ind(let ncci, let reasonB3, let ncpi):
            actions.append(respond(m, .disconnectB3Resp(ncci: ncci)))
            call.reasonB3 = reasonB3.rawValue
            if call.engine == .controller { call.session.merge(ncpi) }
            call.b3Ended = true
            // No DATA_B3_CONF comes after DISCONNECT_B3_IND.
            call.outstanding.removeAll()
            calls[id] = call
            if call.phase != .disconnecting { actions += disconnect(id) }
            return actions

        case .disconnectConf:
            return []

        case .disconnectInd(let plci, let reason):
            call.reason = reason.rawValue
            calls[id] = nil
            return [respond(m, .disconnectResp(plci: plci)), .finished(finish(call, now: now))]

        default:
            if m.subcommand == .ind, let r = m.simpleResponse() { return [.send(r)] }
            return []
        }
    }

    /// The software modem finished the session (or lost the line): keep its report for the outcome and clear
    /// the call unless the line is already going (`lineGone`).
    public mutating func softFaxFinished(call id: Int, _ end: SoftFaxEnd, lineGone: Bool) -> [Action] {
        guard var call = calls[id], call.engine == .software else { return [] }
        call.softEnd = end
        calls[id] = call
        // DISCONNECT_REQ clears the transparent B3 link with the call.
        return lineGone ? [] : disconnect(id)
    }

    /// The answer timer ran out: hang up, the outcome is "no answer".
    public mutating func answerTimerFired(call id: Int, token: Int) -> [Action] {
        guard var call = calls[id], call.timerToken == token, call.phase == .alerting else { return [] }
        let c = call.fax.answerTimeout.components
        let ms = c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000
        let text = "no answer within " + (ms % 1000 == 0 ? "\(ms / 1000) s" : "\(ms) ms")
        call.ownEnd = (.noAnswer, text, nil, text)
        calls[id] = call
        return disconnect(id)
    }

    /// Shutdown deadline: hang up every call; they are reported as network failures.
    public mutating func disconnectAll(text: String) -> [Action] {
        var actions: [Action] = []
        for id in calls.keys.sorted() {
            guard var call = calls[id] else { continue }
            call.ownEnd = (.networkFailure, text, nil, text)
            calls[id] = call
            if call.plci == nil { continue }   // CONNECT_CONF still due: hung up when it arrives (see handle)
            actions += disconnect(id)
        }
        return actions
    }

    /// The controller is gone (or we give up on it): every call ends now.
    public mutating func abandonAll(text: String, now: Date = Date()) -> [Action] {
        let ended = calls.keys.sorted().compactMap { id -> Action? in
            guard var call = calls[id] else { return nil }
            call.ownEnd = (.networkFailure, text, nil, text)
            // Never reported as a normal clearing: 0x3301 = protocol error layer 1 (line or controller gone).
            if call.reason == 0 { call.reason = 0x3301 }
            return .finished(finish(call, now: now))
        }
        calls.removeAll()
        return ended
    }

    // MARK: Steps

    /// Sends document blocks while the window has room; DISCONNECT_B3_REQ once everything is confirmed.
    private mutating func pump(_ id: Int) -> [Action] {
        guard var call = calls[id], call.phase == .b3Active, let ncci = call.ncci else { return [] }
        var actions: [Action] = []
        let document = call.fax.sff
        while call.outstanding.count < options.window && call.offset < document.count && call.ownEnd == nil {
            let end = min(call.offset + options.blockSize, document.count)
            let handle = call.nextHandle
            call.nextHandle = call.nextHandle == UInt16.max ? 1 : call.nextHandle + 1
            call.outstanding[handle] = end - call.offset
            call.maxOutstanding = max(call.maxOutstanding, call.outstanding.count)
            actions.append(request(.dataB3Req(ncci: ncci, handle: handle, flags: 0, data: Array(document[call.offset..<end]))))
            call.offset = end
        }
        calls[id] = call
        if call.offset >= document.count && call.outstanding.isEmpty {
            actions += disconnectB3(id)
        }
        return actions
    }

    private mutating func disconnectB3(_ id: Int) -> [Action] {
        guard var call = calls[id], let ncci = call.ncci, !call.b3Ended,
              call.phase == .b3Active || call.phase == .b3Connecting else { return disconnect(id) }
        call.phase = .b3Disconnecting
        calls[id] = call
        return [request(.disconnectB3Req(ncci: ncci, ncpi: []))]
    }

    private mutating func disconnect(_ id: Int) -> [Action] {
        guard var call = calls[id], let plci = call.plci, call.phase != .disconnecting else { return [] }
        call.phase = .disconnecting
        call.timerToken += 1
        calls[id] = call
        return [request(.disconnectReq(plci: plci, additionalInfo: []))]
    }

    private func finish(_ call: Call, now: Date) -> FinishedSend {
        let pages = call.session.pages ?? 0
        let allConfirmed = call.confirmedBytes == call.fax.sff.count
        var cause: SendOutcome.Cause
        var context: String
        var info: UInt16? = nil
        var override: String? = nil
        var pagesSent = pages
        var session = call.session
        if let own = call.ownEnd {
            (cause, context, info, override) = own
            if let soft = call.softEnd { pagesSent = soft.pagesSent; session = soft.session }
        } else if let soft = call.softEnd {
            // The modem ran T.30: its verdict decides, the network's clearing cause is only how the call went.
            pagesSent = soft.pagesSent
            session = soft.session
            cause = soft.succeeded ? .success : .faxProtocolError
            context = soft.text
            override = soft.text
        } else if call.reasonB3 == 0 && call.b3Ended && pages > 0 && allConfirmed {
            cause = .success
            context = "\(pages) page\(pages == 1 ? "" : "s") sent"
        } else if call.reasonB3 != 0, let c = Self.causeB3(call.reasonB3) {
            cause = c
            context = pages > 0 ? "fax transmission failed after \(pages) page\(pages == 1 ? "" : "s")" : "fax transmission failed"
        } else if let c = Self.cause(call.reason) {
            cause = c
            context = call.connectedAt == nil ? "call not connected" : "call ended"
        } else if call.connectedAt != nil {
            // Connected and cleared normally, yet no confirmed document: the fax session did not complete.
            cause = .faxProtocolError
            context = call.b3Ended ? "remote ended the fax session without confirming the document"
                : "call cleared before the fax session completed"
        } else {
            cause = .networkFailure
            context = "call cleared before it was answered"
        }
        if call.engine == .software && session.engine == nil { session.engine = .software }
        return FinishedSend(call: call.id, jobID: call.fax.jobID, cause: cause, reason: call.reason, reasonB3: call.reasonB3,
                            info: info, context: context, textOverride: override, session: session, pagesSent: pagesSent,
                            dialedAt: call.dialedAt, connectedAt: call.connectedAt, endedAt: now)
    }

    /// Cause for a DISCONNECT_B3_IND Reason_B3; nil for codes that say nothing about the fax session.
    static func causeB3(_ r: UInt16) -> SendOutcome.Cause? {
        switch r {
        case 0: nil
        case 0x3301...0x3303: .networkFailure          // line / layer 2-3 broken
        case 0x3300...0x33FF: .faxProtocolError        // T.30: not a fax, training, remote abort, coding …
        default: nil
        }
    }

    /// Cause for a DISCONNECT_IND Reason; nil for normal clearing.
    static func cause(_ r: UInt16) -> SendOutcome.Cause? {
        switch r {
        case 0, 0x3400, 0x3490, 0x349F: nil
        case 0x3491: .busy
        case 0x3492, 0x3493: .noAnswer
        case 0x3481, 0x349C, 0x3496: .invalidNumber
        case 0x3495: .rejected
        case 0x34D8: .faxProtocolError                 // incompatible destination: no fax service there
        case 0x3311...0x33FF: .faxProtocolError
        default: .networkFailure                       // 0x34A2, 0x34A9, 0x3301, congestion, out of order …
        }
    }
}
