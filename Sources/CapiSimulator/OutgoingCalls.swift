import CapiProtocol
import Foundation
import Synchronization

/// How the simulated remote end answers an outgoing call the gateway places.
public enum OutgoingBehaviour: Sendable, Equatable, CustomStringConvertible {
    /// A fax machine answers and takes the document. `fine` nil = confirm the resolution the gateway asked for;
    /// `pagesConfirmed` nil = the number of pages in the received SFF.
    case answer(remoteStationID: String = "+49 30 7654321", rate: UInt16 = 14400, fine: Bool? = nil, pagesConfirmed: Int? = nil)
    /// DISCONNECT_IND 0x3491 right after CONNECT_CONF.
    case busy
    /// INFO_IND ALERTING, then silence until the gateway hangs up.
    case noAnswer
    /// DISCONNECT_IND with this reason right after CONNECT_CONF (e.g. 0x3481 unallocated number, 0x3495 rejected).
    case rejectNumber(UInt16)
    /// The remote aborts (DISCONNECT_B3_IND 0x3314, pages = k) once k complete pages of SFF have arrived.
    case abortAfterPage(Int)
    /// A phone answers: DISCONNECT_B3_IND 0x3311 (remote is not a fax) after CONNECT_ACTIVE.
    case notAFax
    /// A fax machine answers on a transparent B-channel (the gateway must connect with B 1/1/0 and run its own
    /// modem): a spandsp receiver takes the pages; they end up in `ReceivedFaxCall.softFax`.
    case answerSoftFax(SoftFaxAnswer = SoftFaxAnswer())

    public var description: String {
        switch self {
        case .answer(let id, let rate, let fine, let pages):
            "answer(\(id), \(rate) bit/s\(fine.map { $0 ? ", fine" : ", normal" } ?? "")\(pages.map { ", \($0) pages" } ?? ""))"
        case .busy: "busy"
        case .noAnswer: "no answer"
        case .rejectNumber(let r): "reject 0x" + String(r, radix: 16)
        case .abortAfterPage(let k): "abort after page \(k)"
        case .notAFax: "not a fax"
        case .answerSoftFax(let a): "software fax receiver (\(a))"
        }
    }
}

/// An outgoing call as the simulator saw it (updated while the call lasts).
public struct ReceivedFaxCall: Sendable, Equatable {
    public var plci: UInt32
    public var controller: Int
    public var calledNumber: String
    /// nil when the gateway sent no digits (the line's default number).
    public var callingNumber: String?
    /// Presentation octet of the calling party number (0x80 allowed, 0xA0 restricted); nil = no struct.
    public var callingPresentation: UInt8?
    public var callingNumberRestricted: Bool
    public var cip: UInt16
    public var bProtocol: BProtocol?
    /// Station id, headline and fine bit the gateway asked for.
    public var faxConfiguration: FaxB3Configuration? { bProtocol?.faxConfiguration }
    public var behaviour: OutgoingBehaviour
    /// Exact concatenation of the DATA_B3_REQ payloads received before the B3 link went down.
    public var document: [UInt8]
    public var blocks: Int
    public var largestBlock: Int
    /// Most DATA_B3_REQ the gateway had unconfirmed at once.
    public var maxOutstanding: Int
    /// Protocol rules the gateway broke (window > 7, block > 2048, out-of-order requests, …). Empty when correct.
    public var violations: [String]
    public var requestedAt: Date
    public var alertedAt: Date?
    public var connectedAt: Date?
    public var endedAt: Date?
    /// Reason_B3 / Reason the simulator indicated, pages in the final NCPI.
    public var reasonB3: UInt16?
    public var reason: UInt16?
    public var pagesReported: Int?
    /// The gateway hung up (DISCONNECT_REQ) before the remote did.
    public var disconnectedByGateway: Bool
    /// Transparent profile: CONNECT_CONF refused the B protocol with this info (0x3001 B1 protocol not supported).
    public var refusedInfo: UInt16? = nil
    /// `.answerSoftFax`: what the simulator's spandsp receiver got (pages, result, line statistics).
    public var softFax: SoftFaxSession? = nil
    public var isFinished: Bool { endedAt != nil }
}

/// Messages from the gateway for one outgoing call, read in order by the call's script.
final class MessageInbox: Sendable {
    enum Next: Sendable { case message(CapiMessage), timeout, closed }
    private struct S: Sendable {
        var queue: [CapiMessage] = []
        var waiter: (token: Int, continuation: CheckedContinuation<Next, Never>)?
        /// The waiter's timeout task, cancelled when a message comes first (a soft-fax line waits many times a second).
        var timer: Task<Void, Never>?
        var token = 0
        var closed = false
    }
    private let s = Mutex(S())

    func push(_ m: CapiMessage) {
        let w = s.withLock { st -> CheckedContinuation<Next, Never>? in
            if let w = st.waiter {
                st.waiter = nil
                st.timer?.cancel(); st.timer = nil
                return w.continuation
            }
            st.queue.append(m)
            return nil
        }
        w?.resume(returning: .message(m))
    }

    /// Everything already queued, without waiting.
    func drain() -> [CapiMessage] {
        s.withLock { st in defer { st.queue.removeAll() }; return st.queue }
    }

    func close() {
        let w = s.withLock { st -> CheckedContinuation<Next, Never>? in
            st.closed = true
            defer { st.waiter = nil }
            return st.waiter?.continuation
        }
        w?.resume(returning: .closed)
    }

    func next(timeout: Duration) async -> Next {
        await withCheckedContinuation { c in
            let (immediate, token) = s.withLock { st -> (Next?, Int) in
                if !st.queue.isEmpty { return (.message(st.queue.removeFirst()), 0) }
                if st.closed { return (.closed, 0) }
                st.token += 1
                st.waiter = (st.token, c)
                return (nil, st.token)
            }
            if let immediate { c.resume(returning: immediate); return }
            let timer = Task { [self] in
                try? await Task.sleep(for: timeout)
                let w = s.withLock { st -> CheckedContinuation<Next, Never>? in
                    guard let w = st.waiter, w.token == token else { return nil }
                    st.waiter = nil
                    return w.continuation
                }
                w?.resume(returning: .timeout)
            }
            s.withLock { st in if st.waiter?.token == token { st.timer = timer } else { timer.cancel() } }
        }
    }
}

private struct GatewayHungUp: Error {}

extension CapiSimulator {
    /// How calls to `number` are answered: one entry per call, the last one repeats.
    public func setOutgoingBehaviour(for number: String, _ behaviours: [OutgoingBehaviour]) {
        state.withLock { $0.outgoingBehaviours[number] = behaviours.isEmpty ? nil : behaviours }
    }
    /// For numbers without a behaviour of their own (initially `.answer()`).
    public func setDefaultOutgoingBehaviour(_ behaviour: OutgoingBehaviour) {
        state.withLock { $0.defaultOutgoingBehaviour = behaviour }
    }
    /// Called (on a simulator thread) when an outgoing call has ended.
    public func onOutgoingCallEnded(_ handler: @escaping @Sendable (ReceivedFaxCall) -> Void) {
        state.withLock { $0.outgoingEnded = handler }
    }

    /// Every outgoing call so far, in the order the CONNECT_REQs arrived.
    public var outgoingCalls: [ReceivedFaxCall] { state.withLock { $0.outgoing } }
    public func clearOutgoingCalls() { state.withLock { s in s.outgoing.removeAll(); s.outgoingInboxes.removeAll() } }

    /// Waits until `count` outgoing calls have ended.
    public func waitForOutgoingCalls(_ count: Int, timeout: Duration) async throws -> [ReceivedFaxCall] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let calls = outgoingCalls
            if calls.filter(\.isFinished).count >= count { return calls }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw SimulatorError.timeout("\(count) outgoing calls")
    }

    // MARK: Inbound (reader thread)

    /// CONNECT_REQ: assign a PLCI, confirm at once (before any indication for it), then run the call's script.
    func outgoingCallRequested(_ connection: RcapiConnection, _ m: CapiMessage) {
        guard case .connectReq(let controller, let cip, let called, let calling, _, _, let bProtocol, _, _, _, _) = m.body else { return }
        let listen = Listen(connection: connection, applID: m.applID, cipMask: 0)
        guard controller >= 1 && Int(controller) <= controllers else {
            reply(connection, to: m, .connectConf(plci: controller, info: CapiInfo(0x2002)))
            return
        }
        let refused = refusal(for: bProtocol)
        if refused != 0 {
            // No PLCI: the controller cannot provide the B-channel protocol the gateway asked for.
            let (call, handler) = state.withLock { s -> (ReceivedFaxCall, (@Sendable (ReceivedFaxCall) -> Void)?) in
                var call = ReceivedFaxCall(
                    plci: 0, controller: Int(controller), calledNumber: called.digits,
                    callingNumber: calling.flatMap { $0.digits.isEmpty ? nil : $0.digits }, callingPresentation: calling?.presentation,
                    callingNumberRestricted: calling?.restricted ?? false, cip: cip, bProtocol: bProtocol, behaviour: s.defaultOutgoingBehaviour,
                    document: [], blocks: 0, largestBlock: 0, maxOutstanding: 0, violations: [], requestedAt: Date(),
                    reasonB3: nil, reason: nil, pagesReported: nil, disconnectedByGateway: false)
                call.refusedInfo = refused
                call.endedAt = Date()
                s.outgoing.append(call)
                return (call, s.outgoingEnded)
            }
            reply(connection, to: m, .connectConf(plci: controller, info: CapiInfo(refused)))
            handler?(call)
            return
        }
        let inbox = MessageInbox()
        let (plci, index, behaviour) = state.withLock { s -> (UInt32, Int, OutgoingBehaviour) in
            let plci = UInt32(controller) | s.nextPLCIID << 8
            s.nextPLCIID = s.nextPLCIID % 250 + 1
            var behaviour = s.defaultOutgoingBehaviour
            if var queue = s.outgoingBehaviours[called.digits], let first = queue.first {
                behaviour = first
                if queue.count > 1 { queue.removeFirst(); s.outgoingBehaviours[called.digits] = queue }
            }
            s.outgoing.append(ReceivedFaxCall(
                plci: plci, controller: Int(controller), calledNumber: called.digits,
                callingNumber: calling.flatMap { $0.digits.isEmpty ? nil : $0.digits }, callingPresentation: calling?.presentation,
                callingNumberRestricted: calling?.restricted ?? false, cip: cip, bProtocol: bProtocol, behaviour: behaviour,
                document: [], blocks: 0, largestBlock: 0, maxOutstanding: 0, violations: [], requestedAt: Date(),
                reasonB3: nil, reason: nil, pagesReported: nil, disconnectedByGateway: false))
            let index = s.outgoing.count - 1
            s.outgoingInboxes[plci] = (connection.id, index, inbox)
            return (plci, index, behaviour)
        }
        reply(connection, to: m, .connectConf(plci: plci, info: .noError))
        Task { await self.runOutgoingCall(listen, plci: plci, index: index, inbox: inbox, behaviour: behaviour) }
    }

    func routeToOutgoingCall(_ connection: RcapiConnection, _ m: CapiMessage) {
        if case .connectReq = m.body { return }
        guard let address = m.address else { return }
        let inbox = state.withLock { s in
            s.outgoingInboxes[address.capiPLCI].flatMap { $0.connection == connection.id ? $0.inbox : nil }
                ?? s.lineInboxes[address.capiPLCI].flatMap { $0.connection == connection.id ? $0.inbox : nil }
        }
        inbox?.push(m)
    }

    func update(_ index: Int, _ change: (inout ReceivedFaxCall) -> Void) {
        state.withLock { s in if index < s.outgoing.count { change(&s.outgoing[index]) } }
    }

    // MARK: Call script

    private func runOutgoingCall(_ listen: Listen, plci: UInt32, index: Int, inbox: MessageInbox, behaviour: OutgoingBehaviour) async {
        let ncci = plci | 1 << 16
        let t: Duration = .seconds(15)
        var b3Up = false

        /// Next message for the call that satisfies `match`; DISCONNECT_REQ from the gateway ends the script.
        func expect(_ what: String, timeout: Duration = t, _ match: (CapiMessageBody) -> Bool) async throws -> CapiMessage {
            while true {
                switch await inbox.next(timeout: timeout) {
                case .message(let m):
                    if match(m.body) { return m }
                    if case .disconnectReq = m.body { throw GatewayHungUp() }
                    // Blocks still in flight when the B3 link went down: dropped, as a controller would.
                    if case .dataB3Req = m.body { continue }
                    if m.subcommand == .req || m.subcommand == .resp {
                        update(index) { $0.violations.append("unexpected \(m.name) while waiting for \(what)") }
                    }
                case .timeout: throw SimulatorError.timeout(what)
                case .closed: throw SimulatorError.connectionLost(what)
                }
            }
        }
        func step(_ body: CapiMessageBody, _ what: String, _ match: @escaping (CapiMessageBody) -> Bool) async throws {
            indicate(listen, body)
            _ = try await expect(what, match)
        }
        /// The remote (or the network) clears the call.
        func hangUp(_ reason: UInt16) async throws {
            update(index) { $0.reason = reason; $0.endedAt = Date() }
            try await step(.disconnectInd(plci: plci, reason: CapiInfo(reason)), "DISCONNECT_RESP") {
                if case .disconnectResp(plci) = $0 { true } else { false }
            }
        }
        /// The fax session ends with `reasonB3`; then wait for the gateway's DISCONNECT_REQ and clear the call.
        func endB3(_ reasonB3: UInt16, pages: Int, ncpiFor stationID: String, rate: UInt16, fine: Bool) async throws {
            b3Up = false
            update(index) { $0.reasonB3 = reasonB3; $0.pagesReported = pages }
            let ncpi = FaxNCPI(rate: rate, fine: fine, pages: UInt16(clamping: pages), stationID: stationID)
            try await step(.disconnectB3Ind(ncci: ncci, reasonB3: CapiInfo(reasonB3), ncpi: ncpi.encoded()), "DISCONNECT_B3_RESP") {
                if case .disconnectB3Resp(ncci) = $0 { true } else { false }
            }
            do {
                _ = try await expect("DISCONNECT_REQ") { if case .disconnectReq = $0 { true } else { false } }
                update(index) { $0.disconnectedByGateway = true }
            } catch is SimulatorError {
                update(index) { $0.violations.append("no DISCONNECT_REQ after DISCONNECT_B3_IND") }
            }
            try await hangUp(0x3490)
        }

        if case .answerSoftFax(let answer) = behaviour {
            await runSoftFaxAnswer(listen, plci: plci, index: index, inbox: inbox, answer: answer)
            finished(index)
            return
        }
        do {
            switch behaviour {
            case .answerSoftFax: break   // above
            case .busy:
                try await hangUp(0x3491)
            case .rejectNumber(let reason):
                try await hangUp(reason)
            case .noAnswer:
                try await step(.infoInd(plci: plci, infoNumber: 0x8001, infoElement: []), "INFO_RESP") {
                    if case .infoResp(plci) = $0 { true } else { false }
                }
                update(index) { $0.alertedAt = Date() }
                // Ring until the gateway gives up.
                _ = try await expect("DISCONNECT_REQ", timeout: .seconds(3600)) { if case .disconnectReq = $0 { true } else { false } }
                update(index) { $0.disconnectedByGateway = true }
                try await hangUp(0x3490)
            case .answer, .abortAfterPage, .notAFax:
                try await step(.infoInd(plci: plci, infoNumber: 0x8001, infoElement: []), "INFO_RESP") {
                    if case .infoResp(plci) = $0 { true } else { false }
                }
                update(index) { $0.alertedAt = Date() }
                try await step(.connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: []),
                               "CONNECT_ACTIVE_RESP") { if case .connectActiveResp(plci) = $0 { true } else { false } }
                update(index) { $0.connectedAt = Date() }
                let b3Req = try await expect("CONNECT_B3_REQ") { if case .connectB3Req(plci, _) = $0 { true } else { false } }
                reply(listen.connection, to: b3Req, .connectB3Conf(ncci: ncci, info: .noError))
                b3Up = true
                let requestedFine = state.withLock { $0.outgoing[index].faxConfiguration?.fine ?? false }
                var stationID = "+49 30 7654321", rate: UInt16 = 14400, fine = requestedFine
                var pagesConfirmed: Int? = nil, abortAfter: Int? = nil
                switch behaviour {
                case .answer(let id, let r, let f, let p): stationID = id; rate = r; fine = f ?? requestedFine; pagesConfirmed = p
                case .abortAfterPage(let k): abortAfter = max(0, k)
                case .notAFax:
                    try await endB3(0x3311, pages: 0, ncpiFor: "", rate: 0, fine: false)
                    finished(index)
                    return
                default: break
                }
                let active = FaxNCPI(rate: rate, fine: fine, pages: 0, stationID: stationID)
                try await step(.connectB3ActiveInd(ncci: ncci, ncpi: active.encoded()), "CONNECT_B3_ACTIVE_RESP") {
                    if case .connectB3ActiveResp(ncci) = $0 { true } else { false }
                }
                try await receiveDocument(listen, ncci: ncci, index: index, inbox: inbox, abortAfter: abortAfter) { outcome in
                    switch outcome {
                    case .complete(let document):
                        let pages = pagesConfirmed ?? SFFPages.pageEnds(document).count
                        try await endB3(0, pages: pages, ncpiFor: stationID, rate: rate, fine: fine)
                    case .abort(let pages):
                        try await endB3(0x3314, pages: pages, ncpiFor: stationID, rate: rate, fine: fine)
                    }
                }
            }
        } catch is GatewayHungUp {
            update(index) { $0.disconnectedByGateway = true }
            if b3Up {
                // The controller reports the B3 link going down first, with whatever the remote confirmed.
                update(index) { $0.reasonB3 = 0x3318 }
                indicate(listen, .disconnectB3Ind(ncci: ncci, reasonB3: CapiInfo(0x3318), ncpi: []))
                _ = try? await expect("DISCONNECT_B3_RESP") { if case .disconnectB3Resp(ncci) = $0 { true } else { false } }
            }
            try? await hangUp(0x3490)
        } catch {
            update(index) { $0.violations.append("\(error)"); if $0.endedAt == nil { $0.endedAt = Date() } }
        }
        finished(index)
    }

    func finished(_ index: Int) {
        let (call, handler) = state.withLock { s -> (ReceivedFaxCall?, (@Sendable (ReceivedFaxCall) -> Void)?) in
            guard index < s.outgoing.count else { return (nil, nil) }
            if s.outgoing[index].endedAt == nil { s.outgoing[index].endedAt = Date() }
            s.outgoingInboxes[s.outgoing[index].plci] = nil
            return (s.outgoing[index], s.outgoingEnded)
        }
        if let call, let handler { handler(call) }
    }

    private enum DocumentOutcome { case complete([UInt8]), abort(pages: Int) }

    /// DATA_B3_REQ until DISCONNECT_B3_REQ. Blocks are confirmed when 7 are outstanding or the gateway pauses
    /// (20 ms), like a controller that takes time to put them on the line — so the gateway's window is exercised.
    private func receiveDocument(_ listen: Listen, ncci: UInt32, index: Int, inbox: MessageInbox, abortAfter: Int?,
                                 then: (DocumentOutcome) async throws -> Void) async throws {
        var outstanding: [CapiMessage] = []
        var document: [UInt8] = []
        func confirmAll() {
            for m in outstanding {
                if case .dataB3Req(_, let h, _, _) = m.body { reply(listen.connection, to: m, .dataB3Conf(ncci: ncci, handle: h, info: .noError)) }
            }
            outstanding.removeAll()
        }
        while true {
            switch await inbox.next(timeout: outstanding.isEmpty ? .seconds(15) : .milliseconds(20)) {
            case .timeout:
                if outstanding.isEmpty { throw SimulatorError.timeout("DATA_B3_REQ or DISCONNECT_B3_REQ") }
                confirmAll()
            case .closed:
                throw SimulatorError.connectionLost("DATA_B3_REQ")
            case .message(let m):
                switch m.body {
                case .dataB3Req(let to, _, _, let data):
                    outstanding.append(m)
                    document += data
                    let count = outstanding.count
                    update(index) { c in
                        c.document += data
                        c.blocks += 1
                        c.largestBlock = max(c.largestBlock, data.count)
                        c.maxOutstanding = max(c.maxOutstanding, count)
                        if data.count > 2048 { c.violations.append("DATA_B3_REQ of \(data.count) bytes (> 2048)") }
                        if count > 7 { c.violations.append("\(count) DATA_B3_REQ unconfirmed (> 7)") }
                        if to != ncci { c.violations.append("DATA_B3_REQ for NCCI 0x\(String(to, radix: 16))") }
                    }
                    if let k = abortAfter, SFFPages.pageEnds(document, partial: true).count >= k {
                        confirmAll()
                        try await then(.abort(pages: k))
                        return
                    }
                    if outstanding.count >= 7 { confirmAll() }
                case .disconnectB3Req:
                    if !outstanding.isEmpty {
                        let n = outstanding.count
                        update(index) { $0.violations.append("DISCONNECT_B3_REQ with \(n) DATA_B3_REQ unconfirmed") }
                        confirmAll()
                    }
                    try await then(.complete(document))
                    return
                case .disconnectReq:
                    confirmAll()
                    throw GatewayHungUp()
                default:
                    if m.subcommand == .req || m.subcommand == .resp {
                        update(index) { $0.violations.append("unexpected \(m.name) during the document") }
                    }
                }
            }
        }
    }
}
