import CapiProtocol

/// What kind of controller the simulator pretends to be.
public enum ControllerProfile: String, Sendable, CaseIterable {
    /// An active ISDN card with fax firmware: B 4/4/4 (T.30 in the controller, SFF), voice with DTMF.
    case faxAndVoice
    /// A controller without fax firmware, as a FRITZ!Box reports over CAPI-over-TCP: B1 64 kbit/s HDLC and
    /// transparent, B2 X.75 and transparent, B3 transparent only. A fax needs a software modem on the host.
    case transparent

    public func capiProfile(controllers: UInt16) -> CapiProfile {
        switch self {
        case .faxAndVoice: .faxAndVoice(controllers: controllers)
        // Global options: internal controller, DTMF, supplementary services. No T.30 bits: B1 bit 4, B2 bit 4,
        // B3 bits 4/5 clear, which is how a gateway must recognise that it has to run the fax modem itself.
        case .transparent:
            CapiProfile(controllers: controllers, bChannels: 2, globalOptions: 0x19, b1Support: 0x03, b2Support: 0x03, b3Support: 0x01)
        }
    }
}

extension CapiProfile {
    /// Info value a real controller answers when asked for a B protocol it does not have (0 = supported).
    /// Only the protocols this simulator knows are checked: 0/1 transparent and 4 (T.30) in each layer.
    func refusal(for bp: BProtocol?) -> UInt16 {
        guard let bp else { return 0 }   // default protocol: 64 kbit/s HDLC / X.75 / transparent
        if bp.b1 < 32 && b1Support & (1 << UInt32(bp.b1)) == 0 { return 0x3001 }
        if bp.b2 < 32 && b2Support & (1 << UInt32(bp.b2)) == 0 { return 0x3002 }
        if bp.b3 < 32 && b3Support & (1 << UInt32(bp.b3)) == 0 { return 0x3003 }
        return 0
    }
}
