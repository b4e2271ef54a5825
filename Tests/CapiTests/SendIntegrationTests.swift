import CAPITransport
import CapiProtocol
import CapiSimulator
import FaxgateCore
import Foundation
import Logging
import ServiceLifecycle
import Testing

/// Outgoing faxes through the real libcapi20 and the simulator. An extension of the serialized
/// TransportIntegrationTests suite: libcapi20 allows one controller configuration per process.
extension TransportIntegrationTests {
    func startSender(_ handler: RecordingHandler? = nil) async throws -> (CAPIFaxTransport, Task<Void, Error>) {
        var logger = Logger(label: "capi-send-test")
        logger.logLevel = .warning
        let transport = CAPIFaxTransport(
            settings: CAPITransportSettings(port: Int(sim.port), capiHome: SharedController.home.path),
            handler: handler ?? RecordingHandler.answering(dir.path), logger: logger)
        let task = Task { try await transport.run() }
        try await sim.waitForListen(timeout: .seconds(10))
        return (transport, task)
    }

    func outgoing(to number: String, _ sff: [UInt8], restrict: Bool = false, timeout: Duration = .seconds(10)) -> OutgoingFax {
        OutgoingFax(jobID: 7, dialString: DialString(number)!, callingNumber: "4711", restrictCallingNumber: restrict,
                    stationID: "+49 40 7654321", headline: "Faxgate Hamburg", fine: true, sff: sff, answerTimeout: timeout)
    }

    @Test func sendsATwoPageFaxByteExactly() async throws {
        let (transport, task) = try await startSender()
        #expect(await transport.channels == 2)
        sim.clearMessages()
        sim.clearOutgoingCalls()
        sim.setOutgoingBehaviour(for: "0301234567", [.answer(remoteStationID: "REMOTE FAX", rate: 9600)])
        let sff = makeSFF(pages: 2, linesPerPage: 5000)   // ~20 KB: more blocks than the window
        let outcome = await transport.send(outgoing(to: "0301234567", sff, restrict: true))
        #expect(outcome.cause == .success, "\(outcome.text)")
        #expect(outcome.pagesSent == 2)
        #expect(outcome.session == FaxSessionInfo(bitRate: 9600, fine: true, pages: 2, remoteStationID: "REMOTE FAX", engine: .controller))
        #expect(outcome.connectedAt != nil && outcome.connectedAt! >= outcome.dialedAt && outcome.endedAt >= outcome.connectedAt!)

        let call = try #require(sim.outgoingCalls.first)
        #expect(sim.outgoingCalls.count == 1)
        #expect(call.document == sff, "received \(call.document.count) of \(sff.count) bytes")
        #expect(call.cip == 17 && call.calledNumber == "0301234567" && call.callingNumber == "4711")
        #expect(call.callingPresentation == 0xA0 && call.callingNumberRestricted)
        #expect(call.bProtocol.map { [$0.b1, $0.b2, $0.b3] } == [4, 4, 4])
        #expect(call.faxConfiguration == FaxB3Configuration(fine: true, stationID: "+49 40 7654321", headline: "Faxgate Hamburg"))
        #expect(call.blocks == (sff.count + 2047) / 2048 && call.largestBlock == 2048)
        #expect(call.maxOutstanding <= 7 && call.maxOutstanding > 1, "window: \(call.maxOutstanding)")
        #expect(call.violations.isEmpty, "\(call.violations)")
        #expect(call.reasonB3 == 0 && call.reason == 0x3490 && call.pagesReported == 2 && call.disconnectedByGateway)

        // Every indication of the call was answered (the last DISCONNECT_RESP may still be on its way when send returns).
        let deadline = ContinuousClock.now + .seconds(3)
        while !sim.messagesFromGateway.contains(where: { $0.name == "DISCONNECT_RESP" }) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let fromGateway = sim.messagesFromGateway
        let indications = sim.messages.filter { $0.direction == .toGateway }.compactMap(\.message).filter { $0.subcommand == .ind }
        #expect(indications.map(\.name).contains("INFO_IND"))
        for ind in indications {
            #expect(fromGateway.contains { $0.subcommand == .resp && $0.messageNumber == ind.messageNumber && $0.command == ind.command },
                    "\(ind.name) #\(ind.messageNumber) answered")
        }
        try await stop(task)
        #expect(await transport.channels == 0)
    }

    @Test func busyThenAnswerAndOtherFailures() async throws {
        let (transport, task) = try await startSender()
        sim.clearOutgoingCalls()
        let sff = makeSFF(pages: 1)
        sim.setOutgoingBehaviour(for: "0309", [.busy, .answer()])
        let busy = await transport.send(outgoing(to: "0309", sff))
        #expect(busy.cause == .busy && busy.reason == 0x3491 && busy.pagesSent == 0 && busy.connectedAt == nil)
        #expect(busy.text.lowercased().contains("busy"), "\(busy.text)")
        let second = await transport.send(outgoing(to: "0309", sff))
        #expect(second.cause == .success && second.pagesSent == 1, "\(second.text)")

        sim.setOutgoingBehaviour(for: "0999", [.rejectNumber(0x3481)])
        let invalid = await transport.send(outgoing(to: "0999", sff))
        #expect(invalid.cause == .invalidNumber && invalid.reason == 0x3481)
        #expect(invalid.text.lowercased().contains("unallocated"), "\(invalid.text)")

        sim.setOutgoingBehaviour(for: "0888", [.notAFax])
        let phone = await transport.send(outgoing(to: "0888", sff))
        #expect(phone.cause == .faxProtocolError && phone.reasonB3 == 0x3311, "\(phone.text)")
        #expect(sim.outgoingCalls.map(\.behaviour) == [.busy, .answer(), .rejectNumber(0x3481), .notAFax])
        let violations = sim.outgoingCalls.flatMap(\.violations)
        #expect(violations.isEmpty, "\(violations)")
        try await stop(task)
    }

    @Test func remoteAbortAfterFirstPage() async throws {
        let (transport, task) = try await startSender()
        sim.clearOutgoingCalls()
        sim.setOutgoingBehaviour(for: "0301111", [.abortAfterPage(1)])
        let sff = makeSFF(pages: 3, linesPerPage: 3000)
        let outcome = await transport.send(outgoing(to: "0301111", sff))
        #expect(outcome.cause == .faxProtocolError && outcome.reasonB3 == 0x3314 && outcome.pagesSent == 1)
        #expect(outcome.text.lowercased().contains("remote abort"), "\(outcome.text)")
        let call = try #require(sim.outgoingCalls.first)
        #expect(call.document.count < sff.count && call.document == Array(sff.prefix(call.document.count)))
        #expect(call.violations.isEmpty, "\(call.violations)")
        try await stop(task)
    }

    @Test func noAnswerEndsAfterTheAnswerTimeout() async throws {
        let (transport, task) = try await startSender()
        sim.clearOutgoingCalls()
        sim.setOutgoingBehaviour(for: "0302222", [.noAnswer])
        let started = ContinuousClock.now
        let outcome = await transport.send(outgoing(to: "0302222", makeSFF(pages: 1), timeout: .milliseconds(800)))
        let took = ContinuousClock.now - started
        #expect(outcome.cause == .noAnswer, "\(outcome.text)")
        #expect(outcome.text == "no answer within 800 ms")
        #expect(took >= .milliseconds(800) && took < .seconds(5), "\(took)")
        let call = try #require(sim.outgoingCalls.first)
        #expect(call.alertedAt != nil && call.connectedAt == nil && call.disconnectedByGateway && call.document.isEmpty)
        try await stop(task)
    }

    @Test func incomingAndOutgoingAtTheSameTime() async throws {
        let handler = RecordingHandler.answering(dir.path)
        let (transport, task) = try await startSender(handler)
        sim.clearOutgoingCalls()
        sim.setOutgoingBehaviour(for: "0303333", [.answer(remoteStationID: "OUT")])
        let outDoc = makeSFF(pages: 2, linesPerPage: 3000), inDoc = makeSFF(pages: 1, linesPerPage: 4000)
        async let received = sim.placeFaxCall(SimulatedFaxCall(from: "0401", to: "4711", document: inDoc))
        async let sent = transport.send(outgoing(to: "0303333", outDoc))
        let (r, s) = try await (received, sent)
        #expect(r.accepted && r.bytesSent == inDoc.count)
        #expect(s.cause == .success && s.pagesSent == 2, "\(s.text)")
        let end = try await handler.waitForEnd(1)
        #expect(end.succeeded)
        #expect(try [UInt8](Data(contentsOf: URL(fileURLWithPath: await handler.path(1)))) == inDoc)
        let call = try #require(sim.outgoingCalls.first)
        #expect(call.document == outDoc && call.plci != r.plci)
        try await stop(task)
    }

    @Test func controllerLossDuringASend() async throws {
        let (transport, task) = try await startSender()
        sim.clearOutgoingCalls()
        sim.setOutgoingBehaviour(for: "0304444", [.noAnswer])
        async let outcome = transport.send(outgoing(to: "0304444", makeSFF(pages: 1), timeout: .seconds(30)))
        while sim.outgoingCalls.first?.alertedAt == nil { try await Task.sleep(for: .milliseconds(10)) }
        sim.dropAllConnections()
        let o = await outcome
        #expect(o.cause == .networkFailure && o.text == "controller connection lost")
        try await sim.waitForListen(timeout: .seconds(10))   // back after the back-off
        try await stop(task)
    }

    @Test func shutdownHangsUpASendThatDoesNotFinish() async throws {
        var logger = Logger(label: "capi-send-test")
        logger.logLevel = .warning
        let transport = CAPIFaxTransport(
            settings: CAPITransportSettings(port: Int(sim.port), capiHome: SharedController.home.path, shutdownGrace: .milliseconds(500)),
            handler: RecordingHandler.answering(dir.path), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [transport], logger: logger))
        let running = Task { try await group.run() }
        try await sim.waitForListen(timeout: .seconds(10))
        sim.clearOutgoingCalls()
        sim.setOutgoingBehaviour(for: "0305555", [.noAnswer])
        async let outcome = transport.send(outgoing(to: "0305555", makeSFF(pages: 1), timeout: .seconds(60)))
        while sim.outgoingCalls.first?.alertedAt == nil { try await Task.sleep(for: .milliseconds(10)) }
        await group.triggerGracefulShutdown()
        let o = await outcome
        #expect(o.cause == .networkFailure && o.text == "gateway shutting down")
        try await running.value
        #expect(sim.outgoingCalls.first?.disconnectedByGateway == true)
        let late = await transport.send(outgoing(to: "0305555", makeSFF(pages: 1)))
        #expect(late.cause == .networkFailure || late.cause == .localError)
    }
}
