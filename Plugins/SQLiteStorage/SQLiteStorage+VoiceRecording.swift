import FaxgateCore
import Foundation
import GRDB

extension SQLiteStorage {
    /// The voicemail recording kept while a fax tone's fax is received (`CallRecord.voiceRecordingPath`): typed,
    /// so a restart between the fax's end and the decision still finds the recording to mail or delete.
    static func registerVoiceRecordingMigration(_ m: inout DatabaseMigrator) {
        m.registerMigration("v-call-voice-recording-path") { db in
            try db.alter(table: "call") { t in t.add(column: "voiceRecordingPath", .text) }
        }
    }
}
