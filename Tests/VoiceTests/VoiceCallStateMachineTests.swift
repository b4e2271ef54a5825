import CAPITransport
import CapiProtocol
import FaxgateCore
import Foundation
import TestSupport
import VoiceAudio
import XCTest

/// The voice protocol without I/O: messages in, actions out.
final class VoiceCallStateMachineTests: XCTestCase {
    let plci: UInt32 = 0x101
    var ncci: UInt32 { plci | 1 << 16 }

    func answer(_ dir: TemporaryDirectory, greeting: Int = 3000, max: Double = 2, silence: Double = 1, fax: Bool = true) throws -> VoiceAnswer {
        VoiceAnswer(receptionID: 9, greeting: [UInt8](repeating: 0x55, count: greeting), maxSeconds: max, silenceSeconds: silence,
                    recording: try ReceptionSpoolFile(path: dir.path + "/\(UUID().uuidString).alaw"),
                    faxFallback: fax ? .init(stationID: "+49 1", headline: "h", fine: true, spoolPath: dir.path + "/x.sff") : nil)
    }
    func ind(_ body: CapiMessageBody, _ n: UInt16 = 7) -> CapiMessage { CapiMessage(applID: 1, messageNumber: n, body: body) }
    func sent(_ actions: [VoiceCallStateMachine.Action]) -> [CapiMessage] {
        actions.compactMap { if case .send(let m) = $0 { m } else { nil } }
    }

    /// Up to the greeting: ALERT, CONNECT_RESP 1/1/0, DTMF listening, the first 7 blocks.
    func connect(_ m: inout VoiceCallStateMachine, _ a: VoiceAnswer) -> [VoiceCallStateMachine.Action] {
        let start = m.start(plci: plci, indicationNumber: 3, answer: a, goneReason: nil)
        XCTAssertEqual(sent(start).map(\.name), ["ALERT_REQ", "CONNECT_RESP"])
        if case .connectResp(_, 0, let bp?, _, _, _, _) = sent(start)[1].body { XCTAssertEqual(bp, .transparentVoice) } else { XCTFail() }
        _ = m.handle(ind(.connectActiveInd(plci: plci, connectedNumber: [], connectedSubaddress: [], llc: [])))
        _ = m.handle(ind(.connectB3Ind(ncci: ncci, ncpi: [])))
        return m.handle(ind(.connectB3ActiveInd(ncci: ncci, ncpi: []))) ?? []
    }

    func confirmAll(_ m: inout VoiceCallStateMachine, _ actions: [VoiceCallStateMachine.Action]) -> [UInt8] {
        var played: [UInt8] = []
        var queue = sent(actions)
        while let next = queue.first {
            queue.removeFirst()
            guard case .dataB3Req(_, let h, _, let d) = next.body else { continue }
            played += d
            queue += sent(m.handle(ind(.dataB3Conf(ncci: ncci, handle: h, info: .noError))) ?? [])
        }
        return played
    }

    func testGreetingWindowBeepThenRecordUntilHash() throws {
        let dir = try TemporaryDirectory("vsm")
        var m = VoiceCallStateMachine()
        let a = try answer(dir, greeting: 10_000)
        let up = connect(&m, a)
        let messages = sent(up)
        XCTAssertEqual(CapiFacility(messages.first { $0.command == .facility }!)?.dtmfFunction, 1, "DTMF listening starts")
        XCTAssertEqual(messages.filter { $0.command == .dataB3 }.count, 7, "no more than 7 unconfirmed blocks")
        // Audio during the greeting is answered, not recorded.
        let early = m.handle(ind(.dataB3Ind(ncci: ncci, handle: 1, flags: 0, data: [1, 2, 3]))) ?? []
        XCTAssertFalse(early.contains { if case .record = $0 { true } else { false } })
        XCTAssertEqual(sent(early).map(\.name), ["DATA_B3_RESP"])
        // '#' during the greeting does not end the call.
        XCTAssertEqual(sent(m.handle(ind(CapiFacility.dtmfIndication(address: plci, characters: "#"))) ?? []).map(\.name), ["FACILITY_RESP"])
        XCTAssertEqual(confirmAll(&m, up).count, 10_000, "the whole greeting is played")
        // Recording.
        let rec = m.handle(ind(.dataB3Ind(ncci: ncci, handle: 2, flags: 0, data: G711.lineBytes(Tone.beep(seconds: 0.1))))) ?? []
        XCTAssertTrue(rec.contains { if case .record(9, let d) = $0 { d.count == 800 } else { false } })
        let hash = m.handle(ind(CapiFacility.dtmfIndication(address: plci, characters: "#"))) ?? []
        XCTAssertEqual(sent(hash).map(\.name), ["FACILITY_RESP", "DISCONNECT_REQ"])
        _ = m.handle(ind(.disconnectB3Ind(ncci: ncci, reasonB3: .noError, ncpi: [])))
        let end = m.handle(ind(.disconnectInd(plci: plci, reason: CapiInfo(0x3400)))) ?? []
        guard case .finished(let f)? = end.last else { return XCTFail("\(end)") }
        XCTAssertEqual(f.cause, .dtmfHash); XCTAssertEqual(f.recordedBytes, 800); XCTAssertTrue(f.greetingCompleted)
        XCTAssertTrue(m.isIdle)
    }

    func testMaximumLengthAndSilence() throws {
        let dir = try TemporaryDirectory("vsm")
        var m = VoiceCallStateMachine()
        _ = confirmAll(&m, connect(&m, try answer(dir, greeting: 100, max: 1, silence: 0)))
        var recorded = 0, ended: [String] = []
        for h in 1...20 where ended.isEmpty {
            let acts = m.handle(ind(.dataB3Ind(ncci: ncci, handle: UInt16(h), flags: 0, data: G711.lineBytes(Tone.beep(seconds: 0.1))))) ?? []
            for case .record(_, let d) in acts { recorded += d.count }
            ended = sent(acts).map(\.name).filter { $0 == "DISCONNECT_REQ" }
        }
        XCTAssertEqual(recorded, 8000, "cut exactly at max_seconds")
        XCTAssertEqual(ended, ["DISCONNECT_REQ"])

        var s = VoiceCallStateMachine()
        _ = confirmAll(&s, connect(&s, try answer(dir, greeting: 100, max: 60, silence: 1)))
        _ = s.handle(ind(.dataB3Ind(ncci: ncci, handle: 1, flags: 0, data: G711.lineBytes(Tone.beep(seconds: 0.5)))))
        var silent = 0
        var cut = false
        while !cut && silent < 3 * 8000 {
            let acts = s.handle(ind(.dataB3Ind(ncci: ncci, handle: 2, flags: 0, data: [UInt8](repeating: G711.lineSilence, count: 160)))) ?? []
            silent += 160
            cut = sent(acts).contains { $0.name == "DISCONNECT_REQ" }
        }
        XCTAssertTrue(cut)
        XCTAssertEqual(silent, 8000, "cut after 1 s of silence")
    }

    func testFaxToneDuringGreetingSwitchesToFax() throws {
        let dir = try TemporaryDirectory("vsm")
        var m = VoiceCallStateMachine()
        _ = connect(&m, try answer(dir, greeting: 20_000))
        let x = m.handle(ind(CapiFacility.dtmfIndication(address: plci, characters: "X"))) ?? []
        XCTAssertEqual(sent(x).map(\.name), ["FACILITY_RESP", "DISCONNECT_B3_REQ"])
        let down = m.handle(ind(.disconnectB3Ind(ncci: ncci, reasonB3: .noError, ncpi: []))) ?? []
        let select = try XCTUnwrap(sent(down).first { $0.command == .selectBProtocol })
        let bp = try XCTUnwrap(CapiSelectBProtocol.decodeRequest(select)?.bProtocol)
        XCTAssertEqual([bp.b1, bp.b2, bp.b3], [4, 4, 4])
        XCTAssertEqual(bp.faxConfiguration?.stationID, "+49 1")
        XCTAssertTrue(down.contains { if case .switchedToFax(let p, _, _) = $0 { p == plci } else { false } })
        XCTAssertTrue(m.isIdle, "the call now belongs to the fax machine")
        XCTAssertNil(m.handle(ind(.connectB3Ind(ncci: ncci, ncpi: []))))

        // Without a fax fallback the tone is ignored.
        var n = VoiceCallStateMachine()
        _ = connect(&n, try answer(dir, greeting: 20_000, fax: false))
        XCTAssertEqual(sent(n.handle(ind(CapiFacility.dtmfIndication(address: plci, characters: "X"))) ?? []).map(\.name), ["FACILITY_RESP"])
    }

    func testHangUpDuringGreeting() throws {
        let dir = try TemporaryDirectory("vsm")
        var m = VoiceCallStateMachine()
        _ = connect(&m, try answer(dir, greeting: 20_000))
        _ = m.handle(ind(.disconnectB3Ind(ncci: ncci, reasonB3: .noError, ncpi: [])))
        let end = m.handle(ind(.disconnectInd(plci: plci, reason: CapiInfo(0x3490)))) ?? []
        guard case .finished(let f)? = end.last else { return XCTFail() }
        XCTAssertEqual(f.cause, .hangUp); XCTAssertEqual(f.recordedBytes, 0); XCTAssertFalse(f.greetingCompleted)
    }
}
