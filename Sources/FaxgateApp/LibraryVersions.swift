import FaxDocument
import MailOut
import SQLiteStorage

/// Versions of the C libraries actually loaded, for `faxgate version` and support snapshots.
enum LibraryVersions {
    static func lines() -> [String] {
        [
            "libtiff: \(FaxDocumentLibrary.libtiffVersion)",
            "libcurl: \(MailOutLibrary.curlVersion)",
            "sqlite: \(SQLiteStorage.sqliteVersion)",
        ]
    }
}
