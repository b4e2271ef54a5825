import CAPITransport
import CapiProtocol
import CapiSimulator
import FaxgateCore
import Foundation
import Logging
import ServiceLifecycle
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Records what the transport reports and answers with a configurable decision.
actor RecordingHandler: ReceptionHandler {
    let directory: String
    var decision: @Sendable (IncomingCall, ReceptionSpoolFile) -> CallDecision
    private(set) var calls: [IncomingCall] = []
    private(set) var connected: [Int64: FaxSessionInfo] = [:]
    private(set) var ends: [Int64: CallEnd] = [:]
    private var nextID: Int64 = 1

    init(directory: String, decision: @escaping @Sendable (IncomingCall, ReceptionSpoolFile) -> CallDecision) {
        self.directory = directory; self.decision = decision
    }
    static func answering(_ directory: String) -> RecordingHandler {
        RecordingHandler(directory: directory) { call, spool in
            .answerFax(FaxAnswer(receptionID: Int64(spool.path.split(separator: "-").last!.split(separator: ".").first!)!,
                                 stationID: "+49 40 7654321", headline: "Faxgate test", fine: true,
                                 ringDelay: .milliseconds(50), spool: spool))
        }
    }
    func path(_ id: Int64) -> String { "\(directory)/reception-\(id).sff" }

    func decide(_ call: IncomingCall) async -> CallDecision {
        calls.append(call)
        let id = nextID; nextID += 1
        guard let spool = try? ReceptionSpoolFile(path: path(id)) else { return .reject(.normalClearing) }
        return decision(call, spool)
    }
    func faxConnected(receptionID: Int64, info: FaxSessionInfo) async { connected[receptionID] = info }
    func callEnded(receptionID: Int64, end: CallEnd) async { ends[receptionID] = end }

    func waitForEnd(_ id: Int64, timeout: Duration = .seconds(10)) async throws -> CallEnd {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let e = ends[id] { return e }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw SimulatorError.timeout("end of reception \(id)")
    }
}

/// libcapi20 keeps one control connection and its configuration per process, so every test here talks to
/// the same simulator (and the suite runs serially).
enum SharedController {
    static let home: TemporaryDirectory = try! TemporaryDirectory("capi-home")
    static let simulator: CapiSimulator = {
        let s = CapiSimulator(controllers: 1)
        try! s.start()
        return s
    }()
}

/// A tiny valid SFF document: header, `pages` pages of white lines with some MH data records.
func makeSFF(pages: Int, linesPerPage: Int = 300) -> [UInt8] {
    var d: [UInt8] = [0x53, 0x66, 0x66, 0x66, 0x01, 0x00, 0x00, 0x00, UInt8(pages), 0x00, 0x14, 0x00,
                      0, 0, 0, 0, 0, 0, 0, 0]
    for p in 0..<pages {
        d += [0xFE, 0x10, 0x01, 0x00, 0x00, 0x00, 0xC0, 0x06, UInt8(linesPerPage & 0xFF), UInt8(linesPerPage >> 8)]
        d += [UInt8](repeating: 0, count: 8)
        for line in 0..<linesPerPage {
            if line % 3 == 0 { d += [0x03, 0xB2, 0x59, 0x01] }          // one white line as MH data
            else { d += [UInt8(216 + 1 + (line + p) % 5)] }             // 1–5 white lines
        }
    }
    d += [0xFE, 0x00]
    return d
}

@Suite(.serialized) struct TransportIntegrationTests {
    let sim = SharedController.simulator
    let dir: TemporaryDirectory

    init() throws { dir = try TemporaryDirectory("capi-it") }

    func startTransport(_ handler: RecordingHandler, minimumBackoff: Duration = .seconds(1)) async throws -> Task<Void, Error> {
        var logger = Logger(label: "capi-test")
        logger.logLevel = .warning
        let transport = CAPIFaxTransport(
            settings: CAPITransportSettings(driver: "rcapi", host: "127.0.0.1", port: Int(sim.port), controllers: [],
                                            capiHome: SharedController.home.path, minimumBackoff: minimumBackoff),
            handler: handler, logger: logger)
        let task = Task { try await transport.run() }
        try await sim.waitForListen(timeout: .seconds(10))
        return task
    }

    func stop(_ task: Task<Void, Error>) async throws {
        task.cancel()
        _ = try? await task.value
        let deadline = ContinuousClock.now + .seconds(5)
        while sim.isListening && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!sim.isListening, "transport released its application")
    }

    @Test func receivesAFaxByteExactly() async throws {
        let handler = RecordingHandler.answering(dir.path)
        let task = try await startTransport(handler)
        sim.clearMessages()
        let document = makeSFF(pages: 2) + (0..<20000).map { UInt8(truncatingIfNeeded: $0 * 7) }   // > 7 blocks: exercises the window
        let result = try await sim.placeFaxCall(SimulatedFaxCall(
            from: "0301234567", to: "4711", document: document, callingNumberRestricted: false, rate: 9600, fine: true,
            pages: 2, remoteStationID: "+49 30 1234567"))
        #expect(result.accepted && result.alerted)
        #expect(result.bytesSent == document.count)
        #expect(result.blocksSent > 7)
        let end = try await handler.waitForEnd(1)
        #expect(end.reason == 0x3490 && end.reasonB3 == 0)
        #expect(end.session == FaxSessionInfo(bitRate: 9600, fine: true, pages: 2, remoteStationID: "+49 30 1234567", engine: .controller))
        #expect(end.succeeded)
        #expect(end.text.lowercased().contains("normal"), "text from capi_info2str: \(end.text)")
        let stored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.path(1))))
        #expect(stored == document)
        #expect(await handler.calls.first == IncomingCall(handle: result.plci, controller: 1, service: .fax, calledNumber: "4711",
                                                         callingNumber: "0301234567", callingNumberRestricted: false))
        #expect(await handler.connected[1]?.remoteStationID == "+49 30 1234567")

        // What the controller saw: LISTEN with fax CIP and call progress + called number info, ALERT before
        // CONNECT_RESP, B protocols 4/4/4 with our station id, every DATA_B3_IND answered.
        let fromGateway = sim.messagesFromGateway
        let names = fromGateway.map(\.name)
        let alert = try #require(names.firstIndex(of: "ALERT_REQ"))
        let connect = try #require(names.firstIndex(of: "CONNECT_RESP"))
        #expect(alert < connect)
        guard case .connectResp(_, 0, let bp?, _, _, _, _) = fromGateway[connect].body else { Issue.record("bad CONNECT_RESP"); return }
        #expect((bp.b1, bp.b2, bp.b3) == (4, 4, 4))
        #expect(bp.faxConfiguration == FaxB3Configuration(fine: true, stationID: "+49 40 7654321", headline: "Faxgate test"))
        let indications = sim.messages.filter { $0.direction == .toGateway }.compactMap(\.message).filter { $0.subcommand == .ind }
        for ind in indications {
            #expect(fromGateway.contains { $0.subcommand == .resp && $0.messageNumber == ind.messageNumber && $0.command == ind.command },
                    "\(ind.name) #\(ind.messageNumber) answered")
        }
        try await stop(task)
    }

    @Test func remoteAbortIsReportedWithReasonText() async throws {
        let handler = RecordingHandler.answering(dir.path)
        let task = try await startTransport(handler)
        let document = makeSFF(pages: 3, linesPerPage: 700)
        let result = try await sim.placeFaxCall(SimulatedFaxCall(
            from: "089111", to: "4711", document: document, rate: 14400, fine: false, remoteStationID: "ABORTER",
            fault: .remoteAbortAfterPage(1), shortDataB3Form: true))
        #expect(result.accepted)
        #expect(result.bytesSent > 0 && result.bytesSent < document.count)
        let end = try await handler.waitForEnd(1)
        #expect(end.reasonB3 == 0x3314)
        #expect(end.session.pages == 1)
        #expect(!end.succeeded)
        #expect(end.text.lowercased().contains("remote abort"), "\(end.text)")
        let stored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.path(1))))
        #expect(stored == Array(document.prefix(result.bytesSent)), "22-byte DATA_B3_IND payloads arrive intact")
        try await stop(task)
    }

    /// Number type and presentation travel from the simulator's CONNECT_IND through libcapi20 to the core's value.
    @Test func callerNumberTypeAndPresentationArriveTyped() async throws {
        let handler = RecordingHandler(directory: dir.path) { _, _ in .reject(.normalClearing) }
        let task = try await startTransport(handler)
        var national = SimulatedFaxCall(from: "301234567", to: "1234100", document: makeSFF(pages: 1))
        national.callingTypeAndPlan = 0x21
        national.calledTypeAndPlan = 0xC1
        _ = try await sim.placeFaxCall(national)
        var withheld = SimulatedFaxCall(from: "891112223", to: "4711", document: makeSFF(pages: 1), callingNumberRestricted: true)
        withheld.callingTypeAndPlan = 0x11
        _ = try await sim.placeFaxCall(withheld)
        var unavailable = SimulatedFaxCall(from: "", to: "4711", document: makeSFF(pages: 1))
        unavailable.callingPresentation = 0xC0
        _ = try await sim.placeFaxCall(unavailable)
        let calls = await handler.calls
        #expect(calls.count == 3)
        #expect(calls.first?.caller == PartyNumber(digits: "301234567", type: .national, presentation: .allowed))
        #expect(calls.first?.called == PartyNumber(digits: "1234100", type: .subscriber))
        #expect(calls.dropFirst().first?.caller == PartyNumber(digits: "891112223", type: .international, presentation: .restricted))
        #expect(calls.last?.caller == PartyNumber(digits: "", type: .unknown, presentation: .unavailable))
        try await stop(task)
    }

    @Test func rejectDecisionReachesTheController() async throws {
        let handler = RecordingHandler(directory: dir.path) { _, _ in .reject(.busy) }
        let task = try await startTransport(handler)
        let busy = try await sim.placeFaxCall(SimulatedFaxCall(from: "1", to: "999", document: makeSFF(pages: 1)))
        #expect(!busy.accepted && busy.rejectCode == 3 && busy.bytesSent == 0)
        await handler.setDecision { _, _ in .reject(.unallocatedNumber) }
        let unallocated = try await sim.placeFaxCall(SimulatedFaxCall(from: "1", to: "998", document: makeSFF(pages: 1)))
        #expect(unallocated.rejectCode == 0x3481)
        await handler.setDecision { _, _ in .ignore }
        #expect(try await sim.placeFaxCall(SimulatedFaxCall(from: "1", to: "997", document: [])).rejectCode == 1)
        #expect(await handler.ends.isEmpty)
        try await stop(task)
    }

    @Test func reRegistersAfterControllerLossWithoutSpinning() async throws {
        let handler = RecordingHandler.answering(dir.path)
        let task = try await startTransport(handler)
        let registrationsBefore = sim.registrations

        // Lose the controller in the middle of a call: the call is reported ended, its spool finished.
        let document = makeSFF(pages: 2)
        let dropped = try await sim.placeFaxCall(SimulatedFaxCall(from: "1", to: "4711", document: document,
                                                                  fault: .dropConnectionAfterBytes(3000)))
        #expect(dropped.connectionDropped)
        let lost = try await handler.waitForEnd(1)
        #expect(lost.text == "controller connection lost")
        #expect(!lost.succeeded)

        // Outage: the controller refuses for 5 s. The process must sleep, not spin.
        sim.refuseConnections(for: .seconds(5))
        sim.dropAllConnections()
        let attemptsBefore = sim.connectionAttempts
        let cpuBefore = processCPUSeconds()
        try await Task.sleep(for: .seconds(5))
        let cpu = processCPUSeconds() - cpuBefore
        let attempts = sim.connectionAttempts - attemptsBefore
        print("CPU during 5 s controller outage: \(String(format: "%.3f", cpu)) s, connection attempts: \(attempts)")
        #expect(cpu < 0.5)
        #expect(attempts >= 1 && attempts <= 6, "exponential back-off: \(attempts) attempts")

        // Back: a new REGISTER and LISTEN, and calls work again.
        try await sim.waitForListen(timeout: .seconds(20))
        #expect(sim.registrations > registrationsBefore)
        let again = try await sim.placeFaxCall(SimulatedFaxCall(from: "2", to: "4711", document: document))
        #expect(again.accepted && again.bytesSent == document.count)
        let end = try await handler.waitForEnd(2)
        #expect(end.succeeded)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.path(2)))) == document)
        try await stop(task)
    }
}

extension TransportIntegrationTests {
    @Test func gracefulShutdownLetsTheCallInFlightFinish() async throws {
        var logger = Logger(label: "capi-test")
        logger.logLevel = .warning
        let handler = RecordingHandler(directory: dir.path) { _, spool in
            .answerFax(FaxAnswer(receptionID: 1, stationID: "SHUTDOWN", headline: "", fine: false,
                                 ringDelay: .milliseconds(800), spool: spool))
        }
        let transport = CAPIFaxTransport(
            settings: CAPITransportSettings(port: Int(sim.port), capiHome: SharedController.home.path,
                                            shutdownGrace: .seconds(10)),
            handler: handler, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [transport], logger: logger))
        let running = Task { try await group.run() }
        try await sim.waitForListen(timeout: .seconds(10))
        sim.clearMessages()
        let document = makeSFF(pages: 1)
        let call = Task { try await sim.placeFaxCall(SimulatedFaxCall(from: "5", to: "4711", document: document)) }
        while await handler.calls.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        // Shut down while the call is still ringing.
        await group.triggerGracefulShutdown()
        let result = try await call.value
        #expect(result.accepted && result.bytesSent == document.count)
        try await running.value
        let end = try await handler.waitForEnd(1, timeout: .seconds(1))
        #expect(end.succeeded)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.path(1)))) == document)
        // Listening was switched off (CIP mask 0) before the call finished.
        let stopListen = sim.messagesFromGateway.firstIndex { if case .listenReq(_, _, 0, _, _, _) = $0.body { true } else { false } }
        let disconnectResp = sim.messagesFromGateway.firstIndex { $0.name == "DISCONNECT_RESP" }
        #expect(stopListen != nil && disconnectResp != nil && stopListen! < disconnectResp!)
        let deadline = ContinuousClock.now + .seconds(5)
        while sim.isListening && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!sim.isListening)
    }
}

extension RecordingHandler {
    func setDecision(_ d: @escaping @Sendable (IncomingCall, ReceptionSpoolFile) -> CallDecision) { decision = d }
}

func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
