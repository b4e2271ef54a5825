import FaxgateCore
import Foundation
import GRDB

extension SQLiteStorage {
    /// What the fax engine knows (issue 10), in typed columns on calls and jobs: engine, compression, ECM frames
    /// sent again, the T.30 failure (kind, code, words, rate) and, display-only, the per-page statistics as JSON.
    /// A job also keeps the modem limits for its next attempt, so a fallback survives a restart.
    static func registerEngineDetailMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("v-fax-engine-details") { db in
            for table in ["call", "job"] {
                try db.alter(table: table) { t in
                    t.add(column: "engine", .text).check { $0 == nil || FaxEngineKind.allCases.map(\.rawValue).contains($0) }
                    t.add(column: "compression", .text).check { $0 == nil || FaxCompression.allCases.map(\.rawValue).contains($0) }
                    t.add(column: "ecmRetransmittedFrames", .integer).check { $0 == nil || $0 >= 0 }
                    t.add(column: "t30FailureKind", .text).check { $0 == nil || T30Failure.Kind.allCases.map(\.rawValue).contains($0) }
                    t.add(column: "t30FailureCode", .integer)
                    t.add(column: "t30FailureText", .text)
                    t.add(column: "t30FailureBitRate", .integer)
                    t.add(column: "pageStatistics", .text)
                }
            }
            try db.alter(table: "job") { t in
                t.add(column: "ecm", .boolean)
                t.add(column: "nextMaxBitRate", .integer).check { $0 == nil || $0 > 0 }
                t.add(column: "nextECM", .boolean).notNull().defaults(to: true)
            }
        }
    }
}

/// The columns shared by `call` and `job`, mapped once.
struct EngineColumns {
    var engine: String?
    var compression: String?
    var ecmRetransmittedFrames: Int?
    var t30FailureKind: String?
    var t30FailureCode: Int?
    var t30FailureText: String?
    var t30FailureBitRate: Int?
    var pageStatistics: String?

    init(engine: FaxEngineKind?, compression: FaxCompression?, ecmRetransmittedFrames: Int?, failure: T30Failure?,
         pages: [FaxPageStatistics]) {
        self.engine = engine?.rawValue; self.compression = compression?.rawValue
        self.ecmRetransmittedFrames = ecmRetransmittedFrames
        t30FailureKind = failure?.kind.rawValue; t30FailureCode = failure?.code; t30FailureText = failure?.text
        t30FailureBitRate = failure?.bitRate
        pageStatistics = FaxPageStatistics.storedText(pages)
    }

    init(engine: String?, compression: String?, ecmRetransmittedFrames: Int?, t30FailureKind: String?, t30FailureCode: Int?,
         t30FailureText: String?, t30FailureBitRate: Int?, pageStatistics: String?) {
        self.engine = engine; self.compression = compression; self.ecmRetransmittedFrames = ecmRetransmittedFrames
        self.t30FailureKind = t30FailureKind; self.t30FailureCode = t30FailureCode; self.t30FailureText = t30FailureText
        self.t30FailureBitRate = t30FailureBitRate; self.pageStatistics = pageStatistics
    }

    var engineKind: FaxEngineKind? { engine.flatMap(FaxEngineKind.init(rawValue:)) }
    var compressionKind: FaxCompression? { compression.flatMap(FaxCompression.init(rawValue:)) }
    var failure: T30Failure? {
        // A kind this version does not know (written by a newer one) is still a failure: "other".
        t30FailureKind.map {
            T30Failure(kind: T30Failure.Kind(rawValue: $0) ?? .other, code: t30FailureCode ?? 0, text: t30FailureText ?? "",
                       bitRate: t30FailureBitRate)
        }
    }
    var pages: [FaxPageStatistics] { FaxPageStatistics.fromStoredText(pageStatistics) }

}
