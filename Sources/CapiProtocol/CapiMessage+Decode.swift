extension CapiMessage {
    /// Decodes one message. For DATA_B3 REQ/IND the payload is taken from the bytes after the message
    /// (`bytes` holds message + payload); both the 22-byte (32-bit) and 30-byte (64-bit) forms are accepted.
    public static func decode(_ bytes: [UInt8]) throws -> CapiMessage {
        var h = CapiReader(bytes)
        let length = Int(try h.word())
        guard length >= 8, length <= bytes.count else {
            throw CapiDecodingError("bad message length \(length) for \(bytes.count) bytes")
        }
        let applID = try h.word()
        let command = CapiCommand(rawValue: try h.byte())
        let subRaw = try h.byte()
        guard let sub = CapiSubcommand(rawValue: subRaw) else {
            throw CapiDecodingError("bad subcommand 0x\(String(subRaw, radix: 16))")
        }
        let number = try h.word()
        var r = CapiReader(Array(bytes[0..<length]), offset: 8)
        let body: CapiMessageBody
        switch (command, sub) {
        case (.listen, .req):
            body = .listenReq(controller: try r.dword(), infoMask: try r.dword(), cipMask: try r.dword(),
                              cipMask2: try r.dword(), callingNumber: try r.structure(), callingSubaddress: try r.structure())
        case (.listen, .conf): body = .listenConf(controller: try r.dword(), info: CapiInfo(try r.word()))
        case (.alert, .conf): body = .alertConf(plci: try r.dword(), info: CapiInfo(try r.word()))
        case (.disconnect, .conf): body = .disconnectConf(plci: try r.dword(), info: CapiInfo(try r.word()))
        case (.disconnectB3, .conf): body = .disconnectB3Conf(ncci: try r.dword(), info: CapiInfo(try r.word()))
        case (.connect, .ind):
            body = .connectInd(plci: try r.dword(), cip: try r.word(), called: CalledPartyNumber.decode(try r.structure()),
                               calling: CallingPartyNumber.decode(try r.structure()), calledSubaddress: try r.structure(),
                               callingSubaddress: try r.structure(), bc: try r.structure(), llc: try r.structure(),
                               hlc: try r.structure(), additionalInfo: try r.structure())
        case (.connect, .req):
            body = .connectReq(controller: try r.dword(), cip: try r.word(), called: CalledPartyNumber.decode(try r.structure()),
                               calling: CallingPartyNumber.decode(try r.structure()), calledSubaddress: try r.structure(),
                               callingSubaddress: try r.structure(), bProtocol: try BProtocol.decode(try r.structure()),
                               bc: try r.structure(), llc: try r.structure(), hlc: try r.structure(), additionalInfo: try r.structure())
        case (.connect, .conf): body = .connectConf(plci: try r.dword(), info: CapiInfo(try r.word()))
        case (.connectB3, .req): body = .connectB3Req(plci: try r.dword(), ncpi: try r.structure())
        case (.connectB3, .conf): body = .connectB3Conf(ncci: try r.dword(), info: CapiInfo(try r.word()))
        case (.connect, .resp):
            body = .connectResp(plci: try r.dword(), reject: try r.word(), bProtocol: try BProtocol.decode(try r.structure()),
                                connectedNumber: try r.structure(), connectedSubaddress: try r.structure(),
                                llc: try r.structure(), additionalInfo: try r.structure())
        case (.connectActive, .ind):
            body = .connectActiveInd(plci: try r.dword(), connectedNumber: try r.structure(),
                                     connectedSubaddress: try r.structure(), llc: try r.structure())
        case (.connectActive, .resp): body = .connectActiveResp(plci: try r.dword())
        case (.alert, .req): body = .alertReq(plci: try r.dword(), additionalInfo: try r.structure())
        case (.disconnect, .req): body = .disconnectReq(plci: try r.dword(), additionalInfo: try r.structure())
        case (.info, .ind): body = .infoInd(plci: try r.dword(), infoNumber: try r.word(), infoElement: try r.structure())
        case (.info, .resp): body = .infoResp(plci: try r.dword())
        case (.connectB3, .ind): body = .connectB3Ind(ncci: try r.dword(), ncpi: try r.structure())
        case (.connectB3, .resp): body = .connectB3Resp(ncci: try r.dword(), reject: try r.word(), ncpi: try r.structure())
        case (.connectB3Active, .ind): body = .connectB3ActiveInd(ncci: try r.dword(), ncpi: try r.structure())
        case (.connectB3Active, .resp): body = .connectB3ActiveResp(ncci: try r.dword())
        case (.disconnectB3, .req): body = .disconnectB3Req(ncci: try r.dword(), ncpi: try r.structure())
        case (.disconnectB3, .ind):
            body = .disconnectB3Ind(ncci: try r.dword(), reasonB3: CapiInfo(try r.word()), ncpi: try r.structure())
        case (.disconnectB3, .resp): body = .disconnectB3Resp(ncci: try r.dword())
        case (.disconnect, .ind): body = .disconnectInd(plci: try r.dword(), reason: CapiInfo(try r.word()))
        case (.disconnect, .resp): body = .disconnectResp(plci: try r.dword())
        case (.dataB3, .req), (.dataB3, .ind):
            guard length == 22 || length >= 30 else { throw CapiDecodingError("bad DATA_B3 length \(length)") }
            let ncci = try r.dword()
            _ = try r.dword()  // 32-bit data pointer: meaningless outside the sender's process
            let dataLength = Int(try r.word()), handle = try r.word(), flags = try r.word()
            guard bytes.count >= length + dataLength else {
                throw CapiDecodingError("DATA_B3 payload truncated: \(bytes.count - length) of \(dataLength) bytes")
            }
            let data = Array(bytes[length..<length + dataLength])
            body = sub == .req ? .dataB3Req(ncci: ncci, handle: handle, flags: flags, data: data)
                               : .dataB3Ind(ncci: ncci, handle: handle, flags: flags, data: data)
        case (.dataB3, .conf): body = .dataB3Conf(ncci: try r.dword(), handle: try r.word(), info: CapiInfo(try r.word()))
        case (.dataB3, .resp): body = .dataB3Resp(ncci: try r.dword(), handle: try r.word())
        default:
            body = .other(command: command, subcommand: sub, parameters: Array(bytes[8..<length]))
        }
        return CapiMessage(applID: applID, messageNumber: number, body: body)
    }

    /// Total bytes a message occupies in `bytes` (message + DATA_B3 payload).
    public static func frameLength(_ bytes: [UInt8]) -> Int? {
        guard bytes.count >= 8 else { return nil }
        let length = Int(bytes[0]) | Int(bytes[1]) << 8
        if bytes[4] == CapiCommand.dataB3.rawValue && (bytes[5] == 0x80 || bytes[5] == 0x82) && bytes.count >= 18 {
            return length + (Int(bytes[16]) | Int(bytes[17]) << 8)
        }
        return length
    }
}
