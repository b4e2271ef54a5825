// TIFF of any compression and colour model. No TIFF decoder runs in the gateway: the directory structure is
// walked here in bounds-checked Swift (page count, sizes, resolution; every page checked against maxPixels
// before anything is decoded), then libtiff's own tools decode in the sandbox — tiffsplit cuts the pages
// apart, tifftopnm turns each into PNM, whose output size is capped to what the header promised.
// Bilevel pages already at fax width are taken over bit for bit (no resampling).
import FaxDocument
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One image file directory (page) as its tags describe it.
struct TIFFDirectory: Sendable, Equatable {
    var width: Int
    var height: Int
    var bitsPerSample: Int = 1
    var samplesPerPixel: Int = 1
    var tiled = false
    var orientation = 1
    /// Dots per inch along x and y; nil when absent or unitless.
    var dpi: (x: Double, y: Double)?

    static func == (a: TIFFDirectory, b: TIFFDirectory) -> Bool {
        a.width == b.width && a.height == b.height && a.bitsPerSample == b.bitsPerSample && a.samplesPerPixel == b.samplesPerPixel
            && a.tiled == b.tiled && a.orientation == b.orientation && a.dpi?.x == b.dpi?.x && a.dpi?.y == b.dpi?.y
    }
}

enum TIFFStructure {
    /// The directories of a classic or Big TIFF, at most `maxPages` (one more is `tooManyPages`).
    static func directories(_ b: [UInt8], maxPages: Int) throws(RenderError) -> [TIFFDirectory] {
        guard b.count >= 8 else { throw broken("the TIFF file is too short") }
        let little: Bool
        switch (b[0], b[1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: throw broken("the file is not a TIFF")
        }
        func u(_ at: Int, _ size: Int) -> Int? {
            guard at >= 0, size <= 8, at <= b.count - size else { return nil }
            var v: UInt64 = 0
            for i in 0..<size { v |= UInt64(b[at + (little ? i : size - 1 - i)]) << (8 * UInt64(i)) }
            return v > UInt64(Int.max) ? nil : Int(v)
        }
        let version = u(2, 2)
        let big = version == 43
        guard version == 42 || (big && u(4, 2) == 8) else { throw broken("the TIFF header is damaged") }
        let offsetSize = big ? 8 : 4, countSize = big ? 8 : 2, entrySize = big ? 20 : 12
        guard var next = u(big ? 8 : 4, offsetSize) else { throw broken("the TIFF header is damaged") }

        var seen = Set<Int>()
        var pages: [TIFFDirectory] = []
        while next != 0 {
            guard seen.insert(next).inserted else { throw broken("the TIFF's pages form a loop") }
            guard pages.count < maxPages else {
                throw RenderError(.tooManyPages, "the TIFF has more than \(maxPages) pages", german: "das TIFF hat mehr als \(maxPages) Seiten")
            }
            guard let count = u(next, countSize), count <= 4096, next + countSize + count * entrySize + offsetSize <= b.count else {
                throw broken("page \(pages.count + 1) of the TIFF is damaged")
            }
            var width: Int?, height: Int?
            var page = TIFFDirectory(width: 0, height: 0)
            var xRes: Double?, yRes: Double?, unit = 2
            for index in 0..<count {
                let entry = next + countSize + index * entrySize
                guard let tag = u(entry, 2), let type = u(entry + 2, 2) else { continue }
                let field = entry + 4 + (big ? 8 : 4)
                // SHORT and LONG values sit at the start of the value field; RATIONALs are elsewhere.
                func scalar() -> Int? {
                    switch type {
                    case 3: return u(field, 2)
                    case 4: return u(field, 4)
                    case 16: return u(field, 8)
                    default: return nil
                    }
                }
                func rational() -> Double? {
                    guard type == 5, let at = u(field, offsetSize), let n = u(at, 4), let d = u(at + 4, 4), d > 0 else { return nil }
                    return Double(n) / Double(d)
                }
                switch tag {
                case 256: width = scalar()
                case 257: height = scalar()
                case 258: page.bitsPerSample = scalar() ?? 1
                case 277: page.samplesPerPixel = scalar() ?? 1
                case 274: page.orientation = scalar() ?? 1
                case 282: xRes = rational()
                case 283: yRes = rational()
                case 296: unit = scalar() ?? 2
                case 322, 323: page.tiled = true
                default: break
                }
            }
            guard let w = width, let h = height, w > 0, h > 0 else { throw broken("page \(pages.count + 1) of the TIFF has no image size") }
            page.width = w
            page.height = h
            if let x = xRes, let y = yRes, x > 0, y > 0, unit != 1 {
                let factor = unit == 3 ? 2.54 : 1
                page.dpi = (x * factor, y * factor)
            }
            pages.append(page)
            guard let following = u(next + countSize + count * entrySize, offsetSize) else { throw broken("the TIFF is truncated") }
            next = following
        }
        guard !pages.isEmpty else { throw broken("the TIFF has no pages") }
        return pages
    }

    static func broken(_ english: String) -> RenderError {
        RenderError(.broken, english, german: "die TIFF-Datei ist beschädigt oder nicht lesbar")
    }
}

enum TIFFRenderer {
    /// Blocking: every page (directory) of a TIFF as fax pages.
    static func render(_ bytes: [UInt8], options: RenderOptions) throws(RenderError) -> [FaxPage] {
        let directories = try TIFFStructure.directories(bytes, maxPages: options.maxPages)
        for page in directories { try ImageRenderer.checkPixels(width: page.width, height: page.height, options: options) }

        let work = try WorkDirectory()
        let input = try work.write("input.tif", bytes)
        var files = [input]
        if directories.count > 1 {
            // tiffsplit copies each page's data as it is (no decoding); output bounded by the input's size.
            let result = try Sandbox.run("tiffsplit", [input, work.file("page-")], options: options, workDir: work.path,
                                         outputLimitBytes: bytes.count + 1_048_576)
            if result.timedOut { throw RenderError(.timeout, "splitting the TIFF took longer than \(options.timeoutSeconds) s") }
            files = ((try? FileManager.default.contentsOfDirectory(atPath: work.path)) ?? [])
                .filter { $0.hasPrefix("page-") && $0.hasSuffix(".tif") }.sorted().map { work.file($0) }
            guard result.exitCode == 0, files.count == directories.count else {
                throw TIFFStructure.broken("the TIFF's pages cannot be separated")
            }
        }

        var pages: [FaxPage] = []
        for (index, (file, directory)) in zip(files, directories).enumerated() {
            pages.append(try decode(file, directory, page: index + 1, work: work, options: options))
            if file != input { try? FileManager.default.removeItem(atPath: file) }
        }
        return pages
    }

    /// One page through tifftopnm in the sandbox. Its output may be no larger than the page's pixels allow.
    static func decode(_ file: String, _ directory: TIFFDirectory, page: Int, work: WorkDirectory,
                       options: RenderOptions) throws(RenderError) -> FaxPage {
        let output = work.file("page.pnm")
        let pixels = directory.width * directory.height  // checked against maxPixels: cannot overflow
        let result = try Sandbox.run("tifftopnm", [file], options: options, workDir: work.path, stdoutPath: output,
                                     outputLimitBytes: pixels * 6 + 4096)
        if result.timedOut || result.signal == SIGXCPU {
            throw RenderError(.timeout, "decoding page \(page) of the TIFF took longer than \(options.timeoutSeconds) s")
        }
        let pnm = (try? work.read("page.pnm")) ?? []
        try? FileManager.default.removeItem(atPath: output)
        guard result.exitCode == 0, !pnm.isEmpty else {
            let detail = result.log.split(whereSeparator: \.isNewline).first { !$0.contains("writing P") }.map(String.init) ?? ""
            throw TIFFStructure.broken("page \(page) of the TIFF cannot be decoded" + (detail.isEmpty ? "" : ": \(detail)"))
        }
        // A page the header called fax-like, decoded to PBM at the fax line's width: taken over as it is.
        if pnm.starts(with: Array("P4".utf8)), directory.width == FaxPage.standardWidth, directory.orientation == 1,
            let dpi = directory.dpi, abs(dpi.x - FaxPage.horizontalDPI) < 8, directory.height <= options.paper.rows(.fine) + 64,
            let faxPage = try? PBM.readPage(pnm, resolution: dpi.y >= 150 ? .fine : .normal),
            faxPage.width == directory.width, faxPage.height == directory.height {
            return adapt(faxPage, to: options)
        }
        guard var image = PNM.grey(pnm, maxPixels: options.maxPixels) else {
            throw TIFFStructure.broken("page \(page) of the TIFF decoded to nothing readable")
        }
        let rotated = directory.orientation >= 5
        guard (image.width, image.height) == (rotated ? (directory.height, directory.width) : (directory.width, directory.height)) else {
            throw TIFFStructure.broken("page \(page) of the TIFF is not the size its header says")
        }
        image.dpi = directory.dpi.map { rotated ? ($0.y, $0.x) : $0 }
        image.bilevel = image.bilevel || directory.bitsPerSample == 1
        return PagePlacement.page(from: image, options: options)
    }

    /// A fax-width page at the other vertical resolution: rows doubled, or pairs of rows merged so thin
    /// horizontal lines survive.
    static func adapt(_ page: FaxPage, to options: RenderOptions) -> FaxPage {
        if page.resolution == options.resolution { return page }
        if options.resolution == .fine { return page.fineResolution() }
        let rowBytes = page.rowBytes, rows = (page.height + 1) / 2
        var bits = [UInt8](repeating: 0, count: rowBytes * rows)
        for y in 0..<page.height {
            for i in 0..<rowBytes { bits[(y / 2) * rowBytes + i] |= page.bitmap[y * rowBytes + i] }
        }
        return FaxPage(bitmap: bits, width: page.width, height: rows, resolution: .normal)
    }
}
