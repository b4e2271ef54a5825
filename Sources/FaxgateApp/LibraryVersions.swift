import FaxDocument
import MailOut
import PostgresStorage
import SQLiteStorage

/// Versions of the C libraries actually loaded, for `faxgate version` and support snapshots.
enum LibraryVersions {
    static func lines() -> [String] {
        [
            "libtiff: \(FaxDocumentLibrary.libtiffVersion)",
            "libcurl: \(MailOutLibrary.curlVersion)",
            "sqlite: \(SQLiteStorage.sqliteVersion)",
            // The client library; the server's version needs a connection (`PostgresStorage.serverVersion()`).
            "postgres-nio: \(PostgresStorage.clientLibraryVersion)",
        ]
    }
}
