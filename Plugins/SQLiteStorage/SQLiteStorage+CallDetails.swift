import FaxgateCore
import GRDB

extension SQLiteStorage {
    /// What a call's mail depends on after a restart, in typed columns: the numbers' types, whether the caller
    /// withheld the number, ECM and how the call ended. Before this, presentation and ECM lived only in the
    /// pipeline's memory, so a call finished after a crash was mailed with a withheld number.
    static func registerCallDetailMigrations(_ m: inout DatabaseMigrator) {
        m.registerMigration("call-v2-numbers-presentation-ecm-end") { db in
            try db.alter(table: "call") { t in
                t.add(column: "callingNumberType", .text)
                    .check { $0 == nil || PartyNumber.NumberType.allCases.map(\.rawValue).contains($0) }
                t.add(column: "calledNumberType", .text)
                    .check { $0 == nil || PartyNumber.NumberType.allCases.map(\.rawValue).contains($0) }
                t.add(column: "callingPresentation", .text)
                    .check { $0 == nil || PartyNumber.Presentation.allCases.map(\.rawValue).contains($0) }
                t.add(column: "ecm", .boolean)
                t.add(column: "endCause", .text)
                    .check { $0 == nil || CallRecord.EndCause.allCases.map(\.rawValue).contains($0) }
            }
        }
    }
}
