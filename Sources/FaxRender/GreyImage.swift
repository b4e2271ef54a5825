// Grey raster images (0 = black, 255 = white) and their way onto a fax page: turn landscape to portrait,
// fit into the paper's area, area-average or interpolate to fax pixels, then threshold or dither.
import FaxDocument

struct GreyImage: Sendable {
    var width: Int
    var height: Int
    var pixels: [UInt8]
    /// Dots per inch along x and y; nil when the file does not say (most photos).
    var dpi: (x: Double, y: Double)?
    /// A source with only black and white (fax TIFFs, bilevel PNGs): thresholded, never dithered.
    var bilevel: Bool = false

    init(width: Int, height: Int, pixels: [UInt8], dpi: (x: Double, y: Double)? = nil, bilevel: Bool = false) {
        self.width = width
        self.height = height
        self.pixels = pixels
        self.dpi = dpi
        self.bilevel = bilevel
    }

    /// Physical aspect (height / width) taking unequal resolutions into account.
    var aspect: Double {
        let ratio = dpi.map { $0.x / $0.y } ?? 1
        return Double(height) / Double(width) * ratio
    }

    /// Quarter turn counterclockwise: the old top edge becomes the left edge, as Ghostscript turns landscape pages.
    func rotatedCounterclockwise() -> GreyImage {
        var out = [UInt8](repeating: 255, count: pixels.count)
        let newWidth = height, newHeight = width
        pixels.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for ny in 0..<newHeight {
                    let ox = width - 1 - ny
                    for nx in 0..<newWidth { dst[ny * newWidth + nx] = src[nx * width + ox] }
                }
            }
        }
        return GreyImage(width: newWidth, height: newHeight, pixels: out, dpi: dpi.map { ($0.y, $0.x) }, bilevel: bilevel)
    }

    /// Resamples to `newWidth` × `newHeight`: box (area-average) filter when shrinking, linear when enlarging.
    func scaled(toWidth newWidth: Int, height newHeight: Int) -> GreyImage {
        if newWidth == width && newHeight == height { return self }
        let xWeights = Self.weights(from: width, to: newWidth)
        let yWeights = Self.weights(from: height, to: newHeight)
        // Horizontal pass first (rows shrink), then vertical; Float keeps the averages exact enough.
        var temp = [Float](repeating: 0, count: newWidth * height)
        pixels.withUnsafeBufferPointer { src in
            temp.withUnsafeMutableBufferPointer { dst in
                for y in 0..<height {
                    let row = y * width, outRow = y * newWidth
                    for x in 0..<newWidth {
                        var sum: Float = 0
                        for (index, weight) in xWeights[x] { sum += Float(src[row + index]) * weight }
                        dst[outRow + x] = sum
                    }
                }
            }
        }
        var out = [UInt8](repeating: 255, count: newWidth * newHeight)
        temp.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for y in 0..<newHeight {
                    let contributions = yWeights[y]
                    for x in 0..<newWidth {
                        var sum: Float = 0
                        for (index, weight) in contributions { sum += src[index * newWidth + x] * weight }
                        dst[y * newWidth + x] = UInt8(max(0, min(255, sum.rounded())))
                    }
                }
            }
        }
        return GreyImage(width: newWidth, height: newHeight, pixels: out, dpi: nil, bilevel: bilevel)
    }

    /// Source indices and weights (summing to 1) for every destination index along one axis.
    static func weights(from source: Int, to destination: Int) -> [[(Int, Float)]] {
        let scale = Double(source) / Double(destination)
        var table: [[(Int, Float)]] = []
        table.reserveCapacity(destination)
        for d in 0..<destination {
            if scale >= 1 {
                // Each destination pixel covers [d*scale, (d+1)*scale) of the source: average what it covers.
                let start = Double(d) * scale, end = min(Double(source), Double(d + 1) * scale)
                var entries: [(Int, Float)] = []
                var s = Int(start)
                while Double(s) < end && s < source {
                    let overlap = min(end, Double(s + 1)) - max(start, Double(s))
                    if overlap > 0 { entries.append((s, Float(overlap / (end - start)))) }
                    s += 1
                }
                table.append(entries)
            } else {
                let center = (Double(d) + 0.5) * scale - 0.5
                let left = max(0, min(source - 1, Int(center.rounded(.down))))
                let right = min(source - 1, left + 1)
                let t = Float(max(0, min(1, center - Double(left))))
                table.append(left == right ? [(left, Float(1))] : [(left, 1 - t), (right, t)])
            }
        }
        return table
    }

    /// Whether the picture is text or line art (nearly all pixels near black or white): such images are
    /// thresholded, because dithering turns crisp letters into speckles.
    var looksLikeDocument: Bool {
        if bilevel { return true }
        var histogram = [Int](repeating: 0, count: 256)
        for value in pixels { histogram[Int(value)] += 1 }
        let extremes = histogram[0..<64].reduce(0, +) + histogram[192..<256].reduce(0, +)
        return Double(extremes) >= 0.9 * Double(max(1, pixels.count))
    }

    /// Packs into fax rows: threshold at mid-grey, or Floyd–Steinberg error diffusion for photos.
    func bilevelRows(dither: Bool) -> [UInt8] {
        let rowBytes = (width + 7) / 8
        var bits = [UInt8](repeating: 0, count: rowBytes * height)
        if !dither {
            for y in 0..<height {
                for x in 0..<width where pixels[y * width + x] < 128 {
                    bits[y * rowBytes + (x >> 3)] |= 0x80 >> UInt8(x & 7)
                }
            }
            return bits
        }
        // Two rows of error, serpentine scan so the diffusion does not drift in one direction.
        var current = [Float](repeating: 0, count: width + 2), next = [Float](repeating: 0, count: width + 2)
        for y in 0..<height {
            let leftToRight = y % 2 == 0
            for step in 0..<width {
                let x = leftToRight ? step : width - 1 - step
                let value = Float(pixels[y * width + x]) + current[x + 1]
                let black = value < 128
                if black { bits[y * rowBytes + (x >> 3)] |= 0x80 >> UInt8(x & 7) }
                let error: Float = value - (black ? 0 : 255)
                let ahead = leftToRight ? x + 2 : x, behind = leftToRight ? x : x + 2
                current[ahead] += error * 7 / 16
                next[behind] += error * 3 / 16
                next[x + 1] += error * 5 / 16
                next[ahead] += error * 1 / 16
            }
            swap(&current, &next)
            for i in next.indices { next[i] = 0 }
        }
        return bits
    }
}

enum PagePlacement {
    /// Puts an image on one fax page: portrait, fitted into the paper's area (never wider than the paper,
    /// at most 1728 pixels), centred horizontally, at the top, then made bilevel.
    static func page(from source: GreyImage, options: RenderOptions) -> FaxPage {
        var image = source
        if image.aspect < 1 { image = image.rotatedCounterclockwise() }
        let pageWidth = FaxPage.standardWidth, pageRows = options.pageRows
        let areaWidth = Double(options.paper.contentWidth)
        // Fax pixels are not square: rows per inch differ from dots per inch.
        let rowsPerDot = options.resolution.linesPerInch / FaxPage.horizontalDPI
        var targetWidth = areaWidth
        var targetRows = targetWidth * image.aspect * rowsPerDot
        if targetRows > Double(pageRows) {
            targetRows = Double(pageRows)
            targetWidth = targetRows / rowsPerDot / image.aspect
        }
        let w = max(1, min(pageWidth, Int(targetWidth.rounded())))
        let h = max(1, min(pageRows, Int(targetRows.rounded())))
        let scaled = image.scaled(toWidth: w, height: h)
        let rows = scaled.bilevelRows(dither: !scaled.looksLikeDocument)

        let rowBytes = (pageWidth + 7) / 8, scaledRowBytes = (w + 7) / 8
        var bitmap = [UInt8](repeating: 0, count: rowBytes * pageRows)
        let left = (pageWidth - w) / 2
        for y in 0..<h {
            for x in 0..<w where rows[y * scaledRowBytes + (x >> 3)] & (0x80 >> UInt8(x & 7)) != 0 {
                let px = left + x
                bitmap[y * rowBytes + (px >> 3)] |= 0x80 >> UInt8(px & 7)
            }
        }
        return FaxPage(bitmap: bitmap, width: pageWidth, height: pageRows, resolution: options.resolution)
    }
}
