import CCurl

/// Facts about the C library behind this module, for `faxgate version` and support snapshots.
public enum MailOutLibrary {
    /// curl's version line, naming its TLS backend (GnuTLS on Debian's -gnutls flavour).
    public static var curlVersion: String { String(cString: curl_version()) }
}
