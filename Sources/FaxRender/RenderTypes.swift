// Public value types of the renderer: what goes in, how it is bounded, and how it fails.
import FaxDocument

public enum Paper: Sendable, Equatable, Hashable {
    case a4
    case letter

    /// Page size in PostScript points.
    public var points: (width: Double, height: Double) {
        switch self {
        case .a4: (595, 842)
        case .letter: (612, 792)
        }
    }

    /// Fax rows of one page at `resolution` (A4 fine: 2292, Letter fine: 2156).
    public func rows(_ resolution: VerticalResolution) -> Int {
        Int((points.height / 72 * resolution.linesPerInch).rounded())
    }

    /// Widest content in fax pixels: A4 (1686) is narrower than the 1728-pixel line and gets centred;
    /// Letter (1734) is wider and is scaled down to the line.
    public var contentWidth: Int {
        min(FaxPage.standardWidth, Int((points.width / 72 * FaxPage.horizontalDPI).rounded()))
    }
}

public struct RenderOptions: Sendable, Equatable {
    public var resolution: VerticalResolution
    public var paper: Paper
    /// Wall-clock limit for each subprocess (Ghostscript, image decoders); the process group is killed after it.
    public var timeoutSeconds: Int
    /// Address-space limit for each subprocess.
    public var memoryLimitMB: Int
    public var maxPages: Int
    /// Largest image (width × height) decoded at all: stops decompression bombs before any decoding.
    public var maxPixels: Int
    /// Whether converters may run without their sandbox (limits + no network); `.required` refuses instead.
    public var sandbox: SandboxPolicy = .required

    public init(
        resolution: VerticalResolution = .fine, paper: Paper = .a4, timeoutSeconds: Int = 60,
        memoryLimitMB: Int = 512, maxPages: Int = 200, maxPixels: Int = 100_000_000
    ) {
        self.resolution = resolution
        self.paper = paper
        self.timeoutSeconds = timeoutSeconds
        self.memoryLimitMB = memoryLimitMB
        self.maxPages = maxPages
        self.maxPixels = maxPixels
    }

    /// Fax rows of one page with these options.
    public var pageRows: Int { paper.rows(resolution) }
}

public enum RenderInput: Sendable, Equatable {
    case pdf([UInt8])
    case postScript([UInt8])
    case tiff([UInt8])
    /// JPEG, PNG or GIF; the bytes decide the format, the MIME type is kept for messages.
    case image([UInt8], mimeType: String)
    case text(String)
    case html(String)
}

public struct RenderError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case unsupported
        case encrypted
        case broken
        case timeout
        case tooLarge
        case tooManyPages
        /// The converter sandbox (limits, no network) cannot be made here and the policy requires it:
        /// nothing was rendered. Not the sender's fault; the admin must fix the host or the unit.
        case sandboxUnavailable
    }

    public var kind: Kind
    /// Human-readable English, fit for a non-delivery report to the sender.
    public var description: String
    /// The same in German where the throwing site wrote one; otherwise German replies say what `kind` means.
    public var german: String?

    public init(_ kind: Kind, _ description: String, german: String? = nil) {
        self.kind = kind
        self.description = description
        self.german = german
    }

    /// The reason in the reader's language ("de" or "en"), so a German reply never quotes the English sentence.
    public func text(_ language: String) -> String {
        guard language != "en" else { return description }
        if let german { return german }
        switch kind {
        case .unsupported: return "dieses Format kann das Faxgate nicht umwandeln"
        case .encrypted: return "das Dokument ist mit einem Passwort geschützt"
        case .broken: return "die Datei ist beschädigt oder nicht lesbar"
        case .timeout: return "die Umwandlung hat zu lange gedauert und wurde abgebrochen"
        case .tooLarge: return "die Datei ist zu groß, um sie umzuwandeln"
        case .tooManyPages: return "das Dokument hat mehr Seiten, als ein Fax haben darf"
        case .sandboxUnavailable: return "das Gateway kann Dokumente gerade nicht sicher umwandeln"
        }
    }
}
