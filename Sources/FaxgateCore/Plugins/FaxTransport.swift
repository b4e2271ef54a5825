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
    /// Called party number (MSN or DDI digits) with its type, as signalled.
    public var called: PartyNumber
    /// Calling party number with type and presentation; nil when the network sent none at all.
    public var caller: PartyNumber?

    /// Called party number digits (routing uses these).
    public var calledNumber: String { called.digits }
    /// Calling party digits, nil when not signalled (may be set although withheld: check the presentation).
    public var callingNumber: String? { caller.flatMap { $0.digits.isEmpty ? nil : $0.digits } }
    /// The caller asked for their number not to be shown (CLIR).
    public var callingNumberRestricted: Bool { caller?.presentation == .restricted }

    public init(handle: UInt32, controller: Int, service: Service, called: PartyNumber, caller: PartyNumber?) {
        self.handle = handle; self.controller = controller; self.service = service
        self.called = called; self.caller = caller
    }

    /// Numbers of unknown type.
    public init(handle: UInt32, controller: Int, service: Service, calledNumber: String, callingNumber: String?,
                callingNumberRestricted: Bool) {
        let caller: PartyNumber? = callingNumber == nil && !callingNumberRestricted ? nil
            : PartyNumber(digits: callingNumber ?? "", presentation: callingNumberRestricted ? .restricted : .allowed)
        self.init(handle: handle, controller: controller, service: service, called: PartyNumber(digits: calledNumber), caller: caller)
    }
}

/// What the gateway wants done with an incoming call.
public enum CallDecision: Sendable, Equatable {
    /// Answer as a fax receiver with this identity.
    case answerFax(FaxAnswer)
    /// Answer as voicemail: greeting, beep, recording (see VoiceCalls.swift); a fax tone switches to fax.
    case answerVoice(VoiceAnswer)
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

/// Fax session parameters a transport learned (CAPI: from the NCPI; the software modem: from T.30 itself).
public struct FaxSessionInfo: Sendable, Equatable, Codable {
    public var bitRate: Int?
    public var fine: Bool?
    public var pages: Int?
    public var remoteStationID: String?
    public var ecm: Bool?
    /// Who ran T.30: the controller's firmware or our software modem. nil = not reported.
    public var engine: FaxEngineKind?
    /// Line compression negotiated (the software modem knows it; a controller hides it).
    public var compression: FaxCompression?
    /// ECM frames the receiver asked to have sent again, over the whole call.
    public var ecmRetransmittedFrames: Int?
    /// One entry per page transferred, in order (software modem only).
    public var pageStatistics: [FaxPageStatistics]
    /// Why T.30 failed, typed, when it did (nil on success or when the transport cannot tell).
    public var failure: T30Failure?
    public init(bitRate: Int? = nil, fine: Bool? = nil, pages: Int? = nil, remoteStationID: String? = nil, ecm: Bool? = nil,
                engine: FaxEngineKind? = nil, compression: FaxCompression? = nil, ecmRetransmittedFrames: Int? = nil,
                pageStatistics: [FaxPageStatistics] = [], failure: T30Failure? = nil) {
        // The remote's station id is free text from the line: cleaned once here, for log lines, journal and mails.
        self.bitRate = bitRate; self.fine = fine; self.pages = pages; self.remoteStationID = remoteStationID.map(UntrustedText.clean); self.ecm = ecm
        self.engine = engine; self.compression = compression; self.ecmRetransmittedFrames = ecmRetransmittedFrames
        self.pageStatistics = pageStatistics; self.failure = failure
    }
    // Written before the software modem existed, a stored value has no page statistics: decode it as empty.
    public init(from decoder: Decoder) throws {
        enum K: String, CodingKey {
            case bitRate, fine, pages, remoteStationID, ecm, engine, compression, ecmRetransmittedFrames, pageStatistics, failure
        }
        let c = try decoder.container(keyedBy: K.self)
        self.init(bitRate: try c.decodeIfPresent(Int.self, forKey: .bitRate), fine: try c.decodeIfPresent(Bool.self, forKey: .fine),
                  pages: try c.decodeIfPresent(Int.self, forKey: .pages),
                  remoteStationID: try c.decodeIfPresent(String.self, forKey: .remoteStationID),
                  ecm: try c.decodeIfPresent(Bool.self, forKey: .ecm), engine: try c.decodeIfPresent(FaxEngineKind.self, forKey: .engine),
                  compression: try c.decodeIfPresent(FaxCompression.self, forKey: .compression),
                  ecmRetransmittedFrames: try c.decodeIfPresent(Int.self, forKey: .ecmRetransmittedFrames),
                  pageStatistics: try c.decodeIfPresent([FaxPageStatistics].self, forKey: .pageStatistics) ?? [],
                  failure: try c.decodeIfPresent(T30Failure.self, forKey: .failure))
    }
}

/// Who runs the fax protocol (T.30) for a call.
public enum FaxEngineKind: String, Sendable, Codable, CaseIterable {
    /// The controller's own fax firmware (CAPI B protocol 4/4/4).
    case controller
    /// Our software modem over a transparent audio channel.
    case software
}

/// T.4/T.6 line compression.
public enum FaxCompression: String, Sendable, Codable, CaseIterable {
    case mh    // T.4 one-dimensional
    case mr    // T.4 two-dimensional
    case mmr   // T.6
}

/// What the modem knows about one transferred page.
public struct FaxPageStatistics: Sendable, Equatable, Codable {
    /// 1-based page number within the call.
    public var page: Int
    public var bitRate: Int?
    public var compression: FaxCompression?
    public var fine: Bool?
    public var ecm: Bool?
    /// ECM frames retransmitted for this page.
    public var ecmRetransmittedFrames: Int?
    /// Rows the receiver found damaged (non-ECM).
    public var badRows: Int?
    public init(page: Int, bitRate: Int? = nil, compression: FaxCompression? = nil, fine: Bool? = nil, ecm: Bool? = nil,
                ecmRetransmittedFrames: Int? = nil, badRows: Int? = nil) {
        self.page = page; self.bitRate = bitRate; self.compression = compression; self.fine = fine; self.ecm = ecm
        self.ecmRetransmittedFrames = ecmRetransmittedFrames; self.badRows = badRows
    }
}

/// A T.30 failure in typed form, so retry policy and pages never read reason text.
public struct T30Failure: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// The modems could not train (at `bitRate`, or at any rate).
        case trainingFailed = "training_failed"
        /// The remote never answered with fax signals (no fax machine, or no reply to our frames).
        case noResponse = "no_response"
        /// The remote refused a page (RTN/PIN), or ECM could not get it across.
        case pageRefused = "page_refused"
        /// The two sides have no common capability (resolution, width, compression).
        case incompatible
        /// The remote ended the session or the call in the middle (DCN, hang-up).
        case remoteDisconnected = "remote_disconnected"
        /// Our side: document unreadable, out of memory, local abort.
        case local
        /// Anything else the modem reported.
        case other
    }
    public var kind: Kind
    /// The engine's own result code (spandsp: T30_ERR_*), for support.
    public var code: Int
    /// The engine's words for it (e.g. "Training failed at 9600 bit/s").
    public var text: String
    /// The rate the failure happened at, when known.
    public var bitRate: Int?
    public init(kind: Kind, code: Int, text: String, bitRate: Int? = nil) {
        self.kind = kind; self.code = code; self.text = text; self.bitRate = bitRate
    }
}

/// Limits on the modem for one attempt: the retry policy lowers them after a training or ECM failure
/// (GOfax.IP's `disablev17afterretry` / `disableECMafterretry`). A controller with fax firmware may ignore them.
public struct ModemSettings: Sendable, Equatable, Codable {
    /// Highest bit rate to offer: 14400 (V.17), 9600 (V.29), 4800 (V.27ter); nil = the best the engine has.
    public var maxBitRate: Int?
    /// Offer error correction mode.
    public var ecm: Bool
    public init(maxBitRate: Int? = nil, ecm: Bool = true) { self.maxBitRate = maxBitRate; self.ecm = ecm }
    public static let best = ModemSettings()
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
    /// Whether the call ended by itself (`.cleared`) or the transport lost it (`.lineLost`); typed, so nothing
    /// downstream has to read `text`.
    public var cause: CallRecord.EndCause
    /// True when the document was received completely and correctly.
    public var succeeded: Bool {
        cause == .cleared && reasonB3 == 0 && (reason == 0 || reason == 0x3490 || reason == 0x3400) && (session.pages ?? 0) > 0
            && session.failure == nil
    }
    public init(reason: Int, reasonB3: Int, text: String, session: FaxSessionInfo, cause: CallRecord.EndCause = .cleared) {
        self.reason = reason; self.reasonB3 = reasonB3; self.text = text; self.session = session; self.cause = cause
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
    /// A voice call is over; the recording spool file has been finished. Not called after a switch to fax.
    func voiceEnded(receptionID: Int64, end: VoiceCallEnd) async
    /// A fax tone turned a voice call into a fax reception; `callEnded` follows when the fax is over.
    func voiceSwitchedToFax(receptionID: Int64, spoolPath: String) async
}

/// A fax/voice line. Runs until cancelled or gracefully shut down; on shutdown it finishes or
/// safely parks calls in flight (the spool file is synced, the call is reported ended).
public protocol FaxTransport: ServiceLifecycle.Service {
    var name: String { get }
    /// Registration and channels now, for the dashboard, /metrics and /health/ready (StatusSnapshots.swift).
    func statusSnapshot() async -> TransportSnapshot
}

// MARK: - Sending

/// What a transport is asked to dial: ASCII digits `0`–`9` only, 1…30 of them. The only way to make one is the
/// failable initializer (also when decoded), so a transport never sees a letter, a `+`, another script's digit
/// or an invisible character, whatever was written in the mail. Transports check again before they dial.
public struct DialString: Sendable, Hashable, Codable, CustomStringConvertible {
    /// CAPI's called party number leaves room for 31 digits after its type octet; no real number is longer.
    public static let maxLength = 30
    public let digits: String

    public init?(_ text: String) {
        guard Self.isValid(text) else { return nil }
        digits = text
    }

    /// The rule, on bytes (not Characters: "1\u{0301}" is one Character).
    public static func isValid(_ text: String) -> Bool {
        (1...maxLength).contains(text.utf8.count) && text.utf8.allSatisfy { (0x30...0x39).contains($0) }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard Self.isValid(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a dial string"))
        }
        digits = text
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(digits)
    }
    public var description: String { digits }
}

/// One outgoing fax call, ready to dial.
public struct OutgoingFax: Sendable, Equatable {
    public var jobID: Int64
    /// Digits to dial, after the line's prefix rules (e.g. "0" for an outside line is already in here).
    public var dialString: DialString
    /// Our number to signal (MSN/DDI); nil = the line's default.
    public var callingNumber: String?
    /// Suppress our number (CLIR).
    public var restrictCallingNumber: Bool
    /// Our station id (TSI) and the headline the remote prints on each page.
    public var stationID: String
    public var headline: String
    public var fine: Bool
    /// The document in SFF, as FaxDocument.SFFWriter makes it.
    public var sff: [UInt8]
    /// Controller to use; nil = any with a free B-channel.
    public var controller: Int?
    /// Give up when nobody answers within this time (after ALERTING).
    public var answerTimeout: Duration
    /// Modem limits for this attempt (lowered by the retry policy after training/ECM failures).
    public var modem: ModemSettings

    public init(jobID: Int64, dialString: DialString, callingNumber: String? = nil, restrictCallingNumber: Bool = false,
                stationID: String, headline: String, fine: Bool, sff: [UInt8], controller: Int? = nil,
                answerTimeout: Duration = .seconds(60), modem: ModemSettings = .best) {
        self.jobID = jobID; self.dialString = dialString; self.callingNumber = callingNumber
        self.restrictCallingNumber = restrictCallingNumber; self.stationID = stationID; self.headline = headline
        self.fine = fine; self.sff = sff; self.controller = controller; self.answerTimeout = answerTimeout
        self.modem = modem
    }
}

/// What became of one dial attempt.
public struct SendOutcome: Sendable, Equatable, Codable {
    public enum Cause: String, Sendable, Codable {
        case success
        case busy              // 0x3491 — retry soon
        case noAnswer          // 0x3492/0x3493, or our answer timeout — retry later
        case faxProtocolError  // training, remote abort, not a fax (0x331x) — retry once or twice
        case networkFailure    // no channel, temporary failure, controller lost (0x34A2, 0x34A9, 0x3301)
        case invalidNumber     // 0x3481, 0x349C — final, costs nothing to stop
        case rejected          // 0x3495 call rejected — final
        case localError        // we could not even start (no controller, bad document)
        case blockedByPolicy   // the dial policy refused the number or dial string right before dialling — final
    }
    public var cause: Cause
    public var reason: Int
    public var reasonB3: Int
    /// Human-readable (capi_info2str plus context).
    public var text: String
    public var session: FaxSessionInfo
    /// Pages the remote confirmed (NCPI pages at DISCONNECT_B3).
    public var pagesSent: Int
    public var dialedAt: Date
    public var connectedAt: Date?
    public var endedAt: Date

    public init(cause: Cause, reason: Int, reasonB3: Int, text: String, session: FaxSessionInfo, pagesSent: Int,
                dialedAt: Date, connectedAt: Date?, endedAt: Date) {
        self.cause = cause; self.reason = reason; self.reasonB3 = reasonB3; self.text = text; self.session = session
        self.pagesSent = pagesSent; self.dialedAt = dialedAt; self.connectedAt = connectedAt; self.endedAt = endedAt
    }
}

/// A transport that can also place fax calls. The queue calls `send` concurrently, at most `channels` at once.
public protocol FaxSendingTransport: FaxTransport {
    /// Free + busy B-channels usable for outgoing calls right now (0 while the controller is away).
    var channels: Int { get async }
    /// Dials, sends the document and returns when the call is over. Never throws: every failure is an outcome.
    func send(_ fax: OutgoingFax) async -> SendOutcome
}
