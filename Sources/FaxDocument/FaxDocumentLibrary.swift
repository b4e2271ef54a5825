import CTIFF

/// Facts about the C library behind this module, for `faxgate version` and support snapshots.
public enum FaxDocumentLibrary {
    /// libtiff's own version banner, first line only.
    public static var libtiffVersion: String {
        String(cString: TIFFGetVersion()).split(separator: "\n").first.map(String.init) ?? "unknown"
    }
}
