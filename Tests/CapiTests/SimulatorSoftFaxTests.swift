// The simulator as a controller without fax firmware, with a spandsp fax machine on a transparent line, tested
// through the real libcapi20 against a minimal application (written here) that answers or calls with B 1/1/0
// and runs its own SoftFax engine — what the gateway's software mode does, reduced to the bones.
import Capi20
import CapiProtocol
@testable import CapiSimulator
import FaxDocument
import Foundation
import SoftFax
import TestSupport
import Testing
import VoiceAudio

/// Two small pages with structure in every row group (a photo-like ramp would only slow the line down).
func softFaxTestPages() -> [FaxPage] {
    (0..<2).map { p in
        let width = 1728, height = 120, rowBytes = width / 8
        var bits = [UInt8](repeating: 0, count: rowBytes * height)
        for y in 0..<height {
            for x in 0..<width where (x / (8 + p * 4) + y / 6) % 3 == 0 || abs(x - y * 9) < 3 || (y % 40 == 0 && x > 100 * p) {
                bits[y * rowBytes + x / 8] |= 0x80 >> UInt8(x % 8)
            }
        }
        return FaxPage(bitmap: bits, width: width, height: height, resolution: p == 0 ? .fine : .normal)
    }
}

/// What the minimal application did and saw.
struct MiniGatewayOutcome: Sendable {
    var pages: [FaxPage] = []
    var result: FaxEngineResult?
    var events: [FaxEngineEvent] = []
    var connectConf: CapiInfo?
    var disconnectReason: CapiInfo?
    var names: [String] = []
    var facilityIndications = 0
    /// Voice: line bytes received before the CNG was recognised.
    var cngHeardAfter: Int?
    var requestsSent = 0
    var skipped = 0
}

/// A CAPI application in software-fax mode: one call, B 1/1/0, every DATA_B3_IND answered with as many samples
/// of the engine's audio. With `greeting` it first plays that (a voicemail greeting) and starts the engine only
/// when it hears CNG, as the gateway does on a controller that reports no fax tone.
struct MiniGateway {
    enum Role: Sendable {
        case answer(BProtocol)
        case call(number: String, BProtocol)
    }
    var role: Role
    /// Engine options; `pages` non-nil = it sends.
    var options: FaxEngineOptions?
    var pages: [FaxPage]?
    var greeting: [UInt8]?
    var work: String
    /// A sluggish application: every n-th DATA_B3_IND gets no audio back (the line must notice).
    var skipReplyEvery: Int? = nil

    func run(_ link: CapiLink) async throws -> MiniGatewayOutcome {
        var out = MiniGatewayOutcome()
        var engine: FaxEngine?
        let detector = greeting != nil ? ConnectToneDetector(.cng) : nil
        var greetingOffset = 0
        var received = 0
        var number: UInt16 = 0x200
        var handle: UInt16 = 0
        var plci: UInt32 = 0
        var tail: Int? = nil
        var hungUp = false
        func send(_ body: CapiMessageBody) {
            number &+= 1
            link.send(CapiMessage(applID: 0, messageNumber: number, body: body))
        }
        func respond(_ m: CapiMessage) { if let r = m.simpleResponse() { link.send(r) } }
        func startEngine() throws {
            guard let options else { return }
            engine = try FaxEngine(options: options, send: pages, workDirectory: work)
        }
        func collect() {
            guard let engine else { return }
            for e in engine.takeEvents() {
                out.events.append(e)
                if case .page(_, let page?) = e { out.pages.append(page) }
                if case .finished(let r) = e { out.result = r }
            }
        }
        if case .call(let called, let bp) = role {
            send(.connectReq(controller: 1, cip: 17, called: CalledPartyNumber(digits: called), calling: nil, calledSubaddress: [],
                             callingSubaddress: [], bProtocol: bp, bc: [], llc: [], hlc: [], additionalInfo: []))
        }
        for await event in link.events {
            guard case .message(let m) = event else { throw SimulatorError.connectionLost("libcapi20 link") }
            out.names.append(m.name)
            switch m.body {
            case .connectInd(let p, _, _, _, _, _, _, _, _, _):
                plci = p
                guard case .answer(let bp) = role else { continue }
                link.send(CapiMessage(applID: m.applID, messageNumber: m.messageNumber, body: .connectResp(
                    plci: p, reject: 0, bProtocol: bp, connectedNumber: [], connectedSubaddress: [], llc: [], additionalInfo: [])))
            case .connectConf(let p, let info):
                plci = p
                out.connectConf = info
                if info != .noError { return out }
            case .connectActiveInd:
                respond(m)
                if case .call = role { send(.connectB3Req(plci: plci, ncpi: [])) }
            case .connectB3Ind(let n, _):
                link.send(CapiMessage(applID: m.applID, messageNumber: m.messageNumber, body: .connectB3Resp(ncci: n, reject: 0, ncpi: [])))
            case .connectB3ActiveInd:
                respond(m)
                if greeting == nil { try startEngine() }
            case .dataB3Ind(let n, _, _, let data):
                respond(m)
                let pcm = G711.pcm(fromLine: data)
                var reply: [UInt8]
                if let engine {
                    engine.receive(pcm)
                    collect()
                    reply = G711.lineBytes(engine.transmit(count: data.count))
                } else {
                    received += data.count
                    if let detector, detector.feed(pcm) {
                        out.cngHeardAfter = received
                        try startEngine()
                    }
                    let g = greeting ?? []
                    reply = Array(g[min(greetingOffset, g.count)..<min(greetingOffset + data.count, g.count)])
                    greetingOffset += reply.count
                    reply += repeatElement(G711.lineSilence, count: data.count - reply.count)
                }
                let skip = skipReplyEvery.map { out.requestsSent > 0 && (out.requestsSent + out.skipped) % $0 == 0 } ?? false
                if skip { out.skipped += 1 }
                if !hungUp && !skip {
                    handle &+= 1
                    send(.dataB3Req(ncci: n, handle: handle, flags: 0, data: reply))
                    out.requestsSent += 1
                }
                // The sending side hangs up shortly after its last frame (DCN), as fax machines do.
                if let engine, engine.isFinished, pages != nil, !hungUp {
                    tail = (tail ?? 25) - 1
                    if tail! <= 0 { hungUp = true; send(.disconnectReq(plci: plci, additionalInfo: [])) }
                }
            case .disconnectB3Ind:
                respond(m)
                engine?.lineDisconnected()
                collect()
            case .disconnectInd(_, let reason):
                respond(m)
                out.disconnectReason = reason
                engine?.lineDisconnected()
                collect()
                return out
            case .other(.facility, .ind, _):
                out.facilityIndications += 1
                respond(m)
            default:
                respond(m)
            }
        }
        throw SimulatorError.connectionLost("libcapi20 events ended")
    }
}

/// Registers on `sim` through libcapi20's rcapi driver and listens for fax and voice calls.
func registerMiniGateway(_ sim: CapiSimulator, home: TemporaryDirectory) async throws -> (CapiLink, CapiRegistration) {
    let link = CapiLink(configuration: CapiLinkConfiguration(driver: "rcapi", host: "127.0.0.1", port: Int(sim.port), home: home.path))
    let registration = try await link.register(maxLogicalConnection: { _ in 2 })
    link.send(CapiMessage(applID: 0, messageNumber: 1, body: .listenReq(
        controller: 1, infoMask: 0, cipMask: 1 << 1 | 1 << 4 | 1 << 16 | 1 << 17, cipMask2: 0, callingNumber: [], callingSubaddress: [])))
    try await sim.waitForListen(timeout: .seconds(10))
    return (link, registration)
}

func finishMiniGateway(_ link: CapiLink) async {
    await link.release()
    link.shutdown()
}

/// `tiffcmp` (libtiff's tools, not ours) on two page lists written as TIFF: 0 = same pixels.
func tiffcmpStatus(_ a: [FaxPage], _ b: [FaxPage], in dir: TemporaryDirectory, label: String) throws -> Int32 {
    let pa = dir.path + "/\(label)-a.tif", pb = dir.path + "/\(label)-b.tif"
    try TIFFWriter.write(a, to: pa, compression: .g4)
    try TIFFWriter.write(b, to: pb, compression: .g4)
    return try runTool(faxTool("tiffcmp"), [pa, pb], check: false).status
}

func tiffcmpStatus(path a: String, _ b: String) throws -> Int32 {
    try runTool(faxTool("tiffcmp"), [a, b], check: false).status
}

/// Runs the application alongside a simulator action (the application must be listening first).
func withMiniGateway<T: Sendable>(_ gateway: MiniGateway, _ link: CapiLink, timeout: Duration = .seconds(60),
                                  _ action: @escaping @Sendable () async throws -> T) async throws -> (T, MiniGatewayOutcome) {
    let app = Task { try await gateway.run(link) }
    let watchdog = Task {
        try await Task.sleep(for: timeout)
        link.shutdown()   // ends the event stream: the test fails instead of hanging
    }
    defer { watchdog.cancel() }
    let value = try await action()
    let outcome = try await app.value
    return (value, outcome)
}

extension TransportIntegrationTests {
    @Test func softFaxCallReachesAMinimalSoftwareGatewayPixelIdentical() async throws {
        let sim = CapiSimulator(profile: .transparent)
        try sim.start()
        defer { sim.stop() }
        let home = try TemporaryDirectory("capi-softfax")
        let (link, registration) = try await registerMiniGateway(sim, home: home)
        // What the application learns from GET_PROFILE: transparent B-channels, no T.30 anywhere.
        let profile = try #require(registration.profiles[1])
        #expect(!profile.supportsT30 && !profile.supportsFaxExtended && profile.b1Support & 0x10 == 0 && profile.b2Support & 0x10 == 0)
        #expect(profile.b1Support & 0x2 != 0 && profile.b2Support & 0x2 != 0 && profile.b3Support & 0x1 != 0)

        let pages = softFaxTestPages()
        let gateway = MiniGateway(role: .answer(BProtocol(b1: 1, b2: 1, b3: 0)),
                                  options: FaxEngineOptions(calling: false, localIdent: "+49 40 1111"), work: home.path)
        let (result, app) = try await withMiniGateway(gateway, link) {
            try await sim.placeSoftFaxCall(SimulatedSoftFaxCall(
                from: "0301234567", to: "4711", pages: pages, remote: SoftFaxRemote(ident: "+49 30 2222", clock: .lockstep())))
        }
        await finishMiniGateway(link)

        let bp = try #require(result.bProtocol)
        #expect((bp.b1, bp.b2, bp.b3) == (1, 1, 0))
        let session = try #require(result.session)
        #expect(session.result?.succeeded == true, "\(String(describing: session.result))")
        #expect(session.result?.remoteIdent == "+49 40 1111")
        #expect(result.pagesSent == 2)
        #expect(app.result?.succeeded == true && app.result?.remoteIdent == "+49 30 2222", "\(String(describing: app.result))")
        #expect(app.pages == pages, "pixel-identical pages at the application")
        #expect(try tiffcmpStatus(app.pages, pages, in: home, label: "in") == 0)
        // Lockstep never starves the application's modem, and every DATA_B3_REQ got its DATA_B3_CONF.
        #expect(result.underruns == 0)
        #expect(session.violations.isEmpty, "\(session.violations)")
        #expect(session.requestsReceived <= app.requestsSent && app.requestsSent - session.requestsReceived <= 7)
        #expect(app.names.filter { $0 == "DATA_B3_CONF" }.count == session.requestsConfirmed)
        #expect(session.requestsReceived - session.requestsConfirmed <= 7)
        #expect(session.indicationsDropped == 0 && session.indicationsSent == app.names.filter { $0 == "DATA_B3_IND" }.count)
        // Audio only: 160-byte blocks of A-law, and the remote hung up after its DCN.
        let indications = sim.messages.compactMap(\.message).compactMap { m -> Int? in
            if case .dataB3Ind(_, _, _, let d) = m.body { d.count } else { nil }
        }
        #expect(Set(indications) == [160])
        #expect(session.endedBy == .remote && result.reason == 0x3490)
        #expect(app.disconnectReason == CapiInfo(0x3490))
    }

    @Test func transparentControllerRefusesFirmwareFaxBothWays() async throws {
        let sim = CapiSimulator(profile: .transparent)
        try sim.start()
        defer { sim.stop() }
        let home = try TemporaryDirectory("capi-softfax")
        let (link, _) = try await registerMiniGateway(sim, home: home)
        let fax = BProtocol.fax(FaxB3Configuration(fine: true, stationID: "+49 40 1111", headline: "x"))

        // Answering with firmware fax: the controller clears the call with 0x3001.
        let answering = MiniGateway(role: .answer(fax), options: nil, work: home.path)
        let (result, app) = try await withMiniGateway(answering, link) {
            try await sim.placeSoftFaxCall(SimulatedSoftFaxCall(from: "030", to: "4711", pages: softFaxTestPages()))
        }
        #expect(result.refusedInfo == 0x3001 && result.session == nil)
        #expect(app.disconnectReason == CapiInfo(0x3001))
        #expect(await link.infoText(0x3001).lowercased().contains("b1"), "libcapi20 names the refusal")

        // Calling with firmware fax: CONNECT_CONF refuses it, no call is set up.
        sim.setDefaultOutgoingBehaviour(.answerSoftFax())
        let calling = MiniGateway(role: .call(number: "0401234", fax), options: nil, work: home.path)
        let (_, out) = try await withMiniGateway(calling, link) { () }
        await finishMiniGateway(link)
        #expect(out.connectConf == CapiInfo(0x3001))
        let call = try #require(sim.outgoingCalls.first)
        #expect(call.refusedInfo == 0x3001 && call.softFax == nil && call.isFinished)

        // The firmware profile still takes 4/4/4 (the existing behaviour).
        #expect(CapiSimulator(profile: .faxAndVoice).refusal(for: fax) == 0)
        #expect(ControllerProfile.faxAndVoice.capiProfile(controllers: 1).supportsT30)
    }

    @Test func softFaxAnswerReceivesTheApplicationsPagesWithoutECMAtV29() async throws {
        let sim = CapiSimulator(profile: .transparent)
        try sim.start()
        defer { sim.stop() }
        let home = try TemporaryDirectory("capi-softfax")
        let (link, _) = try await registerMiniGateway(sim, home: home)
        let pages = softFaxTestPages()
        sim.setOutgoingBehaviour(for: "0401234", [.answerSoftFax(SoftFaxAnswer(
            ident: "+49 40 7654321", ecm: false, maxModem: .v29, saveDirectory: home.path + "/received"))])
        let sender = MiniGateway(role: .call(number: "0401234", BProtocol(b1: 1, b2: 1, b3: 0)),
                                 options: FaxEngineOptions(calling: true, localIdent: "+49 30 3333"), pages: pages, work: home.path)
        let (_, app) = try await withMiniGateway(sender, link) { () }
        await finishMiniGateway(link)
        #expect(app.connectConf == .noError)
        #expect(app.result?.succeeded == true && app.result?.pages == 2, "\(String(describing: app.result))")

        let calls = try await sim.waitForOutgoingCalls(1, timeout: .seconds(10))
        let call = try #require(calls.first)
        let soft = try #require(call.softFax)
        #expect(soft.result?.succeeded == true, "\(String(describing: soft.result))")
        #expect(soft.result?.bitRate == 9600 && soft.result?.ecm == false && soft.result?.remoteIdent == "+49 30 3333")
        #expect(soft.pages == pages, "pixel-identical at the simulator's receiver")
        let tiff = try #require(soft.tiffPath)
        try TIFFWriter.write(pages, to: home.path + "/sent.tif", compression: .g4)
        #expect(try tiffcmpStatus(path: tiff, home.path + "/sent.tif") == 0)
        #expect(call.pagesReported == 2 && call.violations.isEmpty, "\(call.violations)")
        #expect(call.reasonB3 == 0 && call.isFinished)
    }

    @Test func trainingFailureOnTheFirstAttemptThenTheSecondGetsThrough() async throws {
        let sim = CapiSimulator(profile: .transparent)
        try sim.start()
        defer { sim.stop() }
        let home = try TemporaryDirectory("capi-softfax")
        let (link, _) = try await registerMiniGateway(sim, home: home)
        let pages = softFaxTestPages()
        sim.setOutgoingBehaviour(for: "0401234", [.answerSoftFax(SoftFaxAnswer(failTraining: true)), .answerSoftFax()])
        var results: [FaxEngineResult?] = []
        for attempt in 0..<2 {
            let sender = MiniGateway(role: .call(number: "0401234", BProtocol(b1: 1, b2: 1, b3: 0)),
                                     options: FaxEngineOptions(calling: true, localIdent: "+49 30 3333"), pages: pages,
                                     work: home.path + "/\(attempt)")
            try FileManager.default.createDirectory(atPath: home.path + "/\(attempt)", withIntermediateDirectories: true)
            let (_, app) = try await withMiniGateway(sender, link) { () }
            results.append(app.result)
        }
        await finishMiniGateway(link)
        #expect(results[0]?.kind == .trainingFailed, "\(String(describing: results[0]))")
        #expect(results[1]?.succeeded == true, "\(String(describing: results[1]))")
        let calls = try await sim.waitForOutgoingCalls(2, timeout: .seconds(10))
        #expect(calls[0].softFax?.pages.isEmpty == true && calls[0].softFax?.result?.succeeded == false)
        #expect(calls[1].softFax?.pages == pages)
    }

    @Test func faxMachineCallingAVoiceNumberIsHeardAndAnsweredInSoftware() async throws {
        let sim = CapiSimulator(profile: .transparent)
        try sim.start()
        defer { sim.stop() }
        let home = try TemporaryDirectory("capi-softfax")
        let (link, _) = try await registerMiniGateway(sim, home: home)
        let pages = softFaxTestPages()
        // One second of a 440 Hz greeting.
        let greeting = G711.lineBytes((0..<8000).map { Int16(6000 * sin(2 * Double.pi * 440 * Double($0) / 8000)) })
        let gateway = MiniGateway(role: .answer(BProtocol(b1: 1, b2: 1, b3: 0)),
                                  options: FaxEngineOptions(calling: false, localIdent: "+49 40 1111"), greeting: greeting,
                                  work: home.path)
        let (voice, app) = try await withMiniGateway(gateway, link) {
            var call = SimulatedVoiceCall(from: "0301234567", to: "4712", cip: 1)
            call.softFaxCaller = .init(pages: pages)
            return try await sim.placeVoiceCall(call)
        }
        await finishMiniGateway(link)
        let result = try #require(voice.softFax)
        let session = try #require(result.session)
        #expect(voice.played == session.gatewayAudio && voice.selectedBProtocol == nil)
        #expect(app.cngHeardAfter != nil, "the application heard CNG in the audio")
        #expect(app.facilityIndications == 0, "no fax tone report from a controller without tone detection")
        #expect(session.selectBProtocol.isEmpty, "no B protocol switch in software mode")
        let heardAfter = try #require(app.cngHeardAfter)
        let greetingFirst = session.gatewayAudio.starts(with: greeting.prefix(heardAfter))
        #expect(greetingFirst, "the greeting came first, until CNG was heard after \(heardAfter) bytes")
        #expect(session.result?.succeeded == true && result.pagesSent == 2, "\(String(describing: session.result))")
        #expect(app.pages == pages)
        let connectInd = sim.messages.compactMap(\.message).first { $0.name == "CONNECT_IND" }
        if case .connectInd(_, let cip, _, _, _, _, _, _, _, _)? = connectInd?.body { #expect(cip == 1) } else { Issue.record("no CONNECT_IND") }
    }

    @Test func impairedLinesWithECMDeliverAndDriftIsResampled() async throws {
        let sim = CapiSimulator(profile: .transparent)
        try sim.start()
        defer { sim.stop() }
        let home = try TemporaryDirectory("capi-softfax")
        let (link, _) = try await registerMiniGateway(sim, home: home)
        let pages = softFaxTestPages()
        var sessions: [SoftFaxSession] = []
        var apps: [MiniGatewayOutcome] = []
        let impairments = [
            LineImpairment(seed: 7, blockLossRate: 0.003, startAfterSeconds: 0),
            LineImpairment(seed: 3, clockDriftPPM: 80),
        ]
        for impairment in impairments {
            let gateway = MiniGateway(role: .answer(BProtocol(b1: 1, b2: 1, b3: 0)),
                                      options: FaxEngineOptions(calling: false, localIdent: "+49 40 1111"), work: home.path)
            let (result, app) = try await withMiniGateway(gateway, link) {
                try await sim.placeSoftFaxCall(SimulatedSoftFaxCall(
                    from: "030", to: "4711", pages: pages, remote: SoftFaxRemote(ecm: true, impairment: impairment)))
            }
            sessions.append(try #require(result.session))
            apps.append(app)
        }
        await finishMiniGateway(link)
        #expect(sessions[0].blocksLost > 0, "the loss happened")
        #expect(sessions.allSatisfy { $0.underruns == 0 }, "\(sessions.map(\.underruns))")
        #expect(apps[0].result?.succeeded == true && apps[0].pages == pages, "\(String(describing: apps[0].result))")
        #expect(apps[1].result?.succeeded == true && apps[1].pages == pages, "\(String(describing: apps[1].result))")
    }

    @Test func realTimeLineFasterThanRealTime() async throws {
        let sim = CapiSimulator(profile: .transparent)
        try sim.start()
        defer { sim.stop() }
        let home = try TemporaryDirectory("capi-softfax")
        let (link, _) = try await registerMiniGateway(sim, home: home)
        let pages = [softFaxTestPages()[1]]
        let gateway = MiniGateway(role: .answer(BProtocol(b1: 1, b2: 1, b3: 0)),
                                  options: FaxEngineOptions(calling: false, localIdent: "+49 40 1111"), work: home.path)
        let (result, app) = try await withMiniGateway(gateway, link) {
            try await sim.placeSoftFaxCall(SimulatedSoftFaxCall(
                from: "030", to: "4711", pages: pages,
                remote: SoftFaxRemote(clock: .realTime(speed: 6, latencySamples: 1600), blockSize: 256)))
        }
        await finishMiniGateway(link)
        #expect(result.session?.result?.succeeded == true, "\(String(describing: result.session?.result)), underruns \(result.underruns)")
        #expect(app.pages == pages)
    }
}

extension TransportIntegrationTests {
    /// A gateway that leaves blocks unanswered starves the real-time line: the simulator plays silence and counts it.
    @Test func realTimeLineCountsTheGatewaysUnderruns() async throws {
        let sim = CapiSimulator(profile: .transparent)
        try sim.start()
        defer { sim.stop() }
        let home = try TemporaryDirectory("capi-softfax")
        let (link, _) = try await registerMiniGateway(sim, home: home)
        var gateway = MiniGateway(role: .answer(BProtocol(b1: 1, b2: 1, b3: 0)),
                                  options: FaxEngineOptions(calling: false, localIdent: "+49 40 1111"), work: home.path)
        gateway.skipReplyEvery = 40
        let (result, app) = try await withMiniGateway(gateway, link) {
            try await sim.placeSoftFaxCall(SimulatedSoftFaxCall(
                from: "030", to: "4711", pages: [softFaxTestPages()[1]],
                remote: SoftFaxRemote(clock: .realTime(speed: 8, latencySamples: 480), maxLineSeconds: 40)))
        }
        await finishMiniGateway(link)
        let session = try #require(result.session)
        #expect(app.skipped > 10, "\(app.skipped)")
        // More blocks left out than the latency covers: some ticks had to be filled with silence.
        #expect(session.underruns > 0 && session.underrunSamples > 0, "\(session.underruns)")
    }
}

/// The impairment pieces on their own: seeded, counted, and the resampler keeps the line rate.
@Suite struct SimulatorLineImpairmentTests {
    @Test func sameSeedSameDamage() {
        func damage(seed: UInt64) -> ([UInt8], Int, Int) {
            var d = LineDamage(LineImpairment(seed: seed, bitErrorRate: 0.01, blockLossRate: 0.1), direction: .toGateway, salt: 1)
            var all: [UInt8] = []
            for _ in 0..<200 {
                var block = [UInt8](repeating: 0xAB, count: 160)
                if d.apply(&block, lineSeconds: 1) == .deliver { all += block }
            }
            return (all, d.bitsFlipped, d.blocksLost)
        }
        let a = damage(seed: 5), b = damage(seed: 5), c = damage(seed: 6)
        #expect(a.0 == b.0 && a.1 == b.1 && a.2 == b.2)
        #expect(a.0 != c.0)
        // 200 × 1280 bits at 1 %: about 2560 flips; 10 % of 200 blocks lost: about 20.
        #expect(a.1 > 1500 && a.1 < 3500, "\(a.1)")
        #expect(a.2 > 5 && a.2 < 40, "\(a.2)")
        // The other direction is untouched when the impairment is one-way.
        var other = LineDamage(LineImpairment(seed: 5, bitErrorRate: 0.01, direction: .toGateway), direction: .fromGateway, salt: 2)
        var block = [UInt8](repeating: 0xAB, count: 160)
        #expect(other.apply(&block, lineSeconds: 1) == .deliver && block == [UInt8](repeating: 0xAB, count: 160))
    }

    @Test func driftResamplerMakesExactlyTheLineRate() {
        // A machine 1000 ppm fast: 160 line samples take 160.16 of its samples.
        var r = DriftResampler(step: 1.001)
        var consumed = 0
        var produced = 0
        for _ in 0..<1000 {
            let need = r.inputNeeded(for: 160)
            r.push((0..<need).map { Int16(truncatingIfNeeded: (consumed + $0) % 2000) })
            consumed += need
            produced += r.pull(max: 160).count
        }
        #expect(produced == 160_000)
        #expect(abs(Double(consumed) - 160_160) < 4, "\(consumed)")
    }
}
