import CapiProtocol
import Foundation
import Synchronization

/// A CAPI 2.0 controller on the rcapi TCP protocol, for tests and the demo.
///
/// It answers libcapi20's control requests, accepts LISTEN_REQ and, on command, places incoming fax calls
/// towards whatever application listens. Every message in both directions is recorded.
public final class CapiSimulator: Sendable {
    public let controllers: Int
    public let profile: CapiProfile
    /// The kind of controller (fax firmware or transparent only); `profile` is what GET_PROFILE reports.
    public let controllerProfile: ControllerProfile
    /// rcapi or AVM's CAPI over TCP (FritzboxWire.swift); only the framing and control requests differ.
    public let wire: CapiWire
    private let requestedPort: UInt16

    struct Listen: Sendable { var connection: RcapiConnection; var applID: UInt16; var cipMask: UInt32 }
    struct Waiter: Sendable {
        var connection: Int
        var match: @Sendable (CapiMessage) -> Bool
        var continuation: CheckedContinuation<CapiMessage?, Never>
    }
    struct State: Sendable {
        var server: RcapiServer?
        var connections: [Int: RcapiConnection] = [:]
        var nextConnectionID = 1
        var connectionAttempts = 0
        var refuseUntil: ContinuousClock.Instant?
        var listens: [Int: Listen] = [:]   // by controller
        var messages: [RecordedMessage] = []
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiterID: UInt64 = 1
        var nextMessageNumber: UInt16 = 0x100
        var nextPLCIID: UInt32 = 1
        // Outgoing calls (see OutgoingCalls.swift).
        var outgoingBehaviours: [String: [OutgoingBehaviour]] = [:]
        var defaultOutgoingBehaviour: OutgoingBehaviour = .answer()
        var outgoing: [ReceivedFaxCall] = []
        var outgoingInboxes: [UInt32: (connection: Int, index: Int, inbox: MessageInbox)] = [:]   // by PLCI
        var outgoingEnded: (@Sendable (ReceivedFaxCall) -> Void)?
        // Software fax calls read their messages from an inbox (see SoftFaxLine.swift), by PLCI.
        var lineInboxes: [UInt32: (connection: Int, inbox: MessageInbox)] = [:]
        /// ApplIDs a fritzbox-wire simulator assigns (the box does, not the client): see FritzboxWire.swift.
        var nextFritzboxApplID = UInt16.random(in: 512...1000)
    }
    let state = Mutex(State())

    /// `port` 0 picks a free port below 32768 (libcapi20 stores the port in a signed short).
    /// `wire` .fritzbox defaults to the profile a FRITZ!Box reports (transparent only); `profile` overrides it.
    public init(port: UInt16 = 0, controllers: Int = 1, wire: CapiWire = .rcapi, profile: ControllerProfile? = nil) {
        self.requestedPort = port
        self.controllers = max(1, controllers)
        self.wire = wire
        let profile = profile ?? (wire == .fritzbox ? .transparent : .faxAndVoice)
        self.controllerProfile = profile
        self.profile = profile.capiProfile(controllers: UInt16(max(1, controllers)))
    }

    /// Info a real controller of this profile gives for a B protocol it lacks (0 = fine). The fax-firmware
    /// profile accepts whatever it is asked for, as it always did.
    func refusal(for bp: BProtocol?) -> UInt16 {
        controllerProfile == .transparent ? profile.refusal(for: bp) : 0
    }

    public var port: UInt16 { state.withLock { $0.server?.port ?? requestedPort } }

    public func start() throws {
        let server = try RcapiServer(port: requestedPort)
        state.withLock { $0.server = server }
        server.start(
            onAccept: { [self] fd in
                state.withLock { s -> RcapiConnection? in
                    s.connectionAttempts += 1
                    if let until = s.refuseUntil, ContinuousClock.now < until {
                        close(fd)   // counted, then refused: the client sees EOF
                        return nil
                    }
                    let c = RcapiConnection(id: s.nextConnectionID, fd: fd, wire: wire)
                    s.nextConnectionID += 1
                    s.connections[c.id] = c
                    return c
                }
            },
            onFrame: { [self] connection, frame in handleFrame(connection, frame) },
            onClose: { [self] connection in connectionClosed(connection) })
    }

    public func stop() {
        let (server, connections) = state.withLock { s in
            defer { s.server = nil }
            return (s.server, Array(s.connections.values))
        }
        server?.stop()
        connections.forEach { $0.close() }
    }

    // MARK: Observation

    public var messages: [RecordedMessage] { state.withLock { $0.messages } }
    /// Messages the gateway sent (CAPI messages only).
    public var messagesFromGateway: [CapiMessage] {
        state.withLock { $0.messages.filter { $0.direction == .fromGateway }.compactMap(\.message) }
    }
    public var connectionAttempts: Int { state.withLock { $0.connectionAttempts } }
    public var registrations: Int { state.withLock { $0.messages.filter(\.isRegister).count } }
    public var isListening: Bool { state.withLock { !$0.listens.isEmpty } }
    public func clearMessages() { state.withLock { $0.messages.removeAll() } }

    /// Waits until an application has sent LISTEN_REQ with a non-empty CIP mask (on any controller).
    public func waitForListen(timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isListening { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw SimulatorError.timeout("LISTEN_REQ")
    }

    // MARK: Faults

    /// Closes every TCP connection (control and application sockets), as a crashing controller would.
    public func dropAllConnections() {
        let connections = state.withLock { Array($0.connections.values) }
        connections.forEach { $0.close() }
    }

    /// Accepts and immediately closes new connections until `duration` has passed.
    public func refuseConnections(for duration: Duration) {
        state.withLock { $0.refuseUntil = ContinuousClock.now + duration }
    }

    // MARK: Inbound

    private func handleFrame(_ connection: RcapiConnection, _ frame: [UInt8]) {
        if wire == .fritzbox, let control = FritzboxFrame.control(of: frame) {
            handleFritzboxControl(connection, control)
            return
        }
        if wire == .rcapi, let command = RcapiFrame.controlCommand(of: frame) {
            record(.fromGateway, connection, .control(command: command))
            let controller = frame.count >= 12 ? Int(frame[8]) | Int(frame[9]) << 8 : 0
            let reply: [UInt8]
            switch RcapiFrame.ControlCommand(rawValue: command) {
            case .register: reply = [0, 0]
            case .getProfile:
                if controller > controllers {
                    reply = [0x02, 0x20] + [UInt8](repeating: 0, count: 64)  // 0x2002 illegal controller
                } else {
                    reply = [0, 0] + profile.encoded()
                }
            case .getManufacturer: reply = counted(Array("Faxgate CAPI simulator".utf8), 64)
            case .getVersion:
                var w = CapiWriter(); w.dword(2); w.dword(0); w.dword(1); w.dword(0)
                reply = counted(w.bytes, 16)
            case .getSerialNumber: reply = counted(Array("0000001".utf8), 8)
            case .authUser, .none: reply = [0, 0]
            }
            connection.send(RcapiFrame.controlReply(to: command, data: reply))
            record(.toGateway, connection, .control(command: command &+ 1))
            return
        }
        guard let message = try? CapiMessage.decode(frame) else { return }
        record(.fromGateway, connection, .capi(message))
        switch message.body {
        case .listenReq(let controller, _, let cipMask, _, _, _):
            let ok = controller >= 1 && Int(controller) <= controllers
            state.withLock { s in
                if ok {
                    if cipMask == 0 { s.listens[Int(controller)] = nil }
                    else { s.listens[Int(controller)] = Listen(connection: connection, applID: message.applID, cipMask: cipMask) }
                }
            }
            reply(connection, to: message, .listenConf(controller: controller, info: ok ? .noError : CapiInfo(0x2002)))
        case .alertReq(let plci, _):
            reply(connection, to: message, .alertConf(plci: plci, info: .noError))
        case .disconnectReq(let plci, _):
            reply(connection, to: message, .disconnectConf(plci: plci, info: .noError))
        case .disconnectB3Req(let ncci, _):
            reply(connection, to: message, .disconnectB3Conf(ncci: ncci, info: .noError))
        case .connectReq:
            outgoingCallRequested(connection, message)
        default: break
        }
        routeToOutgoingCall(connection, message)
        // Wake the first call script waiting for this message.
        let resumed = state.withLock { s -> CheckedContinuation<CapiMessage?, Never>? in
            guard let (id, w) = s.waiters.first(where: { $0.value.connection == connection.id && $0.value.match(message) })
            else { return nil }
            s.waiters[id] = nil
            return w.continuation
        }
        resumed?.resume(returning: message)
    }

    private func counted(_ data: [UInt8], _ size: Int) -> [UInt8] {
        [UInt8(min(data.count, size))] + data.prefix(size) + [UInt8](repeating: 0, count: max(0, size - data.count))
    }

    private func connectionClosed(_ connection: RcapiConnection) {
        let waiters = state.withLock { s -> [Waiter] in
            s.connections[connection.id] = nil
            for (c, l) in s.listens where l.connection.id == connection.id { s.listens[c] = nil }
            let mine = s.waiters.filter { $0.value.connection == connection.id }
            for id in mine.keys { s.waiters[id] = nil }
            for (plci, o) in s.outgoingInboxes where o.connection == connection.id {
                o.inbox.close()
                s.outgoingInboxes[plci] = nil
            }
            for (plci, o) in s.lineInboxes where o.connection == connection.id {
                o.inbox.close()
                s.lineInboxes[plci] = nil
            }
            return Array(mine.values)
        }
        waiters.forEach { $0.continuation.resume(returning: nil) }
    }

    func record(_ direction: RecordedMessage.Direction, _ connection: RcapiConnection, _ content: RecordedMessage.Content) {
        state.withLock { $0.messages.append(RecordedMessage(time: Date(), direction: direction, connection: connection.id, content: content)) }
    }

    func reply(_ connection: RcapiConnection, to request: CapiMessage, _ body: CapiMessageBody) {
        let m = CapiMessage(applID: request.applID, messageNumber: request.messageNumber, body: body)
        record(.toGateway, connection, .capi(m))
        connection.send(m.encoded())
    }

    // MARK: Outbound call script

    /// Sends an indication; returns the index in `messages` from which answers are looked for.
    @discardableResult
    func indicate(_ listen: Listen, _ body: CapiMessageBody, short: Bool = false) -> CapiMessage {
        let number = state.withLock { s -> UInt16 in
            defer { s.nextMessageNumber = s.nextMessageNumber == 0x7FFF ? 0x100 : s.nextMessageNumber + 1 }
            return s.nextMessageNumber
        }
        let m = CapiMessage(applID: listen.applID, messageNumber: number, body: body)
        record(.toGateway, listen.connection, .capi(m))
        var bytes = m.encoded()
        if short, case .dataB3Ind(_, _, _, let data) = body {
            // 22-byte form: drop the 64-bit pointer and fix the length.
            bytes = Array(bytes[0..<22]) + data
            bytes[0] = 22; bytes[1] = 0
        }
        listen.connection.send(bytes)
        return m
    }

    /// Waits for a message from the gateway on `connection` matching `match`, looking first at what already
    /// arrived since `since` (answers can come before we start waiting).
    private func expect(_ what: String, on connection: RcapiConnection, since: Int, waiterID id: UInt64,
                        _ match: @escaping @Sendable (CapiMessage) -> Bool) async throws -> CapiMessage {
        let found: CapiMessage? = await withCheckedContinuation { c in
            let early = state.withLock { s -> CapiMessage?? in
                for r in s.messages[min(since, s.messages.count)...]
                where r.connection == connection.id && r.direction == .fromGateway {
                    if let m = r.message, match(m) { return .some(m) }
                }
                if connection.isClosed { return .some(nil) }
                s.waiters[id] = Waiter(connection: connection.id, match: match, continuation: c)
                return nil
            }
            if let early { c.resume(returning: early) }
        }
        if let found { return found }
        throw SimulatorError.connectionLost(what)
    }

    /// `expect` with a deadline: a watchdog resumes the waiter with nil when time is up.
    func expectWithin(_ what: String, _ listen: Listen, since: Int, timeout: Duration,
                              _ match: @escaping @Sendable (CapiMessage) -> Bool) async throws -> CapiMessage {
        let id = state.withLock { s -> UInt64 in defer { s.nextWaiterID += 1 }; return s.nextWaiterID }
        let watchdog = Task { [self] in
            try await Task.sleep(for: timeout)
            state.withLock { $0.waiters.removeValue(forKey: id) }?.continuation.resume(returning: nil)
        }
        defer { watchdog.cancel() }
        do {
            return try await expect(what, on: listen.connection, since: since, waiterID: id, match)
        } catch {
            if listen.connection.isClosed { throw error }
            throw SimulatorError.timeout(what)
        }
    }

    var cursor: Int { state.withLock { $0.messages.count } }

    /// Places an incoming fax call and runs it to the end. Throws when nobody listens, the gateway stops
    /// answering, or the connection is lost (unless the loss was the requested fault).
    public func placeFaxCall(_ call: SimulatedFaxCall) async throws -> SimulatedCallResult {
        let t = call.responseTimeout
        let offer = try await offerCall(
            controller: call.controller, cip: call.cip, calledNumber: call.calledNumber, callingNumber: call.callingNumber,
            restricted: call.callingNumberRestricted, bc: [0x90, 0x90, 0xA3], hlc: [0x91, 0x84], timeout: t,
            callingTypeAndPlan: call.callingTypeAndPlan, callingPresentation: call.callingPresentation,
            calledTypeAndPlan: call.calledTypeAndPlan)
        let (listen, plci) = (offer.listen, offer.plci)
        let ncci = plci | 1 << 16
        var result = SimulatedCallResult(plci: plci, alerted: offer.alerted, rejectCode: offer.rejectCode, bProtocol: offer.bProtocol,
                                         bytesSent: 0, blocksSent: 0, reasonB3: nil, reason: offer.disconnectReason,
                                         connectionDropped: false)
        if offer.rejectCode != 0 { return result }
        if offer.refusedInfo != 0 {
            result.refusedInfo = offer.refusedInfo
            return result
        }

        try await step(listen, .connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: []),
                       "CONNECT_ACTIVE_RESP", t) { if case .connectActiveResp(plci) = $0 { true } else { false } }
        try await runFaxB3(listen, plci: plci, ncci: ncci, call: call, result: &result)
        return result
    }

    struct Offer {
        var listen: Listen
        var plci: UInt32
        var alerted: Bool
        var rejectCode: UInt16
        var bProtocol: BProtocol?
        var disconnectReason: UInt16?
        /// Transparent profile: the B protocol in CONNECT_RESP is not supported (e.g. 0x3001 for B1 = 4).
        var refusedInfo: UInt16 = 0
    }

    /// CONNECT_IND to a listening gateway, then its (ALERT_REQ and) CONNECT_RESP. A rejected call is cleared
    /// with DISCONNECT_IND as a controller does. Shared by fax and voice calls.
    func offerCall(controller: Int, cip: UInt16, calledNumber: String, callingNumber: String, restricted: Bool,
                   bc: [UInt8], hlc: [UInt8], timeout t: Duration, callingTypeAndPlan: UInt8 = 0x00,
                   callingPresentation: UInt8? = nil, calledTypeAndPlan: UInt8 = 0x80) async throws -> Offer {
        guard let listen = state.withLock({ $0.listens[controller] }), listen.cipMask & (1 << UInt32(cip)) != 0 else {
            throw SimulatorError.notListening(controller: controller, cip: cip)
        }
        let plci = state.withLock { s -> UInt32 in
            defer { s.nextPLCIID = s.nextPLCIID % 250 + 1 }
            return UInt32(controller) | s.nextPLCIID << 8
        }
        var since = cursor
        indicate(listen, .connectInd(
            plci: plci, cip: cip, called: CalledPartyNumber(typeAndPlan: calledTypeAndPlan, digits: calledNumber),
            calling: CallingPartyNumber(typeAndPlan: callingTypeAndPlan, presentation: callingPresentation ?? (restricted ? 0xA0 : 0x80),
                                        digits: callingNumber),
            calledSubaddress: [], callingSubaddress: [], bc: bc, llc: [], hlc: hlc, additionalInfo: []))
        var answer = try await expectWithin("CONNECT_RESP", listen, since: since, timeout: t) { m in
            switch m.body {
            case .alertReq(plci, _), .connectResp(plci, _, _, _, _, _, _): true
            default: false
            }
        }
        var offer = Offer(listen: listen, plci: plci, alerted: false, rejectCode: 0, bProtocol: nil, disconnectReason: nil)
        if case .alertReq = answer.body {
            offer.alerted = true
            answer = try await expectWithin("CONNECT_RESP", listen, since: since, timeout: t) { m in
                if case .connectResp(plci, _, _, _, _, _, _) = m.body { true } else { false }
            }
        }
        guard case .connectResp(_, let reject, let bProtocol, _, _, _, _) = answer.body else {
            throw SimulatorError.protocolViolation("expected CONNECT_RESP")
        }
        offer.rejectCode = reject
        offer.bProtocol = bProtocol
        let refused = reject == 0 ? refusal(for: bProtocol) : 0
        if refused != 0 {
            // The controller cannot connect the B-channel it was asked for: the call is cleared with that info.
            since = cursor
            indicate(listen, .disconnectInd(plci: plci, reason: CapiInfo(refused)))
            offer.disconnectReason = refused
            offer.refusedInfo = refused
            _ = try await expectWithin("DISCONNECT_RESP", listen, since: since, timeout: t) { m in
                if case .disconnectResp(plci) = m.body { true } else { false }
            }
        }
        if reject != 0 {
            since = cursor
            let reason: UInt16 = reject >= 0x3400 ? reject : 0x3495
            indicate(listen, .disconnectInd(plci: plci, reason: CapiInfo(reason)))
            offer.disconnectReason = reason
            _ = try await expectWithin("DISCONNECT_RESP", listen, since: since, timeout: t) { m in
                if case .disconnectResp(plci) = m.body { true } else { false }
            }
        }
        return offer
    }

    /// The fax part of a call, from CONNECT_B3_IND to DISCONNECT_IND (also after a voice call switched to fax).
    func runFaxB3(_ listen: Listen, plci: UInt32, ncci: UInt32, call: SimulatedFaxCall, result: inout SimulatedCallResult) async throws {
        let t = call.responseTimeout
        let b3 = try await step(listen, .connectB3Ind(ncci: ncci, ncpi: []), "CONNECT_B3_RESP", t) {
            if case .connectB3Resp(ncci, _, _) = $0 { true } else { false }
        }
        if case .connectB3Resp(_, let b3Reject, _) = b3.body, b3Reject != 0 {
            try await finish(listen, plci: plci, ncci: ncci, reasonB3: 0x3311, pages: 0, call: call, result: &result)
            return
        }
        let connectedNCPI = FaxNCPI(rate: call.rate, fine: call.fine, pages: 0, stationID: call.remoteStationID)
        try await step(listen, .connectB3ActiveInd(ncci: ncci, ncpi: connectedNCPI.encoded()), "CONNECT_B3_ACTIVE_RESP", t) {
            if case .connectB3ActiveResp(ncci) = $0 { true } else { false }
        }

        // Document data: blocks of ≤ 2048 bytes, at most 7 unanswered (the gateway registered 7 B3 blocks).
        let pageEnds = SFFPages.pageEnds(call.document)
        var limit = call.document.count
        var reasonB3: UInt16 = 0
        var pages = call.pages ?? max(pageEnds.count, call.document.isEmpty ? 0 : 1)
        var dropAt: Int? = nil
        switch call.fault {
        case .none: break
        case .remoteAbortAfterBytes(let n, let p): limit = min(n, limit); reasonB3 = 0x3314; pages = p
        case .remoteAbortAfterPage(let k):
            limit = k >= 1 && k <= pageEnds.count ? pageEnds[k - 1] : min(limit, limit / 2); reasonB3 = 0x3314; pages = k
        case .dropConnectionAfterBytes(let n): dropAt = min(n, limit)
        }
        let dataStart = cursor
        var outstanding: Set<UInt16> = []
        var handle: UInt16 = 0
        var offset = 0
        let sendLimit = dropAt ?? limit
        while offset < sendLimit || !outstanding.isEmpty {
            if offset < sendLimit && outstanding.count < 7 {
                let end = min(offset + call.blockSize, sendLimit)
                handle = handle &+ 1
                outstanding.insert(handle)
                indicate(listen, .dataB3Ind(ncci: ncci, handle: handle, flags: 0, data: Array(call.document[offset..<end])),
                         short: call.shortDataB3Form)
                result.blocksSent += 1
                result.bytesSent += end - offset
                offset = end
                if call.blockInterval > .zero { try await Task.sleep(for: call.blockInterval) }
                continue
            }
            if dropAt != nil && offset >= sendLimit { break }
            let pending = outstanding
            let resp = try await expectWithin("DATA_B3_RESP", listen, since: dataStart, timeout: t) { m in
                if case .dataB3Resp(ncci, let h) = m.body { pending.contains(h) } else { false }
            }
            if case .dataB3Resp(_, let h) = resp.body { outstanding.remove(h) }
        }
        if dropAt != nil {
            // Give the gateway a moment to take in what was sent, then fail like a crashed controller.
            try? await Task.sleep(for: .milliseconds(100))
            dropAllConnections()
            result.connectionDropped = true
            return
        }
        try await finish(listen, plci: plci, ncci: ncci, reasonB3: reasonB3, pages: pages, call: call, result: &result)
    }

    @discardableResult
    func step(_ listen: Listen, _ body: CapiMessageBody, _ what: String, _ timeout: Duration,
                      _ match: @escaping @Sendable (CapiMessageBody) -> Bool) async throws -> CapiMessage {
        let since = cursor
        indicate(listen, body)
        return try await expectWithin(what, listen, since: since, timeout: timeout) { match($0.body) }
    }

    private func finish(_ listen: Listen, plci: UInt32, ncci: UInt32, reasonB3: UInt16, pages: Int, call: SimulatedFaxCall,
                        result: inout SimulatedCallResult) async throws {
        let ncpi = FaxNCPI(rate: call.rate, fine: call.fine, pages: UInt16(clamping: pages), stationID: call.remoteStationID)
        try await step(listen, .disconnectB3Ind(ncci: ncci, reasonB3: CapiInfo(reasonB3), ncpi: ncpi.encoded()),
                       "DISCONNECT_B3_RESP", call.responseTimeout) { if case .disconnectB3Resp(ncci) = $0 { true } else { false } }
        result.reasonB3 = reasonB3
        try await step(listen, .disconnectInd(plci: plci, reason: CapiInfo(call.disconnectReason)), "DISCONNECT_RESP",
                       call.responseTimeout) { if case .disconnectResp(plci) = $0 { true } else { false } }
        result.reason = call.disconnectReason
    }
}
