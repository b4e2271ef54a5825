/// A CAPI Info / Reason / Reason_B3 value with a readable name.
///
/// The gateway asks libcapi20's `capi_info2str` for the authoritative text; this table is the fallback
/// for places without the library (the simulator, the core, tests).
public struct CapiInfo: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public init(_ rawValue: UInt16) { self.rawValue = rawValue }

    public static let noError = CapiInfo(0x0000)
    public static let receiveQueueEmpty = CapiInfo(0x1104)
    public static let sendQueueFull = CapiInfo(0x1103)
    public static let normalClearing = CapiInfo(0x3490)
    public static let userBusy = CapiInfo(0x3491)
    public static let noUserResponding = CapiInfo(0x3492)
    public static let noAnswer = CapiInfo(0x3493)
    public static let callRejected = CapiInfo(0x3495)
    public static let unallocatedNumber = CapiInfo(0x3481)
    public static let remoteNotFax = CapiInfo(0x3311)
    public static let trainingError = CapiInfo(0x3312)
    public static let remoteAbort = CapiInfo(0x3314)
    public static let sffCodingError = CapiInfo(0x3319)


    static let names: [UInt16: String] = [
        0x0000: "No error",
        0x0001: "NCPI not supported by current protocol, NCPI ignored",
        0x0002: "Flags not supported by current protocol, flags ignored",
        0x0003: "Alert already sent by another application",
        0x1001: "Too many applications",
        0x1002: "Logical block size too small; must be at least 128 bytes",
        0x1004: "Message buffer size too small",
        0x1005: "Max. number of logical connections not supported",
        0x1007: "The message could not be accepted because of an internal busy condition",
        0x1008: "OS resource error (no memory?)",
        0x1009: "CAPI not installed",
        0x1101: "Illegal application number",
        0x1102: "Illegal command or subcommand, or message length less than 12 octets",
        0x1103: "The message could not be accepted because of a queue full condition",
        0x1104: "Queue is empty",
        0x1105: "Queue overflow: a message was lost",
        0x1106: "Unknown notification parameter",
        0x1107: "The message could not be accepted because of an internal busy condition",
        0x1108: "OS resource error (no memory?)",
        0x1109: "CAPI not installed",
        0x2001: "Message not supported in current state",
        0x2002: "Illegal Controller/PLCI/NCCI",
        0x2003: "Out of PLCI",
        0x2004: "Out of NCCI",
        0x2005: "Out of LISTEN",
        0x2007: "Illegal message parameter coding",
        0x3001: "B1 protocol not supported",
        0x3002: "B2 protocol not supported",
        0x3003: "B3 protocol not supported",
        0x3004: "B1 protocol parameter not supported",
        0x3005: "B2 protocol parameter not supported",
        0x3006: "B3 protocol parameter not supported",
        0x3007: "B protocol combination not supported",
        0x3008: "NCPI not supported",
        0x3009: "CIP Value unknown",
        0x300A: "Flags not supported (reserved bits)",
        0x300B: "Facility not supported",
        0x300C: "Data length not supported by current protocol",
        0x300D: "Reset procedure not supported by current protocol",
        0x3301: "Protocol error layer 1 (broken line or B-channel removed by signalling protocol)",
        0x3302: "Protocol error layer 2",
        0x3303: "Protocol error layer 3",
        0x3304: "Another application got that call",
        0x3311: "Connecting not successful (remote station is no FAX G3 machine)",
        0x3312: "Connecting not successful (training error)",
        0x3313: "Disconnected before transfer (remote station does not support transfer mode, e.g. resolution)",
        0x3314: "Disconnected during transfer (remote abort)",
        0x3315: "Disconnected during transfer (remote procedure error, e.g. unsuccessful repetition of T.30 commands)",
        0x3316: "Disconnected during transfer (local tx data underrun)",
        0x3317: "Disconnected during transfer (local rx data overflow)",
        0x3318: "Disconnected during transfer (local abort)",
        0x3319: "Illegal parameter coding (e.g. SFF coding error)",
        0x3400: "Normal termination",
        0x3481: "Unallocated (unassigned) number",
        0x3482: "No route to specified transit network",
        0x3483: "No route to destination",
        0x3486: "Channel unacceptable",
        0x3487: "Call awarded and being delivered in an established channel",
        0x3490: "Normal call clearing",
        0x3491: "User busy",
        0x3492: "No user responding",
        0x3493: "No answer from user (user alerted)",
        0x3495: "Call rejected",
        0x3496: "Number changed",
        0x349A: "Non-selected user clearing",
        0x349B: "Destination out of order",
        0x349C: "Invalid number format",
        0x349D: "Facility rejected",
        0x349E: "Response to STATUS ENQUIRY",
        0x349F: "Normal, unspecified",
        0x34A2: "No circuit / channel available",
        0x34A6: "Network out of order",
        0x34A9: "Temporary failure",
        0x34AA: "Switching equipment congestion",
        0x34AB: "Access information discarded",
        0x34AC: "Requested circuit / channel not available",
        0x34AF: "Resources unavailable, unspecified",
        0x34B1: "Quality of service unavailable",
        0x34B2: "Requested facility not subscribed",
        0x34B9: "Bearer capability not authorized",
        0x34BA: "Bearer capability not presently available",
        0x34BF: "Service or option not available, unspecified",
        0x34C1: "Bearer capability not implemented",
        0x34D8: "Incompatible destination",
        0x34E6: "Recovery on timer expiry",
        0x34FF: "Interworking, unspecified",
    ]

    /// Name from the built-in table; `nil` for codes it does not know.
    public var name: String? { Self.names[rawValue] }

    public var description: String {
        let hex = "0x" + String(rawValue, radix: 16, uppercase: true).leftPadded(to: 4)
        return name.map { "\($0) (\(hex))" } ?? "CAPI info \(hex)"
    }
}

extension String {
    func leftPadded(to n: Int, with c: Character = "0") -> String {
        count >= n ? self : String(repeating: c, count: n - count) + self
    }
}
