import Foundation

/// One row of the journal: a call, what became of it, and where its document is.
/// Content never goes in here — only metadata; the document lives in the spool and in storage.
public struct CallRecord: Sendable, Equatable, Codable {
    public enum Direction: String, Sendable, Codable { case incoming, outgoing }
    public enum Kind: String, Sendable, Codable { case fax, voice }

    /// Where a call is in its life. Only `ReceptionPipeline` moves a record from state to state.
    public enum State: String, Sendable, Codable, CaseIterable {
        /// Data is arriving; a restart finds the call interrupted.
        case receiving
        /// Call over, document complete in the spool, not yet converted and queued for mail.
        case received
        /// Mail written to the durable outbox, waiting for the SMTP server to accept it.
        case mailQueued = "mail_queued"
        /// The SMTP server accepted the mail.
        case mailed
        /// The mail could not be delivered within the retry period; the document is kept.
        case mailFailed = "mail_failed"
        /// Refused at the door (unknown number, not a fax); nothing was received.
        case rejected
    }

    /// What arrived, independent of mail delivery.
    public enum Outcome: String, Sendable, Codable {
        case complete      // every page, no error
        case partial       // some pages, then an error
        case failed        // nothing readable arrived
        case rejected      // not answered on purpose
    }

    /// How a call ended, beyond the transport's codes. Decisions after a restart read this, never `reasonText`.
    public enum EndCause: String, Sendable, Codable, CaseIterable {
        /// Ended through the protocol; `reason`/`reasonB3` hold the codes.
        case cleared
        /// The transport lost the line or controller, or stopped, before the call ended by itself.
        case lineLost = "line_lost"
        /// The gateway stopped during the call (crash, power cut); found at the next start.
        case interrupted
        /// Voice: the caller hung up, the maximum length was reached, silence, or '#'.
        case hangUp = "hang_up"
        case maxLength = "max_length"
        case silence
        case dtmfHash = "dtmf_hash"
        /// Fax: the gateway hung up because the reception went past `reception:` limits (bytes, pages, minutes);
        /// the pages before the limit are kept and mailed.
        case limitExceeded = "limit_exceeded"

        /// The call did not run to its own end: what arrived may be incomplete.
        public var isInterruption: Bool { self == .lineLost || self == .interrupted || self == .limitExceeded }
    }

    public var id: Int64?
    public var direction: Direction
    public var kind: Kind
    public var state: State
    public var outcome: Outcome?
    public var startedAt: Date
    public var endedAt: Date?
    public var callingNumber: String?
    public var calledNumber: String
    public var extensionName: String?
    public var remoteStationID: String?
    public var pages: Int?
    public var bitRate: Int?
    public var fine: Bool?
    public var reason: Int?
    public var reasonB3: Int?
    public var reasonText: String?
    /// The received document (SFF) in the spool.
    public var spoolPath: String?
    /// What went wrong beyond the codes, in words (conversion problems, interrupted by restart …).
    public var detail: String?
    public var mailMessageID: String?
    /// Type of the calling number; nil for rows written before it was recorded (treated as unknown).
    public var callingNumberType: PartyNumber.NumberType?
    public var calledNumberType: PartyNumber.NumberType?
    /// Presentation of the calling number. A withheld number (restricted) is never stored in `callingNumber`.
    public var callingPresentation: PartyNumber.Presentation?
    /// Error correction mode used, when the transport reported it.
    public var ecm: Bool?
    public var endCause: EndCause?
    /// What the fax engine reported (issue 10), typed so pages and mails never parse `reasonText`.
    /// Who ran T.30 (controller firmware or the software modem); nil = not reported.
    public var engine: FaxEngineKind?
    public var compression: FaxCompression?
    /// ECM frames sent again over the whole call.
    public var ecmRetransmittedFrames: Int?
    /// Why T.30 failed; nil on success or when the transport cannot tell.
    public var t30Failure: T30Failure?
    /// One entry per page (software modem only); at most `FaxPageStatistics.storedLimit`.
    public var pageStatistics: [FaxPageStatistics] = []
    /// The voicemail recording of a call a fax tone switched to fax, kept until the fax has brought a page: with
    /// none (a whistle, a tone without a fax) it is mailed as the voice message it was. nil otherwise.
    public var voiceRecordingPath: String?

    public init(direction: Direction = .incoming, kind: Kind = .fax, state: State, startedAt: Date = Date(),
                callingNumber: String?, calledNumber: String, extensionName: String? = nil) {
        self.direction = direction; self.kind = kind; self.state = state; self.startedAt = startedAt
        self.callingNumber = callingNumber; self.calledNumber = calledNumber; self.extensionName = extensionName
    }

    public var durationSeconds: Double? { endedAt.map { $0.timeIntervalSince(startedAt) } }

    /// The caller as signalled (withheld: no digits, presentation restricted); nil when nothing was signalled.
    public var caller: PartyNumber? {
        let presentation = callingPresentation ?? .allowed
        if callingNumber == nil && presentation == .allowed { return nil }
        return PartyNumber(digits: callingNumber ?? "", type: callingNumberType ?? .unknown, presentation: presentation)
    }

    public var called: PartyNumber { PartyNumber(digits: calledNumber, type: calledNumberType ?? .unknown) }

    /// Takes the numbers of an incoming call; a withheld caller's digits are not kept.
    public mutating func setNumbers(of call: IncomingCall) {
        let presentation = call.caller?.presentation ?? .allowed
        callingNumber = presentation == .allowed ? call.callingNumber : nil
        callingNumberType = call.caller.map(\.type)
        callingPresentation = call.caller?.presentation
        calledNumber = call.called.digits
        calledNumberType = call.called.type
    }
}

/// A document derived from a call (the PDF that was mailed, the TIFF …), kept in storage.
public struct StoredDocument: Sendable, Equatable {
    public var callID: Int64
    public var kind: String
    public var filename: String
    public var bytes: [UInt8]
    public init(callID: Int64, kind: String, filename: String, bytes: [UInt8]) {
        self.callID = callID; self.kind = kind; self.filename = filename; self.bytes = bytes
    }
}

/// One line of a call's history, as `faxgate show` prints it.
public struct CallEvent: Sendable, Equatable {
    public var callID: Int64
    public var at: Date
    public var text: String
    public init(callID: Int64, at: Date = Date(), text: String) { self.callID = callID; self.at = at; self.text = text }
}
