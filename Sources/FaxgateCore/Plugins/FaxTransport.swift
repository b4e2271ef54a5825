import Foundation
import Logging
import ServiceLifecycle

/// An incoming call as a transport reports it, before anything is decided.
public struct IncomingCall: Sendable, Equatable {
    public enum Service: Sendable, Equatable {
        case fax          // CIP 17 (G2/G3 fax)
        case audio        // CIP 4 (3.1 kHz audio) — may be a fax machine or a phone
        case voice        // CIP 1 / 16 (speech, telephony)
        case other(Int)
    }
    /// Transport-specific handle, unique while the call lasts (for CAPI: the PLCI).
    public var handle: UInt32
    public var controller: Int
    public var service: Service
    /// Called party number (MSN or DDI digits), as signalled.
    public var calledNumber: String
    /// Calling party number, nil when not signalled.
    public var callingNumber: String?
    /// The caller asked for their number not to be shown (CLIR).
    public var callingNumberRestricted: Bool

    public init(handle: UInt32, controller: Int, service: Service, calledNumber: String, callingNumber: String?,
                callingNumberRestricted: Bool) {
        self.handle = handle; self.controller = controller; self.service = service
        self.calledNumber = calledNumber; self.callingNumber = callingNumber
        self.callingNumberRestricted = callingNumberRestricted
    }
}

/// What the gateway wants done with an incoming call.
public enum CallDecision: Sendable, Equatable {
    /// Answer as a fax receiver with this identity.
    case answerFax(FaxAnswer)
    /// Refuse the call. `cause` maps to the transport's reject code (CAPI CONNECT_RESP Reject).
    case reject(RejectCause)
    /// Let another device on the line take it (CAPI Reject = 1).
    case ignore
}

public struct FaxAnswer: Sendable, Equatable {
    public var receptionID: Int64
    /// Our station id (CSID) sent to the remote, ≤ 20 characters.
    public var stationID: String
    public var headline: String
    /// Request fine (196 lpi) resolution.
    public var fine: Bool
    /// Delay before answering, with ALERT sent so the caller hears ringing.
    public var ringDelay: Duration
    /// Where the transport writes the document, durably.
    public var spool: ReceptionSpoolFile
    public init(receptionID: Int64, stationID: String, headline: String, fine: Bool = true, ringDelay: Duration = .zero,
                spool: ReceptionSpoolFile) {
        self.receptionID = receptionID; self.stationID = stationID; self.headline = headline
        self.fine = fine; self.ringDelay = ringDelay; self.spool = spool
    }
    public static func == (a: FaxAnswer, b: FaxAnswer) -> Bool { a.receptionID == b.receptionID }
}

public enum RejectCause: Sendable, Equatable {
    case normalClearing, busy, incompatibleDestination, unallocatedNumber
}

/// Fax session parameters a transport learned (CAPI: from the NCPI).
public struct FaxSessionInfo: Sendable, Equatable, Codable {
    public var bitRate: Int?
    public var fine: Bool?
    public var pages: Int?
    public var remoteStationID: String?
    public var ecm: Bool?
    public init(bitRate: Int? = nil, fine: Bool? = nil, pages: Int? = nil, remoteStationID: String? = nil, ecm: Bool? = nil) {
        self.bitRate = bitRate; self.fine = fine; self.pages = pages; self.remoteStationID = remoteStationID; self.ecm = ecm
    }
}

/// How a call ended, in the transport's codes and in words.
public struct CallEnd: Sendable, Equatable, Codable {
    /// Physical-layer reason (CAPI DISCONNECT_IND Reason), 0 = normal.
    public var reason: Int
    /// Protocol reason (CAPI DISCONNECT_B3_IND Reason_B3), 0 = normal.
    public var reasonB3: Int
    /// Human-readable text for the two codes (CAPI: capi_info2str).
    public var text: String
    public var session: FaxSessionInfo
    /// True when the document was received completely and correctly.
    public var succeeded: Bool { reasonB3 == 0 && (reason == 0 || reason == 0x3490 || reason == 0x3400) && (session.pages ?? 0) > 0 }
    public init(reason: Int, reasonB3: Int, text: String, session: FaxSessionInfo) {
        self.reason = reason; self.reasonB3 = reasonB3; self.text = text; self.session = session
    }
}

/// Implemented by the gateway core; called by a transport for every call it sees.
/// Calls may arrive concurrently from several controllers.
public protocol ReceptionHandler: Sendable {
    /// Decide about a new call. Must answer quickly (the caller is waiting for ringing).
    func decide(_ call: IncomingCall) async -> CallDecision
    /// The remote's fax session is up (station id, rate known); optional progress report.
    func faxConnected(receptionID: Int64, info: FaxSessionInfo) async
    /// The call is over. The spool file has been finished (flushed, fsynced) or abandoned by the transport.
    func callEnded(receptionID: Int64, end: CallEnd) async
}

/// A fax/voice line. Runs until cancelled or gracefully shut down; on shutdown it finishes or
/// safely parks calls in flight (the spool file is synced, the call is reported ended).
public protocol FaxTransport: ServiceLifecycle.Service {
    var name: String { get }
}
