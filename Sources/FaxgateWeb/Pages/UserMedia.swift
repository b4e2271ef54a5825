import FaxDocument
import FaxgateCore
import Foundation
import HTTPTypes
import Hummingbird
import VoiceAudio

/// Page thumbnails, made on demand from the received SFF in the spool with our own reader (the one the pipeline
/// uses): no converter process, nothing cached, so retention has no extra file to know.
public enum FaxThumbnail {
    /// The pages of a call's spool document (nil when it is gone or unreadable).
    public static func pages(spoolPath: String?) -> [FaxPage]? {
        guard let path = spoolPath, path.hasSuffix(".sff"), let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? SFFReader.read([UInt8](data)).pages
    }

    /// A grey PNG `width` pixels wide with the page's physical aspect ratio (normal resolution rows are twice as tall).
    public static func png(_ page: FaxPage, width outW: Int) -> [UInt8] {
        let srcW = max(1, page.width), srcH = max(1, page.height)
        let aspect = (Double(srcH) / page.resolution.linesPerInch) / (Double(srcW) / FaxPage.horizontalDPI)
        let outH = max(1, min(4 * outW, Int((Double(outW) * aspect).rounded())))
        // Box filter: black pixels per output cell over the source pixels the cell covers.
        var cellOfColumn = [Int](repeating: 0, count: srcW)
        var columnsPerCell = [Int](repeating: 0, count: outW)
        for x in 0..<srcW { let c = x * outW / srcW; cellOfColumn[x] = c; columnsPerCell[c] += 1 }
        var rowsPerCell = [Int](repeating: 0, count: outH)
        for y in 0..<srcH { rowsPerCell[y * outH / srcH] += 1 }
        var black = [Int](repeating: 0, count: outW * outH)
        let rowBytes = page.rowBytes
        page.bitmap.withUnsafeBufferPointer { bits in
            for y in 0..<page.height {
                let base = (y * outH / srcH) * outW
                let row = y * rowBytes
                for byteIndex in 0..<rowBytes {
                    let byte = bits[row + byteIndex]
                    if byte == 0 { continue }
                    for bit in 0..<8 where byte & (0x80 >> UInt8(bit)) != 0 {
                        let x = byteIndex * 8 + bit
                        if x < srcW { black[base + cellOfColumn[x]] += 1 }
                    }
                }
            }
        }
        var pixels = [UInt8](repeating: 255, count: outW * outH)
        for oy in 0..<outH {
            for ox in 0..<outW {
                let area = rowsPerCell[oy] * columnsPerCell[ox]
                guard area > 0 else { continue }
                let dark = black[oy * outW + ox]
                // A little darker than the plain average, so thin strokes stay legible when scaled down.
                pixels[oy * outW + ox] = UInt8(255 - min(255, dark * 255 * 2 / area))
            }
        }
        return PNG.grey(width: outW, height: outH, pixels: pixels)
    }
}

/// A minimal PNG writer: 8-bit greyscale, zlib with stored (uncompressed) blocks. Thumbnails are small, so
/// compression is not worth a dependency.
public enum PNG {
    public static func grey(width: Int, height: Int, pixels: [UInt8]) -> [UInt8] {
        var raw: [UInt8] = []
        raw.reserveCapacity((width + 1) * height)
        for y in 0..<height {
            raw.append(0)  // filter type none
            raw += pixels[(y * width)..<((y + 1) * width)]
        }
        var zlib: [UInt8] = [0x78, 0x01]
        var offset = 0
        repeat {
            let n = min(65535, raw.count - offset)
            let last: UInt8 = offset + n >= raw.count ? 1 : 0
            zlib += [last, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            zlib += raw[offset..<(offset + n)]
            offset += n
        } while offset < raw.count
        zlib += bigEndian(adler32(raw))
        var out: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        out += chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 0, 0, 0, 0])
        out += chunk("IDAT", zlib)
        out += chunk("IEND", [])
        return out
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let typed = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + typed + bigEndian(crc32(typed))
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }

    static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for chunk in stride(from: 0, to: bytes.count, by: 5552) {
            for byte in bytes[chunk..<min(bytes.count, chunk + 5552)] { a += UInt32(byte); b += a }
            a %= 65521; b %= 65521
        }
        return b << 16 | a
    }
}

/// Voicemail audio for the browser's `<audio>` element: the recorded line audio from the spool as WAV, made on
/// demand (the same conversion as the mail's attachment).
public enum VoicemailAudio {
    public static func wav(spoolPath: String?) -> [UInt8]? {
        guard let path = spoolPath, path.hasSuffix(".alaw"), let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return nil }
        return WAV.encode(G711.pcm(fromLine: [UInt8](data)))
    }
}

/// Answers a GET for a whole document, or one byte range of it (RFC 9110 §14: Chromium's media element asks for
/// `bytes=0-` and then for pieces). One range only; several ranges or an unsatisfiable one answer 416.
public enum RangedBody {
    public static func response(_ bytes: [UInt8], contentType: String, request: Request, disposition: String? = nil) -> Response {
        var headers: HTTPFields = [.contentType: contentType, .acceptRanges: "bytes", .cacheControl: "private, no-store"]
        if let disposition { headers[.contentDisposition] = disposition }
        guard let header = request.headers[.range] else {
            headers[.contentLength] = "\(bytes.count)"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        guard let range = parse(header, size: bytes.count) else {
            headers[.contentRange] = "bytes */\(bytes.count)"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound - 1)/\(bytes.count)"
        headers[.contentLength] = "\(range.count)"
        return Response(status: .partialContent, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes[range])))
    }

    /// `bytes=a-b`, `bytes=a-`, `bytes=-n` → a half-open range within `size`; nil when not satisfiable or not one range.
    public static func parse(_ header: String, size: Int) -> Range<Int>? {
        let value = header.trimmingCharacters(in: .whitespaces)
        guard value.lowercased().hasPrefix("bytes="), size > 0 else { return nil }
        let spec = value.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard !spec.contains(","), let dash = spec.firstIndex(of: "-") else { return nil }
        let first = spec[..<dash].trimmingCharacters(in: .whitespaces), last = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        let isDigits: (String) -> Bool = { $0.unicodeScalars.allSatisfy { ("0"..."9").contains($0) } }
        guard isDigits(first), isDigits(last), first.count <= 18, last.count <= 18 else { return nil }
        if first.isEmpty {
            guard let n = Int(last), n > 0 else { return nil }
            return max(0, size - n)..<size
        }
        guard let start = Int(first), start < size else { return nil }
        let end = last.isEmpty ? size - 1 : min(size - 1, Int(last)!)
        guard end >= start else { return nil }
        return start..<(end + 1)
    }
}

/// A file name for Content-Disposition: ASCII letters, digits, `-`, `_`, `.` only (no quotes, no path, no header
/// injection), never empty.
public func safeFilename(_ name: String, fallback: String) -> String {
    let cleaned = String(name.unicodeScalars.map { s -> Character in
        (s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "-" || s == "_" || s == ".")) ? Character(s) : "_"
    }.prefix(100))
    let trimmed = cleaned.trimmingCharacters(in: CharacterSet(charactersIn: "._"))
    return trimmed.isEmpty ? fallback : trimmed
}
