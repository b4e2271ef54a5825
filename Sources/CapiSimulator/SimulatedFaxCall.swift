import CapiProtocol
import Foundation

/// An incoming fax call the simulator places towards the gateway.
public struct SimulatedFaxCall: Sendable {
    public enum Fault: Sendable, Equatable {
        case none
        /// The remote aborts (DISCONNECT_B3_IND Reason_B3 0x3314) after this many document bytes; `pages` is
        /// reported in the final NCPI.
        case remoteAbortAfterBytes(Int, pages: Int)
        /// The remote aborts after the k-th page of the SFF document (0x3314, pages = k).
        case remoteAbortAfterPage(Int)
        /// All TCP connections are dropped after this many bytes (controller failure mid-call).
        case dropConnectionAfterBytes(Int)
    }

    public var controller: Int
    public var callingNumber: String
    /// Calling number presentation restricted (CLIR).
    public var callingNumberRestricted: Bool
    public var calledNumber: String
    /// 17 = fax G2/G3, 4 = 3.1 kHz audio.
    public var cip: UInt16
    public var document: [UInt8]
    public var rate: UInt16
    public var fine: Bool
    /// Pages reported at the end; nil = counted from the SFF document.
    public var pages: Int?
    public var remoteStationID: String
    public var fault: Fault
    public var blockSize: Int
    /// DATA_B3_IND in the 22-byte (32-bit) form, which libcapi20 must rewrite.
    public var shortDataB3Form: Bool
    /// DISCONNECT_IND reason when the remote hangs up.
    public var disconnectReason: UInt16
    /// How long to wait for each answer from the gateway (covers the gateway's ring delay).
    public var responseTimeout: Duration
    /// Calling party number octet 3 (type of number, numbering plan) in CONNECT_IND: 0x00 unknown, 0x11 international,
    /// 0x21 national, 0x41 subscriber (ISDN plan). Unknown by default: the digits are shown as given.
    public var callingTypeAndPlan: UInt8 = 0x00
    /// Octet 3a (presentation, screening): nil = 0x80 (allowed) or 0xA0 (restricted) from `callingNumberRestricted`;
    /// 0xC0 = not available.
    public var callingPresentation: UInt8? = nil
    /// Called party number octet 3 (0x80 unknown, 0xC1 subscriber, 0xA1 national).
    public var calledTypeAndPlan: UInt8 = 0x80
    /// Pause after each DATA_B3_IND, to pace the document like a real line (14400 bit/s ≈ 1.1 s per 2048 bytes)
    /// so a test can act while the call is in progress. Zero = as fast as the gateway answers.
    public var blockInterval: Duration = .zero

    public init(controller: Int = 1, from callingNumber: String, to calledNumber: String, document: [UInt8],
                callingNumberRestricted: Bool = false, cip: UInt16 = 17, rate: UInt16 = 14400, fine: Bool = true,
                pages: Int? = nil, remoteStationID: String = "+49 30 1234567", fault: Fault = .none,
                blockSize: Int = 2048, shortDataB3Form: Bool = false, disconnectReason: UInt16 = 0x3490,
                responseTimeout: Duration = .seconds(15)) {
        self.controller = controller; self.callingNumber = callingNumber; self.calledNumber = calledNumber
        self.callingNumberRestricted = callingNumberRestricted
        self.document = document; self.cip = cip; self.rate = rate; self.fine = fine; self.pages = pages
        self.remoteStationID = remoteStationID; self.fault = fault; self.blockSize = min(max(blockSize, 1), 2048)
        self.shortDataB3Form = shortDataB3Form; self.disconnectReason = disconnectReason
        self.responseTimeout = responseTimeout
    }
}

public struct SimulatedCallResult: Sendable, Equatable {
    public var plci: UInt32
    /// The gateway sent ALERT_REQ before answering.
    public var alerted: Bool
    /// CONNECT_RESP Reject value (0 = accepted).
    public var rejectCode: UInt16
    public var accepted: Bool { rejectCode == 0 }
    /// B protocol the gateway asked for in CONNECT_RESP.
    public var bProtocol: BProtocol?
    public var bytesSent: Int
    public var blocksSent: Int
    public var reasonB3: UInt16?
    public var reason: UInt16?
    /// The call ended by dropping the TCP connections (fault injection).
    public var connectionDropped: Bool
    /// Transparent profile: the controller refused the B protocol in CONNECT_RESP with this info (0x3001 B1
    /// protocol not supported) and cleared the call; nil when it was accepted.
    public var refusedInfo: UInt16? = nil
}

/// A message seen by the simulator, in either direction.
public struct RecordedMessage: Sendable, CustomStringConvertible {
    public enum Direction: Sendable, Equatable { case fromGateway, toGateway }
    public enum Content: Sendable, Equatable {
        case capi(CapiMessage)
        /// rcapi control request/reply (command byte, e.g. 0xF2 REGISTER, 0xE0 GET_PROFILE).
        case control(command: UInt8)
    }
    public var time: Date
    public var direction: Direction
    public var connection: Int
    public var content: Content

    public var message: CapiMessage? { if case .capi(let m) = content { m } else { nil } }
    public var isRegister: Bool { direction == .fromGateway && content == .control(command: RcapiFrame.ControlCommand.register.rawValue) }
    public var description: String {
        let arrow = direction == .fromGateway ? "<-" : "->"
        switch content {
        case .capi(let m): return "\(arrow) [\(connection)] \(m)"
        case .control(let c): return "\(arrow) [\(connection)] control 0x\(String(c, radix: 16))"
        }
    }
}

/// Page boundaries of an SFF document: byte offsets where each page's data ends.
enum SFFPages {
    /// `partial`: `d` may be a prefix still growing — only pages whose end marker (next page header or the
    /// end-of-document header) has arrived count.
    static func pageEnds(_ d: [UInt8], partial: Bool = false) -> [Int] {
        guard d.count >= 20, d[0] == 0x53, d[1] == 0x66, d[2] == 0x66, d[3] == 0x66 else { return [] }
        var i = Int(d[10]) | Int(d[11]) << 8
        var ends: [Int] = []
        var inPage = false
        while i < d.count {
            let b = d[i]
            switch b {
            case 0:
                guard i + 2 < d.count else { i = d.count; break }
                i += 3 + (Int(d[i + 1]) | Int(d[i + 2]) << 8)
            case 1...216: i += 1 + Int(b)
            case 217...253: i += 1
            case 254:
                guard i + 1 < d.count else { i = d.count; break }
                let len = Int(d[i + 1])
                if inPage { ends.append(i) }
                if len == 0 { return ends }
                inPage = true
                i += 2 + len
            default:
                guard i + 1 < d.count else { i = d.count; break }
                i += 2 + Int(d[i + 1])
            }
        }
        if inPage && !partial { ends.append(d.count) }
        return ends
    }
}
