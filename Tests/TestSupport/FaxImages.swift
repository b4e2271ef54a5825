import FaxDocument
import Foundation

/// Absolute path of a tool, resolved before `runTool` so a missing tool fails with its name.
public func faxTool(_ name: String) throws -> String {
    try resolveExecutable(name)
}

/// A decoded bilevel image from an external tool (sfftobmp, pdftoppm, Ghostscript).
public struct BilevelImage: Sendable {
    public var width: Int
    public var height: Int
    public var bitmap: [UInt8]
    public var rowBytes: Int { (width + 7) / 8 }

    public init(width: Int, height: Int, bitmap: [UInt8]) {
        self.width = width
        self.height = height
        self.bitmap = bitmap
    }

    public init(_ page: FaxPage) { self.init(width: page.width, height: page.height, bitmap: page.bitmap) }

    public init(pbmFile path: String) throws {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let (w, h, bits) = try PBM.read(data)
        self.init(width: w, height: h, bitmap: bits)
    }

    public func isBlack(_ x: Int, _ y: Int) -> Bool {
        bitmap[y * rowBytes + (x >> 3)] & (0x80 >> UInt8(x & 7)) != 0
    }

    public var blackPixels: Int { bitmap.reduce(0) { $0 + $1.nonzeroBitCount } }
}

/// Pixel comparison of two images placed at the same top-left corner. Pixels outside the overlap
/// count as different when black (a white margin is not a difference).
public struct ImageDifference: CustomStringConvertible, Sendable {
    public var differing: Int
    public var total: Int
    public var fraction: Double { total == 0 ? 0 : Double(differing) / Double(total) }
    public var description: String {
        "\(differing) of \(total) pixels differ (\(String(format: "%.4f", fraction * 100)) %)"
    }
}

public func compareImages(_ a: BilevelImage, _ b: BilevelImage) -> ImageDifference {
    let width = max(a.width, b.width), height = max(a.height, b.height)
    var differing = 0
    for y in 0..<height {
        for x in 0..<width {
            let pa = x < a.width && y < a.height && a.isBlack(x, y)
            let pb = x < b.width && y < b.height && b.isBlack(x, y)
            if pa != pb { differing += 1 }
        }
    }
    return ImageDifference(differing: differing, total: width * height)
}

/// Three different A4 pages: text, lines, boxes and filled areas, so a decoder or writer bug shows.
public let faxTestPostScript = """
    %!PS-Adobe-3.0
    %%BoundingBox: 0 0 595 842
    << /PageSize [595 842] >> setpagedevice
    /Helvetica findfont 28 scalefont setfont
    72 760 moveto (Faxgate test page one) show
    /Times-Roman findfont 14 scalefont setfont
    72 730 moveto (The quick brown fox jumps over the lazy dog 0123456789) show
    newpath 72 700 moveto 520 520 lineto 3 setlinewidth stroke
    newpath 72 520 moveto 520 700 lineto 0.5 setlinewidth stroke
    100 200 200 150 rectfill
    350 200 150 150 rectstroke
    0 1 40 { dup 10 mul 60 add 100 moveto 0 60 rlineto stroke } for
    showpage
    /Helvetica-Bold findfont 40 scalefont setfont
    72 700 moveto (Page two) show
    4 setlinewidth 50 50 495 300 rectstroke
    newpath 297 500 120 0 360 arc fill
    1 setgray newpath 297 500 60 0 360 arc fill 0 setgray
    /Courier findfont 10 scalefont setfont
    0 1 20 { dup 14 mul 380 exch sub 60 exch moveto (Courier line of fixed width text, ABC xyz) show } for
    showpage
    /Helvetica findfont 20 scalefont setfont
    300 400 moveto (Third page) show
    0 0 40 842 rectfill
    555 0 40 842 rectfill
    0 0.5 1 { setgray 100 300 moveto } for
    0 10 400 { 100 add 600 moveto 50 -50 rlineto stroke } for
    showpage
    """

/// Runs Ghostscript's cfax device on `postScript` and returns the SFF bytes.
public func ghostscriptSFF(_ postScript: String, fine: Bool, in dir: TemporaryDirectory) throws -> [UInt8] {
    let ps = dir.url.appendingPathComponent("in.ps"), sff = dir.url.appendingPathComponent(fine ? "gs-fine.sff" : "gs-normal.sff")
    try postScript.write(to: ps, atomically: true, encoding: .utf8)
    try runTool(faxTool("gs"), ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=cfax", fine ? "-r204x196" : "-r204x98",
                       "-sOutputFile=\(sff.path)", ps.path])
    return try [UInt8](Data(contentsOf: sff))
}

/// Ghostscript's own rendering of `postScript` as PBM pages.
public func ghostscriptPBM(_ postScript: String, resolution: String, in dir: TemporaryDirectory) throws -> [BilevelImage] {
    let ps = dir.url.appendingPathComponent("render.ps")
    try postScript.write(to: ps, atomically: true, encoding: .utf8)
    let out = dir.url.appendingPathComponent("gs-render")
    try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
    try runTool(faxTool("gs"), ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pbmraw", "-r\(resolution)",
                       "-sOutputFile=\(out.path)/p-%03d.pbm", ps.path])
    return try pbmFiles(in: out)
}

/// All .pbm files of a directory in name order.
public func pbmFiles(in dir: URL) throws -> [BilevelImage] {
    let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".pbm") }.sorted()
    return try names.map { try BilevelImage(pbmFile: dir.appendingPathComponent($0).path) }
}

/// sfftobmp's decode of an SFF file, one PBM per page. `keepResolution: false` lets it double normal-resolution rows.
public func sfftobmpPages(_ sff: [UInt8], keepResolution: Bool, in dir: TemporaryDirectory, label: String) throws -> [BilevelImage] {
    let input = dir.url.appendingPathComponent("\(label).sff")
    try Data(sff).write(to: input)
    let out = dir.url.appendingPathComponent("sfftobmp-\(label)")
    try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
    try runTool(faxTool("sfftobmp"), ["-q", "-p"] + (keepResolution ? ["-r"] : []) + [input.path, "-o", out.appendingPathComponent("page.pbm").path])
    return try pbmFiles(in: out)
}
