/// rcapi (remote CAPI over TCP) framing, shared by the simulator and tests.
///
/// Every frame: big-endian u16 total length (including these 2 bytes) + one CAPI message (+ DATA_B3 payload).
/// Control requests (REGISTER, GET_PROFILE, …) use sub-command 0xFF, the command byte pair in network order
/// and the controller as a dword at message offset 8; their replies carry data from offset 8.
public enum RcapiFrame {
    /// The client reads each frame into a 4096-byte buffer.
    public static let maxFrameLength = 4096
    /// Control replies are read into a 100-byte buffer.
    public static let maxControlReplyLength = 100

    public enum ControlCommand: UInt8, Sendable {
        case register = 0xF2, getProfile = 0xE0, getManufacturer = 0xFA, getVersion = 0xFC, getSerialNumber = 0xFE
        case authUser = 0xFF
    }

    public static func frame(_ message: [UInt8]) -> [UInt8] {
        let total = message.count + 2
        return [UInt8(total >> 8), UInt8(total & 0xFF)] + message
    }

    /// Is this (un-framed) message an rcapi control request? Returns the command byte.
    public static func controlCommand(of message: [UInt8]) -> UInt8? {
        guard message.count >= 6, message[5] == 0xFF else { return nil }
        return message[4]
    }

    /// A control reply: command + 1, sub-command 0xFF, data from offset 8.
    public static func controlReply(to command: UInt8, data: [UInt8]) -> [UInt8] {
        var w = CapiWriter()
        w.word(UInt16(8 + data.count)); w.word(0); w.byte(command &+ 1); w.byte(0xFF); w.word(0); w.raw(data)
        return w.bytes
    }
}

/// The 64-byte controller profile returned by GET_PROFILE.
public struct CapiProfile: Sendable, Equatable {
    public var controllers: UInt16
    public var bChannels: UInt16
    public var globalOptions: UInt32
    public var b1Support: UInt32, b2Support: UInt32, b3Support: UInt32
    public init(controllers: UInt16, bChannels: UInt16, globalOptions: UInt32, b1Support: UInt32, b2Support: UInt32, b3Support: UInt32) {
        self.controllers = controllers; self.bChannels = bChannels; self.globalOptions = globalOptions
        self.b1Support = b1Support; self.b2Support = b2Support; self.b3Support = b3Support
    }
    /// A basic-rate controller that does fax G3 (B 4/4/4 and T.30 extended) and voice with DTMF.
    public static func faxAndVoice(controllers: UInt16) -> CapiProfile {
        CapiProfile(controllers: controllers, bChannels: 2, globalOptions: 0x1D, b1Support: 0x13, b2Support: 0x13, b3Support: 0x31)
    }
    public var supportsFaxExtended: Bool { b3Support & (1 << 5) != 0 }
    /// The controller runs T.30 itself: B1 bit 4 (T.30 modem), B2 bit 4 (T.30 for fax G3) and B3 bit 4 or 5 (T.30
    /// for fax G3, or its extended form). All three are needed for B protocol 4/4/4; a FRITZ!Box or a passive card
    /// reports none of them, and the fax modem must then run on the host.
    public var supportsT30: Bool {
        b1Support & (1 << 4) != 0 && b2Support & (1 << 4) != 0 && b3Support & (1 << 4 | 1 << 5) != 0
    }

    public func encoded() -> [UInt8] {
        var w = CapiWriter()
        w.word(controllers); w.word(bChannels); w.dword(globalOptions); w.dword(b1Support); w.dword(b2Support); w.dword(b3Support)
        w.raw([UInt8](repeating: 0, count: 64 - 20))
        return w.bytes
    }
    public static func decode(_ bytes: [UInt8]) throws -> CapiProfile {
        var r = CapiReader(bytes)
        return CapiProfile(controllers: try r.word(), bChannels: try r.word(), globalOptions: try r.dword(),
                           b1Support: try r.dword(), b2Support: try r.dword(), b3Support: try r.dword())
    }
}
