import CapiProtocol
import Testing

@Suite struct CapiMessageTests {
    @Test func connectRespForFaxHasGoldenBytes() throws {
        let b3 = FaxB3Configuration(fine: true, stationID: "+49 30 123", headline: "Faxgate")
        let m = CapiMessage(applID: 1, messageNumber: 0x42, body: .connectResp(
            plci: 0x101, reject: 0, bProtocol: .fax(b3), connectedNumber: [], connectedSubaddress: [], llc: [], additionalInfo: []))
        let expected: [UInt8] = [
            0x34, 0x00, 0x01, 0x00, 0x02, 0x83, 0x42, 0x00,   // header: 52 bytes, appl 1, CONNECT_RESP, #0x42
            0x01, 0x01, 0x00, 0x00,                           // PLCI 0x101
            0x00, 0x00,                                       // Reject = accept
            0x21,                                             // BProtocol struct, 33 bytes
            0x04, 0x00, 0x04, 0x00, 0x04, 0x00,               // B1/B2/B3 = 4/4/4
            0x00, 0x00,                                       // B1, B2 configuration
            0x17, 0x01, 0x00, 0x00, 0x00,                     // B3 configuration: 23 bytes, options fine, format SFF
            0x0A, 0x2B, 0x34, 0x39, 0x20, 0x33, 0x30, 0x20, 0x31, 0x32, 0x33,  // "+49 30 123"
            0x07, 0x46, 0x61, 0x78, 0x67, 0x61, 0x74, 0x65,   // "Faxgate"
            0x00,                                             // global configuration
            0x00, 0x00, 0x00, 0x00,                           // connected number, subaddress, LLC, additional info
        ]
        #expect(m.encoded() == expected)
        let back = try CapiMessage.decode(expected)
        #expect(back == m)
        guard case .connectResp(_, _, let bp?, _, _, _, _) = back.body else { Issue.record("no B protocol"); return }
        #expect(bp.faxConfiguration == b3)
        #expect(bp.faxConfiguration?.fine == true)
    }

    @Test func roundTripsEveryFaxMessage() throws {
        let ncpi = FaxNCPI(rate: 9600, fine: false, pages: 3, stationID: "REMOTE").encoded()
        let bodies: [CapiMessageBody] = [
            .listenReq(controller: 1, infoMask: 0x90, cipMask: 0x20010, cipMask2: 0, callingNumber: [], callingSubaddress: []),
            .listenConf(controller: 1, info: .noError),
            .connectInd(plci: 0x201, cip: 17, called: CalledPartyNumber(digits: "555"),
                        calling: CallingPartyNumber(typeAndPlan: 0x21, presentation: 0xA0, digits: "0301234"),
                        calledSubaddress: [], callingSubaddress: [], bc: [0x90, 0x90, 0xA3], llc: [], hlc: [0x91, 0x84], additionalInfo: []),
            .connectResp(plci: 0x201, reject: 3, bProtocol: nil, connectedNumber: [], connectedSubaddress: [], llc: [], additionalInfo: []),
            .connectActiveInd(plci: 0x201, connectedNumber: [], connectedSubaddress: [], llc: []),
            .connectActiveResp(plci: 0x201), .alertReq(plci: 0x201, additionalInfo: []), .alertConf(plci: 0x201, info: .noError),
            .infoInd(plci: 0x201, infoNumber: 0x8001, infoElement: []), .infoResp(plci: 0x201),
            .connectB3Ind(ncci: 0x10201, ncpi: []), .connectB3Resp(ncci: 0x10201, reject: 0, ncpi: []),
            .connectB3ActiveInd(ncci: 0x10201, ncpi: ncpi), .connectB3ActiveResp(ncci: 0x10201),
            .dataB3Ind(ncci: 0x10201, handle: 7, flags: 0, data: [1, 2, 3, 0xFF]),
            .dataB3Req(ncci: 0x10201, handle: 8, flags: 0, data: Array(repeating: 0xAB, count: 2048)),
            .dataB3Resp(ncci: 0x10201, handle: 7), .dataB3Conf(ncci: 0x10201, handle: 8, info: .noError),
            .disconnectB3Ind(ncci: 0x10201, reasonB3: .remoteAbort, ncpi: ncpi), .disconnectB3Resp(ncci: 0x10201),
            .disconnectB3Req(ncci: 0x10201, ncpi: []), .disconnectB3Conf(ncci: 0x10201, info: .noError),
            .disconnectReq(plci: 0x201, additionalInfo: []), .disconnectConf(plci: 0x201, info: .noError),
            .disconnectInd(plci: 0x201, reason: .normalClearing), .disconnectResp(plci: 0x201),
            .other(command: .facility, subcommand: .ind, parameters: [1, 2, 0, 0, 1, 0, 0]),
        ]
        for (i, body) in bodies.enumerated() {
            let m = CapiMessage(applID: 3, messageNumber: UInt16(i), body: body)
            let bytes = m.encoded()
            #expect(CapiMessage.frameLength(bytes) == bytes.count, "\(m.name)")
            #expect(try CapiMessage.decode(bytes) == m, "\(m.name)")
        }
    }

    @Test func dataB3IndicationAcceptsThe22ByteForm() throws {
        let payload: [UInt8] = Array(0..<100)
        var bytes: [UInt8] = [22, 0, 1, 0, 0x86, 0x82, 5, 0,  1, 1, 1, 0,  0, 0, 0, 0,  100, 0,  9, 0,  0, 0]
        bytes += payload
        let m = try CapiMessage.decode(bytes)
        #expect(m.body == .dataB3Ind(ncci: 0x10101, handle: 9, flags: 0, data: payload))
        // The 30-byte form we encode carries the same payload behind the message.
        let long = m.encoded()
        #expect(long.count == 30 + 100)
        #expect(Array(long[30...]) == payload)
        #expect(throws: CapiDecodingError.self) { try CapiMessage.decode(Array(bytes.prefix(60))) }
    }

    @Test func ncpiAndNumbersDecode() throws {
        let n = FaxNCPI(rate: 14400, fine: true, pages: 2, stationID: "+49 89 999")
        #expect(n.encoded() == [0x40, 0x38, 1, 0, 0, 0, 2, 0, 10] + Array("+49 89 999".utf8))
        #expect(try FaxNCPI.decode(n.encoded()) == n)
        #expect(try FaxNCPI.decode([]) == nil)
        // Station ids are often padded with spaces.
        #expect(try FaxNCPI.decode([0x80, 0x25, 0, 0, 0, 0, 1, 0, 6] + Array("  ABC ".utf8))?.stationID == "ABC")
        #expect(CallingPartyNumber.decode([0x21, 0xA0] + Array("0301".utf8)) == CallingPartyNumber(typeAndPlan: 0x21, presentation: 0xA0, digits: "0301"))
        #expect(CallingPartyNumber.decode([0x21, 0xA0])?.restricted == true)
        #expect(CallingPartyNumber.decode([]) == nil)
        #expect(CalledPartyNumber.decode([0x80] + Array("12".utf8)).digits == "12")
    }

    @Test func infoNames() {
        #expect(CapiInfo(0x3314).description.contains("remote abort"))
        #expect(CapiInfo.normalClearing.name == "Normal call clearing")
        #expect(CapiInfo(0x3481).name?.contains("Unallocated") == true)
        #expect(CapiInfo(0x1234).description == "CAPI info 0x1234")
    }

    @Test func profileAndControlFrames() throws {
        let p = CapiProfile.faxAndVoice(controllers: 2)
        #expect(p.encoded().count == 64)
        #expect(try CapiProfile.decode(p.encoded()) == p)
        #expect(p.supportsFaxExtended)
        let reply = RcapiFrame.controlReply(to: 0xF2, data: [0, 0])
        #expect(reply[4] == 0xF3 && reply[5] == 0xFF && reply.count == 10)
        #expect(RcapiFrame.frame([1, 2, 3]) == [0, 5, 1, 2, 3])
    }
}
