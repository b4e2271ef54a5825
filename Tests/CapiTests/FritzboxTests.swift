import CAPITransport
import Capi20
import CapiProtocol
import CapiSimulator
import FaxDocument
import FaxgateCore
import Foundation
import Logging
import TestSupport
import Testing

/// libcapi20's `fritzbox` driver (AVM CAPI over TCP) against the simulator speaking that wire.
@Suite struct FritzboxFrameTests {
    /// Bytes the real module sent to a loopback listener (REGISTER 3/7/2048, GET_PROFILE 1, RELEASE of ApplID 7).
    @Test func controlRequestsAsTheModuleSendsThem() throws {
        let register: [UInt8] = [0x14, 0x00, 0x00, 0x00, 0x20, 0x80, 0x01, 0x00, 0x02, 0x00, 0x09, 0x00, 0x00, 0x06,
                                 0x03, 0x00, 0x07, 0x00, 0x00, 0x08]
        #expect(FritzboxFrame.control(of: register) == .register(maxLogicalConnections: 3, maxBDataBlocks: 7, maxBDataLength: 2048))
        let profile: [UInt8] = [0x12, 0x00, 0x00, 0x00, 0x20, 0x80, 0x01, 0x00, 0x02, 0x00, 0x05, 0x02, 0x00, 0x02,
                                0x01, 0x00, 0x00, 0x00]
        #expect(FritzboxFrame.control(of: profile) == .getProfile(controller: 1))
        let release: [UInt8] = [0x0E, 0x00, 0x07, 0x00, 0x20, 0x80, 0x01, 0x00, 0x02, 0x00, 0x03, 0x01, 0x00, 0x00]
        #expect(FritzboxFrame.control(of: release) == .release(applID: 7))
        // An ordinary LISTEN_REQ is no control request.
        let listen = CapiMessage(applID: 7, messageNumber: 1, body: .listenReq(controller: 1, infoMask: 0, cipMask: 2, cipMask2: 0,
                                                                             callingNumber: [], callingSubaddress: []))
        #expect(FritzboxFrame.control(of: listen.encoded()) == nil)
        // CAPI frames: type 0x80 and a little-endian length (rcapi: big-endian, counting itself).
        #expect(FritzboxFrame.frame([UInt8](repeating: 1, count: 300)).prefix(3) == [0x80, 0x2C, 0x01])
        // Control replies: one length byte; ApplID at 2 and Info at 16 of what follows it, the profile from 18.
        let reply = FritzboxFrame.controlReply(applID: 0x0234, info: 0, data: [UInt8](repeating: 9, count: 64))
        #expect(reply.count == 2 + 82 && reply[1] == 82)
        #expect(reply[4] == 0x34 && reply[5] == 0x02 && reply[18] == 0 && reply[19] == 0 && reply[20] == 9)
    }
}

/// Through the real libcapi20: part of the serialized suite, since libcapi20 holds one driver configuration per
/// process (it is read again only after a release closes the control socket).
extension TransportIntegrationTests {
    @Test func fritzboxDriverRegistersReadsTheProfileAndListens() async throws {
        let box = CapiSimulator(controllers: 2, wire: .fritzbox)
        try box.start()
        defer { box.stop() }
        #expect(box.controllerProfile == .transparent, "a FRITZ!Box reports no T.30")
        let home = try TemporaryDirectory("capi-fritzbox")
        let link = CapiLink(configuration: CapiLinkConfiguration(driver: "fritzbox", host: "127.0.0.1", port: Int(box.port),
                                                                 home: home.path))
        defer { link.shutdown() }
        let registration = try await link.register(maxLogicalConnection: { $0.values.reduce(0) { $0 + Int($1.bChannels) } })
        // The profile of both controllers came over the wire as the box reports it: 2 B-channels each, no T.30.
        #expect(registration.profiles.keys.sorted() == [1, 2])
        for (_, p) in registration.profiles {
            #expect(p == box.profile)
            #expect(p.controllers == 2 && p.bChannels == 2)
            #expect(!p.supportsT30 && !p.supportsFaxExtended)
            #expect(p.b1Support & 0x2 != 0 && p.b2Support & 0x2 != 0 && p.b3Support & 0x1 != 0, "transparent B-channel")
        }
        // The ApplID is the box's (rcapi would allocate one in the client, from 1 up).
        #expect(registration.applID >= 512 && registration.applID <= 1023, "\(registration.applID)")
        #expect(box.registrations == 1)

        link.send(CapiMessage(applID: 0, messageNumber: 0x42, body: .listenReq(
            controller: 2, infoMask: 0x90, cipMask: 0x0003_0012, cipMask2: 0, callingNumber: [], callingSubaddress: [])))
        let conf = try await firstMessage(link) { if case .listenConf = $0.body { true } else { false } }
        #expect(conf.body == .listenConf(controller: 2, info: .noError) && conf.messageNumber == 0x42)
        #expect(box.isListening)
        guard case .listenReq(2, 0x90, 0x0003_0012, _, _, _)? = box.messagesFromGateway.first?.body else {
            Issue.record("LISTEN_REQ as sent: \(box.messagesFromGateway)"); return
        }

        // RELEASE closes the application's socket: the box forgets the LISTEN.
        await link.release()
        let deadline = ContinuousClock.now + .seconds(5)
        while box.isListening && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!box.isListening)
    }

    /// The whole transport over the fritzbox wire: a fax in and a fax out, byte for byte, with a profile that
    /// has fax firmware (so the controller engine runs) — the framing of DATA_B3 in both directions.
    @Test func fritzboxWireCarriesAFaxInAndOut() async throws {
        let box = CapiSimulator(controllers: 1, wire: .fritzbox, profile: .faxAndVoice)
        try box.start()
        defer { box.stop() }
        let home = try TemporaryDirectory("capi-fritzbox")
        let handler = RecordingHandler.answering(dir.path)
        var logger = Logger(label: "capi-fritzbox-test")
        logger.logLevel = .warning
        let transport = CAPIFaxTransport(
            settings: CAPITransportSettings(driver: "fritzbox", host: "127.0.0.1", port: Int(box.port), capiHome: home.path),
            handler: handler, logger: logger)
        let task = Task { try await transport.run() }
        try await box.waitForListen(timeout: .seconds(10))
        #expect(await transport.channels == 2)

        let document = makeSFF(pages: 2) + (0..<20000).map { UInt8(truncatingIfNeeded: $0 * 7) }   // > 7 blocks
        let result = try await box.placeFaxCall(SimulatedFaxCall(
            from: "0301234567", to: "4711", document: document, rate: 14400, fine: true, pages: 2, remoteStationID: "FRITZ"))
        #expect(result.accepted && result.bytesSent == document.count && result.blocksSent > 7)
        let end = try await handler.waitForEnd(1)
        #expect(end.succeeded && end.reason == 0x3490 && end.session.pages == 2, "\(end.text)")
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.path(1)))) == document)

        box.setOutgoingBehaviour(for: "0401234", [.answer(remoteStationID: "OUT", rate: 9600)])
        let sff = makeSFF(pages: 2, linesPerPage: 5000)
        let outcome = await transport.send(OutgoingFax(
            jobID: 9, dialString: DialString("0401234")!, callingNumber: "4711", restrictCallingNumber: false,
            stationID: "+49 40 7654321", headline: "Faxgate", fine: true, sff: sff, answerTimeout: .seconds(10)))
        #expect(outcome.cause == .success && outcome.pagesSent == 2, "\(outcome.text)")
        let call = try #require(box.outgoingCalls.first)
        #expect(call.document == sff && call.largestBlock == 2048 && call.violations.isEmpty, "\(call.violations)")

        task.cancel()
        _ = try? await task.value
        let deadline = ContinuousClock.now + .seconds(5)
        while box.isListening && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!box.isListening, "transport released its application")
    }

    /// What a FRITZ!Box is for us: the transparent-only profile, `auto` picks the software modem, the call is
    /// answered with B 1/1/0 and the simulator's spandsp fax machine sends a page as audio over the fritzbox wire.
    @Test func fritzboxDriverReceivesASoftwareFaxOnATransparentChannel() async throws {
        let box = CapiSimulator(controllers: 1, wire: .fritzbox)
        try box.start()
        defer { box.stop() }
        let home = try TemporaryDirectory("capi-fritzbox")
        let handler = RecordingHandler.answering(dir.path)
        var logger = Logger(label: "capi-fritzbox-test")
        logger.logLevel = .warning
        var settings = CAPITransportSettings(driver: "fritzbox", host: "127.0.0.1", port: Int(box.port), capiHome: home.path)
        settings.softFaxDirectory = dir.path + "/softfax"
        let transport = CAPIFaxTransport(settings: settings, handler: handler, logger: logger)
        let task = Task { try await transport.run() }
        try await box.waitForListen(timeout: .seconds(10))
        #expect(await transport.resolvedFaxEngines() == [1: .software], "auto: a FRITZ!Box reports no T.30")

        let page = Self.stripedPage(height: 200)
        let result = try await box.placeSoftFaxCall(SimulatedSoftFaxCall(
            from: "0301234567", to: "4711", pages: [page], remote: SoftFaxRemote(ident: "+49 30 1234567")))
        #expect(result.accepted && result.bProtocol == .transparentVoice, "\(result)")
        #expect(result.engineResult?.succeeded == true, "\(String(describing: result.engineResult))")
        #expect(result.session?.violations == [], "\(result.session?.violations ?? [])")
        let end = try await handler.waitForEnd(1, timeout: .seconds(30))
        #expect(end.succeeded && end.session.engine == .software && end.session.pages == 1, "\(end.text)")
        let stored = try SFFReader.read(try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.path(1)))))
        #expect(stored.pages == [page], "the spooled page is pixel for pixel the page sent")

        task.cancel()
        _ = try? await task.value
    }

    /// A fine-resolution page of bars and a diagonal (content a codec can get wrong, small enough to be quick).
    static func stripedPage(height: Int) -> FaxPage {
        let rowBytes = FaxPage.standardWidth / 8
        var bits = [UInt8](repeating: 0, count: rowBytes * height)
        for y in 0..<height {
            for x in 0..<rowBytes where (y / 10 + x / 9) % 3 == 0 { bits[y * rowBytes + x] = y % 10 < 6 ? 0xFF : 0x5A }
            let d = (y * 8) % FaxPage.standardWidth
            bits[y * rowBytes + d / 8] |= 0x80 >> UInt8(d % 8)
        }
        return FaxPage(bitmap: bits, width: FaxPage.standardWidth, height: height, resolution: .fine)
    }

    /// The first inbound message on `link` matching `match` (messages before it are dropped).
    private func firstMessage(_ link: CapiLink, timeout: Duration = .seconds(5),
                              _ match: @escaping @Sendable (CapiMessage) -> Bool) async throws -> CapiMessage {
        try await withThrowingTaskGroup(of: CapiMessage?.self) { group in
            group.addTask {
                for await event in link.events { if case .message(let m) = event, match(m) { return m } }
                return nil
            }
            group.addTask { try await Task.sleep(for: timeout); return nil }
            defer { group.cancelAll() }
            guard let m = try await group.next() ?? nil else { throw SimulatorError.timeout("message from libcapi20") }
            return m
        }
    }
}
