import CAPITransport
import CapiSimulator
import FaxgateCore
import Foundation
import Testing

/// Records the order in which a call's events finished; the switch to fax is slow, like a journal write to a
/// database a few milliseconds away.
actor SlowSwitchHandler: ReceptionHandler {
    let base: SoftFaxRecordingHandler
    private(set) var order: [String] = []
    init(base: SoftFaxRecordingHandler) { self.base = base }

    func decide(_ call: IncomingCall) async -> CallDecision { await base.decide(call) }
    func faxConnected(receptionID: Int64, info: FaxSessionInfo) async {
        await base.faxConnected(receptionID: receptionID, info: info); order.append("connected")
    }
    func callEnded(receptionID: Int64, end: CallEnd) async {
        await base.callEnded(receptionID: receptionID, end: end); order.append("ended")
    }
    func voiceEnded(receptionID: Int64, end: VoiceCallEnd) async {
        await base.voiceEnded(receptionID: receptionID, end: end); order.append("voiceEnded")
    }
    func voiceSwitchedToFax(receptionID: Int64, spoolPath: String) async {
        try? await Task.sleep(for: .milliseconds(500))
        await base.voiceSwitchedToFax(receptionID: receptionID, spoolPath: spoolPath); order.append("switched")
    }
}

extension TransportIntegrationTests {
    /// The pipeline reads and rewrites a call's row on each event: "fax session up" handled before "switched to fax"
    /// was stored wrote the voice row back (PostgreSQL journaled a 3-page fax as a voice call without message).
    @Test func aCallsEventsReachTheHandlerInOrderEvenWhenOneIsSlow() async throws {
        let box = CapiSimulator(controllers: 1, profile: .transparent)
        try box.start()
        let recorder = SoftFaxRecordingHandler(directory: dir.path)
        let handler = SlowSwitchHandler(base: recorder)
        let (_, task, _) = try await startSoftTransport(box, handler: handler, answerVoice: true)
        let result = try await box.placeSoftFaxCall(.voiceCall(from: "0301234567", to: "4711", pages: [softFaxTestPage(seed: 7, height: 120)]))
        #expect(result.accepted)
        let end = try await recorder.waitForEnd(1)
        #expect(end.succeeded, "\(end.text)")
        #expect(await handler.order == ["switched", "connected", "ended"])
        await stopSoft(task, box)
    }
}
