// The software fax modem: T.30 over 8 kHz linear audio through spandsp's fax_state_t.
//
// Transport-agnostic on purpose: it takes and gives frames of 16-bit samples (usually 160 = 20 ms), and the
// number of samples is its only clock. CAPI's transparent B-channel, a SIP/RTP leg or a test's virtual line
// all drive it the same way. Not thread-safe (neither is spandsp): one owner (an actor or one thread) per engine.
import FaxDocument

/// Modem families spandsp 0.0.6 can be limited to; it cannot cap the rate finer than that.
public enum FaxModem: Int, Sendable, CaseIterable, Comparable {
    case v27ter = 4800
    case v29 = 9600
    case v17 = 14400
    public var maxBitRate: Int { rawValue }
    public static func < (a: FaxModem, b: FaxModem) -> Bool { a.rawValue < b.rawValue }
    /// The fastest family whose top rate does not exceed `bitRate` (nil = all).
    public static func families(upTo bitRate: Int?) -> Set<FaxModem> {
        guard let bitRate else { return Set(allCases) }
        let allowed = allCases.filter { $0.rawValue <= bitRate }
        return Set(allowed.isEmpty ? [.v27ter] : allowed)
    }
}

/// T.4/T.6 compression on the line.
public enum LineCompression: String, Sendable, CaseIterable {
    case mh, mr, mmr
}

public struct FaxEngineOptions: Sendable, Equatable {
    /// We placed the call: send CNG, act as the calling terminal.
    public var calling: Bool
    /// Our station id (TSI when sending, CSID when receiving), printable ASCII, ≤ 20 characters.
    public var localIdent: String
    /// Text for the header line spandsp prints on each sent page (nil = none).
    public var pageHeader: String?
    /// Offer/accept error correction mode.
    public var ecm: Bool
    /// Modem families to offer.
    public var modems: Set<FaxModem>
    /// Compressions to offer (the receiver's choice among the common ones).
    public var compressions: Set<LineCompression>
    /// Receiving: accept fine resolution.
    public var acceptFine: Bool

    public init(calling: Bool, localIdent: String, pageHeader: String? = nil, ecm: Bool = true,
                modems: Set<FaxModem> = Set(FaxModem.allCases), compressions: Set<LineCompression> = Set(LineCompression.allCases),
                acceptFine: Bool = true) {
        self.calling = calling; self.localIdent = localIdent; self.pageHeader = pageHeader; self.ecm = ecm
        self.modems = modems; self.compressions = compressions; self.acceptFine = acceptFine
    }
}

/// What one page looked like on the line.
public struct FaxPageReport: Sendable, Equatable {
    /// 1-based.
    public var page: Int
    public var bitRate: Int
    public var compression: LineCompression
    public var fine: Bool
    public var ecm: Bool
    /// ECM frames the receiver asked for again while this page was sent.
    public var ecmRetransmittedFrames: Int
    /// Rows damaged beyond repair (non-ECM reception).
    public var badRows: Int
    public var width: Int
    public var length: Int
    public init(page: Int, bitRate: Int, compression: LineCompression, fine: Bool, ecm: Bool, ecmRetransmittedFrames: Int,
                badRows: Int, width: Int, length: Int) {
        self.page = page; self.bitRate = bitRate; self.compression = compression; self.fine = fine; self.ecm = ecm
        self.ecmRetransmittedFrames = ecmRetransmittedFrames; self.badRows = badRows; self.width = width; self.length = length
    }
}

/// How a T.30 session ended.
public struct FaxEngineResult: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case success
        case trainingFailed, noResponse, pageRefused, incompatible, remoteDisconnected, local, other
    }
    public var kind: Kind
    /// spandsp's T30_ERR_* code (0 = OK).
    public var code: Int
    /// spandsp's words for the code (t30_completion_code_to_str), with the rate when it matters.
    public var text: String
    /// Pages completely transferred.
    public var pages: Int
    public var remoteIdent: String?
    public var bitRate: Int?
    public var ecm: Bool?
    public var compression: LineCompression?
    public var ecmRetransmittedFrames: Int
    public var succeeded: Bool { kind == .success }
    public init(kind: Kind, code: Int, text: String, pages: Int, remoteIdent: String?, bitRate: Int?, ecm: Bool?,
                compression: LineCompression?, ecmRetransmittedFrames: Int) {
        self.kind = kind; self.code = code; self.text = text; self.pages = pages; self.remoteIdent = remoteIdent
        self.bitRate = bitRate; self.ecm = ecm; self.compression = compression; self.ecmRetransmittedFrames = ecmRetransmittedFrames
    }
}

/// Everything the engine tells its owner, in order.
public enum FaxEngineEvent: Sendable, Equatable {
    /// Phase B done: capabilities exchanged; the remote's ident (untrusted text, as sent) when it gave one.
    case negotiated(remoteIdent: String?, bitRate: Int, ecm: Bool, compression: LineCompression, fine: Bool)
    /// Phase D: a page went across (sent and confirmed, or received). Receiving: `page` holds its pixels.
    case page(FaxPageReport, FaxPage?)
    /// Phase E: the session is over. Nothing follows.
    case finished(FaxEngineResult)
}

public struct FaxEngineError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One T.30 session (one call). Create it when the audio path is up; feed every received frame to
/// `receive`, ask `transmit` for exactly as many samples as the line takes; collect `takeEvents()`.
public final class FaxEngine {
    /// Sending: the pages to send. Receiving: nil.
    public init(options: FaxEngineOptions, send pages: [FaxPage]?, workDirectory: String) throws(FaxEngineError) {
        fatalError("SoftFax helper implements this")
    }

    /// Audio from the remote (linear 16-bit, 8 kHz).
    public func receive(_ samples: UnsafeBufferPointer<Int16>) { fatalError("stub") }
    public func receive(_ samples: [Int16]) { samples.withUnsafeBufferPointer { receive($0) } }

    /// Audio towards the remote: always exactly `count` samples (silence when the modem has nothing to say).
    public func transmit(count: Int) -> [Int16] { fatalError("stub") }

    /// The call went away under the engine (hang-up, line lost): ends the session now; `.finished` follows.
    public func lineDisconnected() { fatalError("stub") }

    /// Events since the last call, oldest first.
    public func takeEvents() -> [FaxEngineEvent] { fatalError("stub") }

    /// True once `.finished` was produced.
    public var isFinished: Bool { fatalError("stub") }

    /// Samples received so far (the engine's clock).
    public var samplesReceived: Int { fatalError("stub") }
}

/// Detects a fax calling tone (CNG, 1100 Hz) or answer tone (CED/ANSam, 2100 Hz) in linear audio, for a
/// voice call that may turn into a fax when the controller does not report the tone itself.
public final class ConnectToneDetector {
    public enum Tone: Sendable, Equatable { case cng, ced }
    public init(_ tone: Tone) { fatalError("stub") }
    /// Feeds audio; true once the tone has been heard (stays true).
    public func feed(_ samples: UnsafeBufferPointer<Int16>) -> Bool { fatalError("stub") }
    public func feed(_ samples: [Int16]) -> Bool { samples.withUnsafeBufferPointer { feed($0) } }
}
