import CapiProtocol
import Foundation

// AVM's CAPI over TCP as libcapi20's `fritzbox` module speaks it (lib_capi_mod_fritzbox.so.2, libcapi20
// 1:3.27-3), established with objdump of the module, a loopback listener logging what a C client sends, and
// the module's source (read only); compared with the rcapi module the simulator spoke first.
//
// - Sockets: as with rcapi. `capi20_isinstalled` opens a control socket (GET_PROFILE travels there; libcapi20
//   closes it on the next `capi20_release`), `capi20_register` opens one socket per application, which then
//   carries its messages. MANUFACTURER, VERSION and SERIAL never reach the wire: the module answers them
//   itself ("AVM Berlin", CAPI 2.0 / 0.5, "0004711").
// - Frame from the client: type byte 0x80, a LITTLE-endian u16 length of what follows, then the CAPI message
//   (+ DATA_B3 payload; the module zeroes Data32). rcapi: a big-endian u16 that counts itself, no type byte.
// - CAPI frame to the client: the same 3-byte prefix. The client takes it with one recv(3), then the rest
//   within 4 s into a 4096-byte buffer. DATA_B3_IND may come in the 22-byte form, as with rcapi.
// - Control requests look like CAPI messages with command 0x20 / sub-command 0x80 (rcapi: 0xFF), ApplID 0,
//   message number 1, bytes 8–9 = 02 00, byte 10 = parameter length, then a u16 function at 11:
//     0 REGISTER     09 | 00 00 | 06 | u16 MaxLogicalConnection, u16 MaxBDataBlocks, u16 MaxBDataLen (20 bytes)
//     1 RELEASE      03 | 01 00 | 00, ApplID filled in; sent without waiting, then the socket is closed
//     2 GET_PROFILE  05 | 02 00 | 02 | u16 controller, zero-padded to 18 bytes
// - Control replies are read another way: one recv(2) = type byte + ONE length byte (≤ 255), then one
//   recv(length) that must bring all of it. Of that body the module reads the ApplID at offset 2 (the box
//   assigns it; rcapi allocates it in the client), the Info word at 16 (REGISTER: 0 = ok) and the 64-byte
//   profile from 18. GET_PROFILE's Info is ignored: an unknown controller can only be answered with zeros.
// - The box's ApplID goes unchecked into libcapi20's machine-wide table in /dev/shm, where rcapi clients take
//   the lowest free number: this simulator hands out numbers from a random start between 512 and 1000, so
//   tests running in parallel processes are unlikely to overwrite each other's entries.
// - The module copies SEND_BUFSIZ (2176) − 3 bytes from every message it puts, whatever its length (only the
//   length is sent): callers must pass a buffer that large (CapiLink does).
// Above the framing everything is plain CAPI 2.0, so every call scenario of the simulator runs on both wires.

/// The TCP protocol the simulator speaks towards libcapi20.
public enum CapiWire: String, Sendable, CaseIterable {
    /// libcapi20's `rcapi` module (remote CAPI, port 2662).
    case rcapi
    /// libcapi20's `fritzbox` module (AVM CAPI over TCP, port 5031).
    case fritzbox

    /// The libcapi20 driver name (`REMOTE <driver> …`, `capi.driver`).
    public var driver: String { rawValue }

    /// How many bytes precede every frame the client sends.
    var prefixLength: Int { self == .rcapi ? 2 : 3 }

    /// Length of what follows the prefix; nil for a malformed prefix.
    func bodyLength(prefix p: [UInt8]) -> Int? {
        switch self {
        case .rcapi:
            let total = Int(p[0]) << 8 | Int(p[1])
            return total >= 2 ? total - 2 : nil
        case .fritzbox:
            return Int(p[1]) | Int(p[2]) << 8
        }
    }

    /// One CAPI message (with any payload) as a frame to the client.
    func frame(_ message: [UInt8]) -> [UInt8] {
        switch self {
        case .rcapi: RcapiFrame.frame(message)
        case .fritzbox: FritzboxFrame.frame(message)
        }
    }
}

/// Framing and control messages of AVM's CAPI over TCP (see the notes at the top of this file).
public enum FritzboxFrame {
    static let messageType: UInt8 = 0x80
    /// The CAPI command and sub-command of every control request.
    static let controlCommand: UInt8 = 0x20, controlSubcommand: UInt8 = 0x80

    public enum Control: Sendable, Equatable {
        case register(maxLogicalConnections: UInt16, maxBDataBlocks: UInt16, maxBDataLength: UInt16)
        case release(applID: UInt16)
        case getProfile(controller: UInt16)
        case unknown(function: UInt16)
    }

    public static func frame(_ message: [UInt8]) -> [UInt8] {
        [messageType, UInt8(message.count & 0xFF), UInt8(message.count >> 8)] + message
    }

    /// The control request in an (un-prefixed) message, nil for an ordinary CAPI message.
    public static func control(of message: [UInt8]) -> Control? {
        guard message.count >= 13, message[4] == controlCommand, message[5] == controlSubcommand else { return nil }
        let word = { (i: Int) -> UInt16 in i + 1 < message.count ? UInt16(message[i]) | UInt16(message[i + 1]) << 8 : 0 }
        switch word(11) {
        case 0: return .register(maxLogicalConnections: word(14), maxBDataBlocks: word(16), maxBDataLength: word(18))
        case 1: return .release(applID: word(2))
        case 2: return .getProfile(controller: word(14))
        case let f: return .unknown(function: f)
        }
    }

    /// A control reply as the module reads it: type byte, one length byte, then a body with the ApplID at
    /// offset 2, the Info word at 16 and `data` (a profile) from 18. Laid out like a CONF so a trace reads well.
    public static func controlReply(applID: UInt16, info: UInt16, data: [UInt8] = []) -> [UInt8] {
        var w = CapiWriter()
        w.word(UInt16(18 + data.count)); w.word(applID); w.byte(controlCommand); w.byte(controlSubcommand | 1); w.word(1)
        w.raw([UInt8](repeating: 0, count: 8)); w.word(info); w.raw(data)
        precondition(w.bytes.count <= 255, "a fritzbox control reply has a one-byte length")
        return [messageType, UInt8(w.bytes.count)] + w.bytes
    }
}

extension CapiSimulator {
    /// Answers a control request on the fritzbox wire. Recorded under the rcapi command codes (0xF2 REGISTER,
    /// 0xE0 GET_PROFILE), so observers such as `registrations` read the same on both wires.
    func handleFritzboxControl(_ connection: RcapiConnection, _ control: FritzboxFrame.Control) {
        switch control {
        case .register:
            record(.fromGateway, connection, .control(command: RcapiFrame.ControlCommand.register.rawValue))
            let applID = state.withLock { s -> UInt16 in
                defer { s.nextFritzboxApplID = s.nextFritzboxApplID >= 1023 ? 512 : s.nextFritzboxApplID + 1 }
                return s.nextFritzboxApplID
            }
            connection.sendRaw(FritzboxFrame.controlReply(applID: applID, info: 0))
            record(.toGateway, connection, .control(command: RcapiFrame.ControlCommand.register.rawValue &+ 1))
        case .getProfile(let controller):
            record(.fromGateway, connection, .control(command: RcapiFrame.ControlCommand.getProfile.rawValue))
            let known = Int(controller) <= controllers
            let data = known ? profile.encoded() : [UInt8](repeating: 0, count: 64)
            connection.sendRaw(FritzboxFrame.controlReply(applID: 0, info: known ? 0 : 0x2002, data: data))
            record(.toGateway, connection, .control(command: RcapiFrame.ControlCommand.getProfile.rawValue &+ 1))
        case .release, .unknown:
            // RELEASE expects no answer (the client closes the socket right after); nothing else is defined.
            break
        }
    }
}
