// Tolerant reader for the Structured Fax File format (CAPI 2.0 annex B) that CAPI controllers write.
// Received faxes are often damaged; the reader keeps everything it can decode and reports what it had to repair.

/// The file cannot be read as SFF at all.
public enum SFFError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Shorter than the 20-byte document header or without the "Sfff" magic.
    case notSFF
    /// The header is valid, but no page header is found at its first-page offset (or at 0x14).
    case noPageHeader(offset: Int)

    public var description: String {
        switch self {
        case .notSFF: "not an SFF file (missing \"Sfff\" header)"
        case .noPageHeader(let offset): "SFF file has no page header at offset \(offset)"
        }
    }
}

/// Something the reader tolerated, phrased for the person who receives the fax.
public enum SFFProblem: Sendable, Equatable, CustomStringConvertible {
    /// `count` lines of page `page` (1-based) were damaged and replaced by the line above.
    case badLines(page: Int, count: Int)
    /// `count` lines of page `page` had a different width than the page and were padded or cut.
    case wrongLineWidth(page: Int, count: Int)
    /// The data ends in the middle of page `page`.
    case truncated(page: Int)
    /// The file ends without the end-of-document marker (common with lazy writers; the pages are complete).
    case missingEndMarker
    /// Page `page` has a coding other than MH (`coding`); it was decoded as MH anyway.
    case unsupportedCoding(page: Int, coding: Int)
    /// A page header without any lines was dropped.
    case emptyPage(page: Int)
    /// The document contains no pages at all.
    case noPages

    public var description: String {
        switch self {
        case .badLines(let page, let count): "page \(page): \(count) damaged line\(count == 1 ? "" : "s") replaced by the line above"
        case .wrongLineWidth(let page, let count): "page \(page): \(count) line\(count == 1 ? "" : "s") with wrong width adjusted"
        case .truncated(let page): "page \(page) is incomplete (transmission ended early)"
        case .missingEndMarker: "fax file has no end marker"
        case .unsupportedCoding(let page, let coding): "page \(page): unknown coding \(coding), decoded as MH"
        case .emptyPage(let page): "page \(page) contained no lines and was dropped"
        case .noPages: "the fax contains no pages"
        }
    }
}

public struct SFFDocument: Sendable {
    public var pages: [FaxPage]
    public var problems: [SFFProblem]

    public init(pages: [FaxPage], problems: [SFFProblem] = []) {
        self.pages = pages
        self.problems = problems
    }

    /// Total number of damaged lines over all pages.
    public var badLines: Int { pages.reduce(0) { $0 + $1.badLines } }
}

public enum SFFReader {
    static let headerLength = 20
    static let magic: [UInt8] = [0x53, 0x66, 0x66, 0x66]

    public static func read(_ bytes: [UInt8]) throws(SFFError) -> SFFDocument {
        guard bytes.count >= headerLength, Array(bytes[0..<4]) == magic else { throw .notSFF }
        // Some writers (AVM) put padding between the document header and the first page: always seek.
        var offset = Int(bytes[10]) | Int(bytes[11]) << 8
        if offset < headerLength || offset >= bytes.count || bytes[offset] != 0xFE {
            guard bytes.count > headerLength, bytes[headerLength] == 0xFE else { throw .noPageHeader(offset: offset) }
            offset = headerLength
        }
        var parser = Parser(bytes: bytes, position: offset)
        parser.run()
        return SFFDocument(pages: parser.pages, problems: parser.problems)
    }

    /// State of one pass over the records.
    private struct Parser {
        let bytes: [UInt8]
        var position: Int
        var pages: [FaxPage] = []
        var problems: [SFFProblem] = []
        private var pageNumber = 0

        // Current page
        private var width = FaxPage.standardWidth
        private var resolution = VerticalResolution.fine
        private var bitmap: [UInt8] = []
        private var lines: [[UInt8]] = []
        private var badLines = 0
        private var wrongWidth = 0
        private var inPage = false
        private var scratch: [UInt8] = []

        init(bytes: [UInt8], position: Int) {
            self.bytes = bytes
            self.position = position
        }

        mutating func run() {
            // `position` is at a page header (0xFE).
            while true {
                guard position < bytes.count else {
                    finishPage()
                    problems.append(.missingEndMarker)
                    break
                }
                let record = bytes[position]
                switch record {
                case 254:
                    finishPage()
                    guard position + 1 < bytes.count else {
                        problems.append(.missingEndMarker)
                        return finish()
                    }
                    let length = Int(bytes[position + 1])
                    if length == 0 { return finish() }  // end of document
                    guard position + 2 + length <= bytes.count else {
                        problems.append(.truncated(page: pageNumber + 1))
                        return finish()
                    }
                    startPage(header: bytes[(position + 2)..<(position + 2 + length)])
                    position += 2 + length
                case 255:
                    guard position + 1 < bytes.count else { return truncated() }
                    let skip = Int(bytes[position + 1])
                    position += 2
                    if skip == 0 {
                        // The modem flagged a line it could not receive: fax practice repeats the line above.
                        badLines += 1
                        repeatLastLine()
                    } else {
                        position += skip  // user information or reserved data, not a line
                    }
                case 217...253:
                    appendWhite(Int(record) - 216)
                    position += 1
                case 0:
                    guard position + 3 <= bytes.count else { return truncated() }
                    let length = Int(bytes[position + 1]) | Int(bytes[position + 2]) << 8
                    guard position + 3 + length <= bytes.count else { return truncated() }
                    decodeLine(start: position + 3, count: length)
                    position += 3 + length
                default:  // 1...216 bytes of MH code
                    let length = Int(record)
                    guard position + 1 + length <= bytes.count else { return truncated() }
                    decodeLine(start: position + 1, count: length)
                    position += 1 + length
                }
            }
            finish()
        }

        private mutating func truncated() {
            if inPage { problems.append(.truncated(page: pageNumber)) }
            finishPage()
            finish()
        }

        private mutating func finish() {
            if pages.isEmpty && !problems.contains(.noPages) { problems.append(.noPages) }
        }

        private mutating func startPage(header: ArraySlice<UInt8>) {
            pageNumber += 1
            inPage = true
            let h = Array(header)
            resolution = (h.count > 0 && h[0] == 0) ? .normal : .fine
            if h.count > 2 && h[2] != 0 { problems.append(.unsupportedCoding(page: pageNumber, coding: Int(h[2]))) }
            var lineLength = h.count > 5 ? Int(h[4]) | Int(h[5]) << 8 : 0
            if lineLength == 0 { lineLength = FaxPage.standardWidth }
            width = lineLength
            let pageLength = h.count > 7 ? Int(h[6]) | Int(h[7]) << 8 : 0
            let expected = pageLength > 0 ? min(pageLength, 20_000) : 2_400
            bitmap = []
            bitmap.reserveCapacity(expected * ((width + 7) / 8))
            lines = []
            lines.reserveCapacity(expected)
            badLines = 0
            wrongWidth = 0
            scratch = [UInt8](repeating: 0, count: (width + 7) / 8)
        }

        private mutating func finishPage() {
            guard inPage else { return }
            inPage = false
            if lines.isEmpty {
                problems.append(.emptyPage(page: pageNumber))
                return
            }
            if badLines > 0 { problems.append(.badLines(page: pageNumber, count: badLines)) }
            if wrongWidth > 0 { problems.append(.wrongLineWidth(page: pageNumber, count: wrongWidth)) }
            pages.append(FaxPage(validatedBitmap: bitmap, mhLines: lines, width: width, resolution: resolution, badLines: badLines))
            bitmap = []
            lines = []
        }

        private mutating func ensurePage() {
            // Records before any page header cannot happen here (we start at one), but a page is needed after
            // an end-of-page without a new header only in broken files; treat it as a continuation.
            if !inPage { startPage(header: [0x01, 0, 0, 0, 0xC0, 0x06]) }
        }

        private mutating func appendWhite(_ count: Int) {
            ensurePage()
            let rowBytes = (width + 7) / 8
            let code = FaxPage.whiteLine(width: width)
            bitmap.append(contentsOf: repeatElement(0, count: rowBytes * count))
            for _ in 0..<count { lines.append(code) }
        }

        private mutating func repeatLastLine() {
            ensurePage()
            let rowBytes = (width + 7) / 8
            guard let last = lines.last else { return appendWhite(1) }
            let start = bitmap.count - rowBytes
            bitmap.append(contentsOf: bitmap[start..<(start + rowBytes)])
            lines.append(last)
        }

        private mutating func decodeLine(start: Int, count: Int) {
            ensurePage()
            let width = self.width
            for i in scratch.indices { scratch[i] = 0 }
            let result: Result<Int, MHError> = scratch.withUnsafeMutableBufferPointer { out in
                bytes.withUnsafeBufferPointer { all in
                    let code = UnsafeBufferPointer(rebasing: all[start..<(start + count)])
                    do throws(MHError) {
                        return .success(try MHCodec.decodeRuns(code, into: out, width: width))
                    } catch {
                        return .failure(error)
                    }
                }
            }
            switch result {
            case .success(let pixels) where pixels == width:
                bitmap.append(contentsOf: scratch)
                lines.append(Array(bytes[start..<(start + count)]))
            case .success(let pixels) where pixels > 0:
                // Padded with white or cut to the page width; re-encode so the stored code matches the row.
                wrongWidth += 1
                bitmap.append(contentsOf: scratch)
                lines.append(MHCodec.encodeLine(scratch, width: width))
            default:
                badLines += 1
                repeatLastLine()
            }
        }
    }
}

extension FaxPage {
    /// MH code of an all-white line (`B2 59 01` for 1728 pixels).
    static func whiteLine(width: Int) -> [UInt8] {
        if width == standardWidth { return [0xB2, 0x59, 0x01] }
        return MHCodec.encodeLine([UInt8](repeating: 0, count: (width + 7) / 8), width: width)
    }
}
