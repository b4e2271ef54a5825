import Foundation
import FaxgateCore
import GRDB

/// One struct per table; the core's `CallRecord` stays free of GRDB.
struct CallRow: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "call"
    var id: Int64?
    var direction: String
    var kind: String
    var state: String
    var outcome: String?
    var startedAt: Date
    var endedAt: Date?
    var callingNumber: String?
    var calledNumber: String
    var extensionName: String?
    var remoteStationID: String?
    var pages: Int?
    var bitRate: Int?
    var fine: Bool?
    var reason: Int?
    var reasonB3: Int?
    var reasonText: String?
    var spoolPath: String?
    var detail: String?
    var mailMessageID: String?
    // Added by migration "call-v2-numbers-presentation-ecm-end" (SQLiteStorage+CallDetails.swift).
    var callingNumberType: String?
    var calledNumberType: String?
    var callingPresentation: String?
    var ecm: Bool?
    var endCause: String?
    // Added by migration "v-fax-engine-details" (SQLiteStorage+EngineDetails.swift).
    var engine: String?
    var compression: String?
    var ecmRetransmittedFrames: Int?
    var t30FailureKind: String?
    var t30FailureCode: Int?
    var t30FailureText: String?
    var t30FailureBitRate: Int?
    var pageStatistics: String?
    // Added by migration "v-call-voice-recording-path" (SQLiteStorage+VoiceRecording.swift).
    var voiceRecordingPath: String?

    init(_ r: CallRecord) {
        id = r.id; direction = r.direction.rawValue; kind = r.kind.rawValue; state = r.state.rawValue
        outcome = r.outcome?.rawValue; startedAt = r.startedAt; endedAt = r.endedAt; callingNumber = r.callingNumber
        calledNumber = r.calledNumber; extensionName = r.extensionName; remoteStationID = r.remoteStationID
        pages = r.pages; bitRate = r.bitRate; fine = r.fine; reason = r.reason; reasonB3 = r.reasonB3
        reasonText = r.reasonText; spoolPath = r.spoolPath; detail = r.detail; mailMessageID = r.mailMessageID
        callingNumberType = r.callingNumberType?.rawValue; calledNumberType = r.calledNumberType?.rawValue
        callingPresentation = r.callingPresentation?.rawValue; ecm = r.ecm; endCause = r.endCause?.rawValue
        engineColumns = EngineColumns(engine: r.engine, compression: r.compression, ecmRetransmittedFrames: r.ecmRetransmittedFrames,
                                      failure: r.t30Failure, pages: r.pageStatistics)
        voiceRecordingPath = r.voiceRecordingPath
    }

    var engineColumns: EngineColumns {
        get {
            EngineColumns(engine: engine, compression: compression, ecmRetransmittedFrames: ecmRetransmittedFrames,
                          t30FailureKind: t30FailureKind, t30FailureCode: t30FailureCode, t30FailureText: t30FailureText,
                          t30FailureBitRate: t30FailureBitRate, pageStatistics: pageStatistics)
        }
        set {
            engine = newValue.engine; compression = newValue.compression; ecmRetransmittedFrames = newValue.ecmRetransmittedFrames
            t30FailureKind = newValue.t30FailureKind; t30FailureCode = newValue.t30FailureCode; t30FailureText = newValue.t30FailureText
            t30FailureBitRate = newValue.t30FailureBitRate; pageStatistics = newValue.pageStatistics
        }
    }

    var record: CallRecord {
        var r = CallRecord(direction: CallRecord.Direction(rawValue: direction) ?? .incoming,
                           kind: CallRecord.Kind(rawValue: kind) ?? .fax,
                           state: CallRecord.State(rawValue: state) ?? .received, startedAt: startedAt,
                           callingNumber: callingNumber, calledNumber: calledNumber, extensionName: extensionName)
        r.id = id; r.outcome = outcome.flatMap(CallRecord.Outcome.init(rawValue:)); r.endedAt = endedAt
        r.remoteStationID = remoteStationID; r.pages = pages; r.bitRate = bitRate; r.fine = fine; r.reason = reason
        r.reasonB3 = reasonB3; r.reasonText = reasonText; r.spoolPath = spoolPath; r.detail = detail
        r.mailMessageID = mailMessageID
        r.callingNumberType = callingNumberType.flatMap(PartyNumber.NumberType.init(rawValue:))
        r.calledNumberType = calledNumberType.flatMap(PartyNumber.NumberType.init(rawValue:))
        // An unreadable presentation value is treated as withheld: never show a number we are unsure about.
        r.callingPresentation = callingPresentation.map { PartyNumber.Presentation(rawValue: $0) ?? .restricted }
        r.ecm = ecm
        r.endCause = endCause.flatMap(CallRecord.EndCause.init(rawValue:))
        let e = engineColumns
        r.engine = e.engineKind; r.compression = e.compressionKind; r.ecmRetransmittedFrames = ecmRetransmittedFrames
        r.t30Failure = e.failure; r.pageStatistics = e.pages
        r.voiceRecordingPath = voiceRecordingPath
        return r
    }

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

struct CallEventRow: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "callEvent"
    var id: Int64?
    var callID: Int64
    var at: Date
    var text: String
    init(callID: Int64, at: Date, text: String) { self.callID = callID; self.at = at; self.text = text }
}

struct DocumentRow: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "document"
    var id: Int64?
    var callID: Int64
    var kind: String
    var filename: String
    var bytes: Data
}
