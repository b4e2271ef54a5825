import CQREncode
import Foundation

/// QR codes rendered on the server (libqrencode) as SVG, so enrolment needs no script and no external service.
public enum QRCodeSVG {
    /// The modules of `text` (row-major, true = dark) and the width, or nil when libqrencode refuses it.
    public static func modules(_ text: String) -> (width: Int, dark: [Bool])? {
        guard let code = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1) else { return nil }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        // Bit 0 of each byte is the module's colour; the other bits describe its role.
        let dark = (0..<(width * width)).map { code.pointee.data[$0] & 1 == 1 }
        return (width, dark)
    }

    /// An SVG image of `text` with a four-module quiet zone, one path of unit squares.
    public static func svg(_ text: String) -> String? {
        guard let (width, dark) = modules(text) else { return nil }
        let size = width + 8
        var path = ""
        for y in 0..<width {
            for x in 0..<width where dark[y * width + x] { path += "M\(x + 4) \(y + 4)h1v1h-1z" }
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(size) \(size)\" shape-rendering=\"crispEdges\">"
            + "<rect width=\"\(size)\" height=\"\(size)\" fill=\"#fff\"/><path fill=\"#000\" d=\"\(path)\"/></svg>"
    }

    /// The SVG as a `data:` URI for an `<img src>` (CSP allows `img-src data:`; no unescaped HTML in templates).
    public static func dataURI(_ text: String) -> String? {
        svg(text).map { "data:image/svg+xml;base64," + Data($0.utf8).base64EncodedString() }
    }
}
