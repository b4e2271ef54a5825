import CapiProtocol
import FaxDocument
import Foundation
import SoftFax

/// A software fax machine answering a call the gateway placed: it expects B 1/1/0 and receives with spandsp.
public struct SoftFaxAnswer: Sendable, Equatable, CustomStringConvertible {
    /// The machine and its line (ident = CSID, ECM, modems, clock, impairment, saveDirectory for the TIFF).
    public var remote: SoftFaxRemote
    /// Ruin the gateway's high-speed audio so training fails at every rate (T.30 "cannot train"), while the
    /// V.21 control frames still get through — for retry tests: script `[.answerSoftFax(.init(failTraining:
    /// true)), .answerSoftFax()]` and check the second attempt's negotiated rate.
    public var failTraining: Bool

    public init(ident: String = "+49 30 7654321", ecm: Bool = true, maxModem: FaxModem = .v17, clock: LineClock = .lockstep(),
                impairment: LineImpairment = .none, saveDirectory: String? = nil, failTraining: Bool = false) {
        remote = SoftFaxRemote(ident: ident, ecm: ecm, modems: Set(FaxModem.allCases.filter { $0 <= maxModem }), clock: clock,
                               impairment: impairment, saveDirectory: saveDirectory)
        self.failTraining = failTraining
    }
    public init(remote: SoftFaxRemote, failTraining: Bool = false) {
        self.remote = remote
        self.failTraining = failTraining
    }

    public var description: String {
        var s = "\(remote.ident), ECM \(remote.ecm ? "on" : "off"), up to \(remote.modems.max()?.maxBitRate ?? 0) bit/s"
        if !remote.impairment.isNone { s += ", impairment \(remote.impairment)" }
        if failTraining { s += ", training fails" }
        return s
    }
}

private struct SoftFaxCallEnded: Error {}

extension CapiSimulator {
    /// The script of an outgoing call answered by `.answerSoftFax`: alerting, connect, B3 up, then the line
    /// until someone hangs up. Everything lands in `outgoing[index]`.
    func runSoftFaxAnswer(_ listen: Listen, plci: UInt32, index: Int, inbox: MessageInbox, answer: SoftFaxAnswer) async {
        let ncci = plci | 1 << 16
        let t = answer.remote.responseTimeout
        var remote = answer.remote
        if answer.failTraining { remote.impairment = Self.trainingFailure(seed: remote.impairment.seed) }

        /// Next message of the call matching `match`; the gateway hanging up ends the script.
        func expect(_ what: String, _ match: (CapiMessageBody) -> Bool) async throws -> CapiMessage {
            while true {
                switch await inbox.next(timeout: t) {
                case .message(let m):
                    if match(m.body) { return m }
                    if case .disconnectReq = m.body { throw SoftFaxCallEnded() }
                    if m.subcommand == .req || m.subcommand == .resp, !(m.command == .dataB3) {
                        update(index) { $0.violations.append("unexpected \(m.name) while waiting for \(what)") }
                    }
                case .timeout: throw SimulatorError.timeout(what)
                case .closed: throw SimulatorError.connectionLost(what)
                }
            }
        }
        func step(_ body: CapiMessageBody, _ what: String, _ match: (CapiMessageBody) -> Bool) async throws {
            indicate(listen, body)
            _ = try await expect(what, match)
        }
        func hangUp(_ reason: UInt16) async {
            update(index) { $0.reason = reason; $0.endedAt = Date() }
            indicate(listen, .disconnectInd(plci: plci, reason: CapiInfo(reason)))
            _ = await nextOnLine(inbox, timeout: t) { if case .disconnectResp(plci) = $0 { true } else { false } }
        }

        var b3Up = false
        do {
            let bp = state.withLock { $0.outgoing[index].bProtocol }
            guard let bp, bp.b1 == 1, bp.b2 == 1, bp.b3 == 0 else {
                let chosen = bp.map { "\($0.b1)/\($0.b2)/\($0.b3)" } ?? "default"
                update(index) { $0.violations.append("B protocol \(chosen) towards a software fax machine (needs transparent 1/1/0)") }
                await hangUp(0x3490)
                return
            }
            try await step(.infoInd(plci: plci, infoNumber: 0x8001, infoElement: []), "INFO_RESP") {
                if case .infoResp(plci) = $0 { true } else { false }
            }
            update(index) { $0.alertedAt = Date() }
            try await step(.connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: []),
                           "CONNECT_ACTIVE_RESP") { if case .connectActiveResp(plci) = $0 { true } else { false } }
            update(index) { $0.connectedAt = Date() }
            let b3Req = try await expect("CONNECT_B3_REQ") { if case .connectB3Req(plci, _) = $0 { true } else { false } }
            let work = try Self.makeWorkDirectory()
            defer { try? FileManager.default.removeItem(atPath: work) }
            let engine: FaxEngine
            do { engine = try FaxEngine(options: remote.engineOptions(calling: false), send: nil, workDirectory: work) }
            catch { throw SimulatorError.protocolViolation("cannot start the simulator's fax engine: \(error)") }
            reply(listen.connection, to: b3Req, .connectB3Conf(ncci: ncci, info: .noError))
            b3Up = true
            try await step(.connectB3ActiveInd(ncci: ncci, ncpi: []), "CONNECT_B3_ACTIVE_RESP") {
                if case .connectB3ActiveResp(ncci) = $0 { true } else { false }
            }
            var session = SoftFaxSession()
            let end = await runSoftFaxLine(listen, plci: plci, ncci: ncci, inbox: inbox, engine: engine, remote: remote, session: &session)
            let safe = String(state.withLock { $0.outgoing[index].calledNumber }.filter { $0.isNumber }.prefix(32))
            session.tiffPath = Self.saveTIFF(session.pages, in: remote.saveDirectory,
                                             name: "softfax-\(String(plci, radix: 16))-\(safe.isEmpty ? "unknown" : safe)-\(UUID().uuidString.prefix(8)).tif")
            let received = session
            update(index) { c in
                c.softFax = received
                c.pagesReported = received.pages.count
                if end == .gatewayB3Down || end == .gatewayHungUp { c.disconnectedByGateway = true }
            }
            b3Up = false
            let (reasonB3, reason) = try await endSoftFaxCall(listen, plci: plci, ncci: ncci, inbox: inbox, end: end, timeout: t)
            update(index) { c in
                c.reasonB3 = reasonB3
                c.reason = reason
                if reason == 0x3400 { c.disconnectedByGateway = true }
                c.endedAt = Date()
            }
        } catch is SoftFaxCallEnded {
            update(index) { $0.disconnectedByGateway = true }
            if b3Up {
                indicate(listen, .disconnectB3Ind(ncci: ncci, reasonB3: .noError, ncpi: []))
                _ = await nextOnLine(inbox, timeout: t) { if case .disconnectB3Resp(ncci) = $0 { true } else { false } }
            }
            await hangUp(0x3400)
        } catch {
            update(index) { $0.violations.append("\(error)"); if $0.endedAt == nil { $0.endedAt = Date() } }
        }
    }

    /// Damage that only a modem trained at some speed notices: dense bit errors on the gateway's audio after the
    /// first V.21 exchange. Calibrated against spandsp 0.0.6 (see SimulatorSoftFaxTests).
    static func trainingFailure(seed: UInt64) -> LineImpairment {
        LineImpairment(seed: seed, bitErrorRate: 0.002, direction: .fromGateway)
    }
}
