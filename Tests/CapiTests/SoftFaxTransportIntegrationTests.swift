import CAPITransport
import CapiProtocol
import CapiSimulator
import FaxDocument
import FaxgateCore
import Foundation
import Logging
import SoftFax
import TestSupport
import Testing

/// Answers fax calls as fax and voice calls as voicemail with a fax fallback; records everything reported.
actor SoftFaxRecordingHandler: ReceptionHandler {
    let directory: String
    private(set) var calls: [IncomingCall] = []
    private(set) var connected: [Int64: FaxSessionInfo] = [:]
    private(set) var ends: [Int64: CallEnd] = [:]
    private(set) var voiceEnds: [Int64: VoiceCallEnd] = [:]
    private(set) var switched: [Int64: String] = [:]
    private var nextID: Int64 = 1
    let limits: ReceptionLimits?

    init(directory: String, limits: ReceptionLimits? = nil) { self.directory = directory; self.limits = limits }
    func faxPath(_ id: Int64) -> String { "\(directory)/soft-\(id).sff" }

    func decide(_ call: IncomingCall) async -> CallDecision {
        calls.append(call)
        let id = nextID; nextID += 1
        if call.service == .voice {
            guard let recording = try? ReceptionSpoolFile(path: "\(directory)/soft-\(id).alaw") else { return .reject(.normalClearing) }
            // A 3 s greeting (silence and a tone): long enough that the caller's CNG arrives while it plays.
            let greeting = (0..<24_000).map { i in i % 40 < 20 ? UInt8(0xAB) : UInt8(0x2A) }
            return .answerVoice(VoiceAnswer(receptionID: id, greeting: greeting, maxSeconds: 60, silenceSeconds: 0, recording: recording,
                                            faxFallback: .init(stationID: "+49 40 7654321", headline: "Faxgate", fine: true,
                                                               spoolPath: faxPath(id))))
        }
        let spool: ReceptionSpoolFile
        do {
            spool = try limits.map { try ReceptionSpoolFile(path: faxPath(id), limits: $0) } ?? ReceptionSpoolFile(path: faxPath(id))
        } catch { return .reject(.normalClearing) }
        return .answerFax(FaxAnswer(receptionID: id, stationID: "+49 40 7654321", headline: "Faxgate test", fine: true, spool: spool))
    }
    func faxConnected(receptionID: Int64, info: FaxSessionInfo) async { connected[receptionID] = info }
    func callEnded(receptionID: Int64, end: CallEnd) async { ends[receptionID] = end }
    func voiceEnded(receptionID: Int64, end: VoiceCallEnd) async { voiceEnds[receptionID] = end }
    func voiceSwitchedToFax(receptionID: Int64, spoolPath: String) async { switched[receptionID] = spoolPath }

    func waitForEnd(_ id: Int64, timeout: Duration = .seconds(30)) async throws -> CallEnd {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let e = ends[id] { return e }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw SimulatorError.timeout("end of reception \(id)")
    }
}

/// Test pages with structure a codec can get wrong: bars, a checkerboard band, pseudo-random "text" blocks and a
/// diagonal, at fine or normal resolution. Short pages keep the line time (and the test) small.
func softFaxTestPage(seed: UInt64, height: Int = 240, resolution: VerticalResolution = .fine) -> FaxPage {
    let width = FaxPage.standardWidth, rowBytes = width / 8
    var bits = [UInt8](repeating: 0, count: rowBytes * height)
    var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    func random() -> UInt64 { state ^= state << 13; state ^= state >> 7; state ^= state << 17; return state }
    for y in 0..<height {
        for x in 0..<rowBytes {
            var b: UInt8 = 0
            if y < 12 { b = 0xFF }                                                  // a solid bar
            else if (40..<60).contains(y) { b = (y / 4 + x) % 2 == 0 ? 0xF0 : 0x0F }   // checkerboard band
            else if y > 80, (x / 12) % 3 == 0, (y / 16) % 2 == 0 { b = UInt8(truncatingIfNeeded: random()) & 0x7E }   // "text"
            bits[y * rowBytes + x] = b
        }
        let d = (y * 7) % width
        bits[y * rowBytes + d / 8] |= 0x80 >> UInt8(d % 8)                          // a diagonal
    }
    return FaxPage(bitmap: bits, width: width, height: height, resolution: resolution)
}

/// The software fax engine through the real libcapi20 against a simulator that reports no T.30 (like a FRITZ!Box)
/// and has a spandsp fax machine on the other side of the line. Part of the serialized suite: libcapi20 holds one
/// driver configuration per process, re-read after a release.
extension TransportIntegrationTests {
    func startSoftTransport(_ box: CapiSimulator, handler: any ReceptionHandler, engine: CAPIFaxEngineSetting = .auto,
                            answerVoice: Bool = false) async throws -> (CAPIFaxTransport, Task<Void, Error>, TemporaryDirectory) {
        var logger = Logger(label: "capi-softfax-test")
        logger.logLevel = .warning
        let home = try TemporaryDirectory("capi-softfax-home")
        var settings = CAPITransportSettings(driver: "rcapi", host: "127.0.0.1", port: Int(box.port), controllers: [],
                                             capiHome: home.path)
        settings.faxEngine = engine
        settings.answerVoice = answerVoice
        settings.softFaxDirectory = dir.path + "/softfax"
        let transport = CAPIFaxTransport(settings: settings, handler: handler, logger: logger)
        let task = Task { try await transport.run() }
        try await box.waitForListen(timeout: .seconds(10))
        return (transport, task, home)
    }

    func stopSoft(_ task: Task<Void, Error>, _ box: CapiSimulator) async {
        task.cancel()
        _ = try? await task.value
        let deadline = ContinuousClock.now + .seconds(5)
        while box.isListening && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        box.stop()
    }

    @Test func softwareEngineReceivesAFaxPixelIdentical() async throws {
        let box = CapiSimulator(controllers: 1, profile: .transparent)
        try box.start()
        let handler = SoftFaxRecordingHandler(directory: dir.path)
        let (transport, task, _) = try await startSoftTransport(box, handler: handler)
        #expect(await transport.resolvedFaxEngines() == [1: .software], "auto: the profile has no T.30")

        let pages = [softFaxTestPage(seed: 1), softFaxTestPage(seed: 2, height: 160, resolution: .normal)]
        let result = try await box.placeSoftFaxCall(SimulatedSoftFaxCall(
            from: "0301234567", to: "4711", pages: pages, remote: SoftFaxRemote(ident: "+49 30 1234567")))
        #expect(result.accepted)
        #expect(result.bProtocol == .transparentVoice, "answered with B 1/1/0")
        #expect(result.engineResult?.succeeded == true, "sender: \(String(describing: result.engineResult))")
        #expect(result.session?.violations == [], "\(result.session?.violations ?? [])")
        #expect(result.underruns == 0, "the gateway's modem kept up with the line")

        let end = try await handler.waitForEnd(1)
        #expect(end.succeeded, "\(end.text)")
        #expect(end.reasonB3 == 0)
        #expect(end.session.engine == .software)
        #expect(end.session.pages == 2)
        #expect(end.session.remoteStationID == "+49 30 1234567")
        #expect(end.session.failure == nil)
        #expect(end.session.pageStatistics.map(\.page) == [1, 2])
        #expect(end.session.bitRate == 14400 && end.session.ecm == true)
        #expect(await handler.connected[1]?.engine == .software)

        // The spool holds the pages as SFF, pixel for pixel what the fax machine sent.
        let stored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.faxPath(1))))
        let document = try SFFReader.read(stored)
        #expect(document.problems.isEmpty, "\(document.problems)")
        #expect(document.pages.count == 2)
        for (got, sent) in zip(document.pages, pages) {
            #expect(got.resolution == sent.resolution && got.height == sent.height)
            #expect(got == sent, "page differs")
        }
        await stopSoft(task, box)
    }

    @Test func softwareEngineReceptionOverItsPageLimitHangsUpAndKeepsTheWholePages() async throws {
        let box = CapiSimulator(controllers: 1, profile: .transparent)
        try box.start()
        let handler = SoftFaxRecordingHandler(directory: dir.path, limits: ReceptionLimits(maxPages: 1))
        let (_, task, _) = try await startSoftTransport(box, handler: handler)
        let pages = (1...3).map { softFaxTestPage(seed: UInt64(20 + $0), height: 60) }
        let result = try await box.placeSoftFaxCall(SimulatedSoftFaxCall(from: "0301234567", to: "4711", pages: pages))
        #expect(result.session?.endedBy == .gateway, "the gateway hung up")
        #expect(result.engineResult?.succeeded != true)
        let end = try await handler.waitForEnd(1)
        #expect(end.cause == .limitExceeded && !end.succeeded)
        #expect(end.text.contains("1 pages"), "\(end.text)")
        let document = try SFFReader.read(try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.faxPath(1)))))
        #expect(document.pages == [pages[0]], "the page within the limit, whole")
        await stopSoft(task, box)
    }

    @Test func softwareEngineReceivesTwoFaxesAtOnceAndRecoversLostBlocksWithECM() async throws {
        let box = CapiSimulator(controllers: 1, profile: .transparent)
        try box.start()
        let handler = SoftFaxRecordingHandler(directory: dir.path)
        let (_, task, _) = try await startSoftTransport(box, handler: handler)
        let clean = [softFaxTestPage(seed: 31, height: 200)]
        let lossy = [softFaxTestPage(seed: 32, height: 1600)]
        // Blocks towards the gateway vanish at random once the handshake is through (seeded: the same damage each run).
        let loss = LineImpairment(seed: 7, blockLossRate: 0.01, direction: .toGateway, startAfterSeconds: 14)
        async let a = box.placeSoftFaxCall(SimulatedSoftFaxCall(from: "0301111111", to: "4711", pages: clean))
        async let b = box.placeSoftFaxCall(SimulatedSoftFaxCall(from: "0302222222", to: "4712", pages: lossy,
                                                                remote: SoftFaxRemote(impairment: loss)))
        let (ra, rb) = try await (a, b)
        #expect(ra.engineResult?.succeeded == true && rb.engineResult?.succeeded == true)
        #expect((rb.session?.blocksLost ?? 0) > 0, "the line did lose blocks")
        // Receptions are numbered in the order the calls were decided: find each by its caller.
        let calls = await handler.calls
        for (number, pages) in [("0301111111", clean), ("0302222222", lossy)] {
            let index = try #require(calls.firstIndex { $0.callingNumber == number })
            let id = Int64(index + 1)
            let end = try await handler.waitForEnd(id)
            #expect(end.succeeded, "\(number): \(end.text)")
            let document = try SFFReader.read(try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.faxPath(id)))))
            #expect(document.pages == pages, "\(number): pixel-identical")
            if number == "0302222222" {
                #expect(end.session.ecm == true)
                #expect((end.session.ecmRetransmittedFrames ?? 0) > 0, "ECM asked for the lost frames again")
            }
        }
        await stopSoft(task, box)
    }

    @Test func softwareEngineSendsAFaxPixelIdentical() async throws {
        let box = CapiSimulator(controllers: 1, profile: .transparent)
        try box.start()
        let handler = SoftFaxRecordingHandler(directory: dir.path)
        let (transport, task, _) = try await startSoftTransport(box, handler: handler)
        box.setDefaultOutgoingBehaviour(.answerSoftFax(SoftFaxAnswer(ident: "REMOTE SOFT")))
        let pages = [softFaxTestPage(seed: 3), softFaxTestPage(seed: 4, height: 120)]
        let fax = OutgoingFax(jobID: 9, dialString: DialString("0301234567")!, callingNumber: "4711", stationID: "+49 40 7654321",
                              headline: "Faxgate", fine: true, sff: SFFWriter.write(pages), answerTimeout: .seconds(10),
                              modem: ModemSettings(maxBitRate: 9600, ecm: true))
        let outcome = await transport.send(fax)
        #expect(outcome.cause == .success, "\(outcome.text)")
        #expect(outcome.pagesSent == 2)
        #expect(outcome.session.engine == .software && outcome.session.failure == nil)
        #expect(outcome.session.bitRate == 9600, "the job's modem limit holds")
        #expect(outcome.session.remoteStationID == "REMOTE SOFT")
        #expect(outcome.session.pageStatistics.count == 2)

        let call = try #require(box.outgoingCalls.first)
        #expect(call.bProtocol == .transparentVoice, "dialled with B 1/1/0")
        let remote = try #require(call.softFax)
        #expect(remote.result?.succeeded == true, "\(String(describing: remote.result))")
        #expect(remote.violations.isEmpty, "\(remote.violations)")
        #expect(remote.underruns == 0, "the gateway's modem kept up with the line")
        #expect(remote.pages.count == 2)
        // spandsp prints the headline as extra rows above each page (32 at fine resolution); below it every pixel
        // is the job's.
        for (got, sent) in zip(remote.pages, pages) {
            let headerRows = got.height - sent.height
            #expect(headerRows == 32 && got.resolution == sent.resolution, "\(got.height) rows for \(sent.height)")
            guard headerRows >= 0 else { continue }
            #expect(got.bitmap[(headerRows * got.rowBytes)...].elementsEqual(sent.bitmap), "page differs below the header")
            #expect(got.bitmap[..<(headerRows * got.rowBytes)].contains { $0 != 0 }, "the headline is printed")
        }
        await stopSoft(task, box)
    }

    @Test func softwareEngineSendsWithoutHeadlineExactlyThePages() async throws {
        let box = CapiSimulator(controllers: 1, profile: .transparent)
        try box.start()
        let handler = SoftFaxRecordingHandler(directory: dir.path)
        let (transport, task, _) = try await startSoftTransport(box, handler: handler)
        box.setDefaultOutgoingBehaviour(.answerSoftFax(SoftFaxAnswer(ecm: false)))
        let pages = [softFaxTestPage(seed: 8, height: 100, resolution: .normal)]
        let fax = OutgoingFax(jobID: 11, dialString: DialString("0301234567")!, stationID: "+49 40 7654321", headline: "",
                              fine: false, sff: SFFWriter.write(pages), answerTimeout: .seconds(10))
        let outcome = await transport.send(fax)
        #expect(outcome.cause == .success, "\(outcome.text)")
        #expect(outcome.session.ecm == false, "the remote has no ECM")
        let remote = try #require(box.outgoingCalls.first?.softFax)
        #expect(remote.pages == pages, "pixel-identical")
        await stopSoft(task, box)
    }

    @Test func softwareEngineFailureIsTypedWithAClearText() async throws {
        let box = CapiSimulator(controllers: 1, profile: .transparent)
        try box.start()
        let handler = SoftFaxRecordingHandler(directory: dir.path)
        let (transport, task, _) = try await startSoftTransport(box, handler: handler)
        box.setDefaultOutgoingBehaviour(.answerSoftFax(SoftFaxAnswer(failTraining: true)))
        let fax = OutgoingFax(jobID: 10, dialString: DialString("0301234567")!, stationID: "+49 40 7654321", headline: "Faxgate",
                              fine: true, sff: SFFWriter.write([softFaxTestPage(seed: 5, height: 80)]), answerTimeout: .seconds(10))
        let outcome = await transport.send(fax)
        #expect(outcome.cause == .faxProtocolError, "\(outcome.text)")
        #expect(outcome.pagesSent == 0)
        let failure = try #require(outcome.session.failure)
        #expect(failure.kind == .trainingFailed, "\(failure)")
        // The simulator ruins the gateway's audio: depending on where T.30 gives up, the training fails or the
        // remote ends the session; either way typed, and the text carries the modem's own words.
        #expect([.trainingFailed, .remoteDisconnected, .noResponse].contains(failure.kind), "\(failure)")
        #expect(!failure.text.isEmpty && outcome.text.contains(failure.text), "\(outcome.text)")
        #expect(outcome.text.contains("0 of 1 page"), "\(outcome.text)")
        await stopSoft(task, box)
    }

    @Test func softwareEngineSwitchesAVoiceCallToFaxOnCNG() async throws {
        let box = CapiSimulator(controllers: 1, profile: .transparent)
        try box.start()
        let handler = SoftFaxRecordingHandler(directory: dir.path)
        let (_, task, _) = try await startSoftTransport(box, handler: handler, answerVoice: true)
        let pages = [softFaxTestPage(seed: 6, height: 120)]
        let result = try await box.placeSoftFaxCall(.voiceCall(from: "0301234567", to: "4711", pages: pages))
        #expect(result.accepted)
        #expect(result.engineResult?.succeeded == true, "\(String(describing: result.engineResult))")
        #expect(result.session?.selectBProtocol == [], "the channel was already transparent: no SELECT_B_PROTOCOL")
        let end = try await handler.waitForEnd(1)
        #expect(end.succeeded, "\(end.text)")
        #expect(await handler.switched[1] == (await handler.faxPath(1)))
        #expect(await handler.voiceEnds[1] == nil, "a switched call is no voice message")
        // Some of the greeting was played before the tone was heard.
        #expect((result.session?.gatewayAudio.count ?? 0) > 0)
        let document = try SFFReader.read(try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.faxPath(1)))))
        #expect(document.pages == pages)
        await stopSoft(task, box)
    }

    @Test func controllerEngineConfiguredOnATransparentBoxIsRefusedNotMisused() async throws {
        // `fax_engine: controller` on a box without T.30: we answer 4/4/4 as told, the box refuses it; the call
        // ends as a failed reception instead of hanging.
        let box = CapiSimulator(controllers: 1, profile: .transparent)
        try box.start()
        let handler = SoftFaxRecordingHandler(directory: dir.path)
        let (transport, task, _) = try await startSoftTransport(box, handler: handler, engine: .controller)
        #expect(await transport.resolvedFaxEngines() == [1: .controller])
        let result = try await box.placeSoftFaxCall(SimulatedSoftFaxCall(from: "0301234567", to: "4711", pages: [softFaxTestPage(seed: 7, height: 40)]))
        #expect(result.bProtocol.map { [$0.b1, $0.b2, $0.b3] } == [4, 4, 4])
        #expect(!result.accepted)
        let end = try await handler.waitForEnd(1)
        #expect(!end.succeeded)
        await stopSoft(task, box)
    }
}
