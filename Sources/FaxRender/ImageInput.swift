// JPEG, PNG and GIF: the header is checked against maxPixels in-process (no decoder touches a bomb),
// then netpbm's jpegtopnm/pngtopnm/giftopnm decode in the sandbox and we read their PNM output.
import FaxDocument
#if canImport(Glibc)
import Glibc
#endif

enum ImageFormat: Sendable, Equatable {
    case jpeg, png, gif

    static func sniff(_ bytes: [UInt8]) -> ImageFormat? {
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.starts(with: Array("GIF87a".utf8)) || bytes.starts(with: Array("GIF89a".utf8)) { return .gif }
        return nil
    }

    var name: String {
        switch self {
        case .jpeg: "JPEG"
        case .png: "PNG"
        case .gif: "GIF"
        }
    }
}

enum ImageHeader {
    /// Width and height as the header claims them, or nil when the header is unreadable.
    static func dimensions(_ bytes: [UInt8], format: ImageFormat) -> (width: Int, height: Int)? {
        switch format {
        case .png:
            // Signature, then the IHDR chunk: length 13, "IHDR", width and height big-endian.
            guard bytes.count >= 24, Array(bytes[12..<16]) == Array("IHDR".utf8) else { return nil }
            return (be32(bytes, 16), be32(bytes, 20))
        case .gif:
            guard bytes.count >= 10 else { return nil }
            return (Int(bytes[6]) | Int(bytes[7]) << 8, Int(bytes[8]) | Int(bytes[9]) << 8)
        case .jpeg:
            return jpegDimensions(bytes)
        }
    }

    /// Walks the JPEG markers up to the first start-of-frame (any SOFn but DHT/JPG/DAC).
    static func jpegDimensions(_ bytes: [UInt8]) -> (width: Int, height: Int)? {
        var i = 2
        while i + 3 < bytes.count {
            guard bytes[i] == 0xFF else { return nil }
            let marker = bytes[i + 1]
            if marker == 0xFF { i += 1; continue }                     // fill bytes
            if marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }  // no length
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2 else { return nil }
            if (0xC0...0xCF).contains(marker) && ![0xC4, 0xC8, 0xCC].contains(marker) {
                guard i + 8 < bytes.count else { return nil }
                let height = Int(bytes[i + 5]) << 8 | Int(bytes[i + 6])
                let width = Int(bytes[i + 7]) << 8 | Int(bytes[i + 8])
                return (width, height)
            }
            if marker == 0xDA { return nil }                          // scan before any frame header
            i += 2 + length
        }
        return nil
    }

    /// EXIF orientation (1–8) from a JPEG's APP1 segment; phones store photos sideways and set this tag.
    static func jpegOrientation(_ bytes: [UInt8]) -> Int {
        var i = 2
        while i + 3 < bytes.count, bytes[i] == 0xFF {
            let marker = bytes[i + 1]
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            if marker == 0xDA || length < 2 { break }
            if marker == 0xE1, i + 4 + length - 2 <= bytes.count, length > 16,
                Array(bytes[(i + 4)..<(i + 10)]) == [0x45, 0x78, 0x69, 0x66, 0, 0] {
                let tiff = i + 10, end = i + 2 + length
                guard tiff + 8 <= end else { break }
                let little = bytes[tiff] == 0x49
                func u16(_ at: Int) -> Int {
                    guard at + 2 <= end else { return 0 }
                    return little ? Int(bytes[at]) | Int(bytes[at + 1]) << 8 : Int(bytes[at]) << 8 | Int(bytes[at + 1])
                }
                func u32(_ at: Int) -> Int { little ? u16(at) | u16(at + 2) << 16 : u16(at) << 16 | u16(at + 2) }
                let ifd = tiff + u32(tiff + 4)
                guard ifd + 2 <= end else { break }
                let count = u16(ifd)
                for entry in 0..<min(count, 256) {
                    let at = ifd + 2 + entry * 12
                    guard at + 12 <= end else { break }
                    if u16(at) == 0x0112 { return (1...8).contains(u16(at + 8)) ? u16(at + 8) : 1 }
                }
                break
            }
            i += 2 + length
        }
        return 1
    }

    static func be32(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
    }
}

enum ImageRenderer {
    /// Blocking: one fax page from a JPEG, PNG or GIF.
    static func render(_ bytes: [UInt8], mimeType: String, options: RenderOptions) throws(RenderError) -> FaxPage {
        guard let format = ImageFormat.sniff(bytes) else {
            throw RenderError(.unsupported, "images of type \(mimeType) are not supported (JPEG, PNG and GIF are)")
        }
        guard let (width, height) = ImageHeader.dimensions(bytes, format: format), width > 0, height > 0 else {
            throw RenderError(.broken, "the \(format.name) image has no readable size")
        }
        try checkPixels(width: width, height: height, options: options)

        let work = try WorkDirectory()
        let input = try work.write("image", bytes)
        let output = work.file("image.pnm")
        let (tool, arguments): (String, [String]) = switch format {
        case .jpeg: ("jpegtopnm", [])
        // Transparent areas become white paper, not whatever colour the transparent pixels hold.
        case .png: ("pngtopnm", ["-mix", "-background=white"])
        case .gif: ("giftopnm", [])
        }
        // The decoder's output may not exceed what the checked header allows (16-bit RGB PPM at most).
        let result = try Sandbox.run(tool, arguments, options: options, workDir: work.path, stdinPath: input, stdoutPath: output,
                                     outputLimitBytes: width * height * 6 + 4096)
        if result.timedOut || result.signal == SIGXCPU {
            throw RenderError(.timeout, "decoding the \(format.name) image took longer than \(options.timeoutSeconds) s")
        }
        let pnm = (try? work.read("image.pnm")) ?? []
        guard result.exitCode == 0 || !pnm.isEmpty, var image = PNM.grey(pnm, maxPixels: options.maxPixels) else {
            let detail = result.log.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
            throw RenderError(.broken, "the \(format.name) image cannot be decoded" + (detail.isEmpty ? "" : ": \(detail)"))
        }
        guard image.width == width, image.height == height else {
            throw RenderError(.broken, "the \(format.name) image is \(image.width) × \(image.height), not the \(width) × \(height) its header says")
        }
        if format == .jpeg { image = oriented(image, exif: ImageHeader.jpegOrientation(bytes)) }
        return PagePlacement.page(from: image, options: options)
    }

    static func checkPixels(width: Int, height: Int, options: RenderOptions) throws(RenderError) {
        let (product, overflow) = width.multipliedReportingOverflow(by: height)
        if overflow || product > options.maxPixels {
            throw RenderError(.tooLarge, "image of \(width) × \(height) pixels exceeds the limit of \(options.maxPixels) pixels")
        }
    }

    /// Applies the EXIF orientations that are pure rotations (3, 6, 8); mirrored ones (2, 4, 5, 7) are rare
    /// enough to be left as stored.
    static func oriented(_ image: GreyImage, exif: Int) -> GreyImage {
        switch exif {
        case 3: image.rotatedCounterclockwise().rotatedCounterclockwise()
        case 6: image.rotatedCounterclockwise().rotatedCounterclockwise().rotatedCounterclockwise()
        case 8: image.rotatedCounterclockwise()
        default: image
        }
    }
}

/// Netpbm output (P4, P5, P6; 8 or 16 bits) as a grey image.
enum PNM {
    /// nil for anything unreadable or larger than `maxPixels`: the size is checked before the pixels are
    /// allocated, since the decoder that wrote `data` ran on untrusted input.
    static func grey(_ data: [UInt8], maxPixels: Int) -> GreyImage? {
        guard data.count > 3, data[0] == UInt8(ascii: "P"), [UInt8(ascii: "4"), UInt8(ascii: "5"), UInt8(ascii: "6")].contains(data[1]) else {
            return nil
        }
        let kind = data[1]
        var i = 2
        func number() -> Int? {
            while i < data.count {
                if data[i] == UInt8(ascii: "#") {
                    while i < data.count && data[i] != 0x0A { i += 1 }
                } else if data[i] == 0x20 || (0x09...0x0D).contains(data[i]) {
                    i += 1
                } else { break }
            }
            var value = 0, digits = 0
            while i < data.count, (0x30...0x39).contains(data[i]), digits < 9 {
                value = value * 10 + Int(data[i] - 0x30)
                i += 1
                digits += 1
            }
            return digits > 0 ? value : nil
        }
        guard let width = number(), let height = number(), width > 0, height > 0 else { return nil }
        let (count, overflow) = width.multipliedReportingOverflow(by: height)
        guard !overflow, count <= maxPixels else { return nil }
        let maxValue = kind == UInt8(ascii: "4") ? 1 : (number() ?? 0)
        guard maxValue > 0, maxValue < 65536 else { return nil }
        i += 1
        var pixels = [UInt8](repeating: 255, count: count)
        switch kind {
        case UInt8(ascii: "4"):
            let rowBytes = (width + 7) / 8
            guard data.count - i >= rowBytes * height else { return nil }
            for y in 0..<height {
                for x in 0..<width where data[i + y * rowBytes + (x >> 3)] & (0x80 >> UInt8(x & 7)) != 0 {
                    pixels[y * width + x] = 0
                }
            }
            return GreyImage(width: width, height: height, pixels: pixels, bilevel: true)
        default:
            let channels = kind == UInt8(ascii: "6") ? 3 : 1
            let bytesPerSample = maxValue > 255 ? 2 : 1
            guard data.count - i >= count * channels * bytesPerSample else { return nil }
            var distinct = Set<UInt8>()
            data.withUnsafeBufferPointer { src in
                for p in 0..<count {
                    var sum = 0
                    for c in 0..<channels {
                        let at = i + (p * channels + c) * bytesPerSample
                        let sample = bytesPerSample == 2 ? Int(src[at]) << 8 | Int(src[at + 1]) : Int(src[at])
                        // Rec. 601 luma weights for colour, so red text stays dark enough to print.
                        let weight = channels == 1 ? 1000 : [299, 587, 114][c]
                        sum += sample * 255 / maxValue * weight
                    }
                    pixels[p] = UInt8(min(255, sum / 1000))
                    if distinct.count < 3 { distinct.insert(pixels[p]) }
                }
            }
            return GreyImage(width: width, height: height, pixels: pixels, bilevel: distinct.count <= 2)
        }
    }
}
