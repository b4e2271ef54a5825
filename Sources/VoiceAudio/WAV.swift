import Foundation

/// RIFF WAVE, PCM 16-bit little-endian: what every mail client and phone can play.
public enum WAV {
    public struct Audio: Sendable, Equatable {
        public var sampleRate: Int
        public var channels: Int
        /// Interleaved samples.
        public var samples: [Int16]
        public init(sampleRate: Int, channels: Int, samples: [Int16]) {
            self.sampleRate = sampleRate; self.channels = channels; self.samples = samples
        }
        public var duration: Double { Double(samples.count / max(1, channels)) / Double(sampleRate) }
    }

    public struct FormatError: Error, CustomStringConvertible { public var description: String }

    public static func encode(_ samples: [Int16], sampleRate: Int = G711.sampleRate, channels: Int = 1) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(44 + samples.count * 2)
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { out += $0 } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { out += $0 } }
        let dataBytes = samples.count * 2
        out += Array("RIFF".utf8); u32(36 + dataBytes); out += Array("WAVE".utf8)
        out += Array("fmt ".utf8); u32(16); u16(1); u16(channels); u32(sampleRate)
        u32(sampleRate * channels * 2); u16(channels * 2); u16(16)
        out += Array("data".utf8); u32(dataBytes)
        for s in samples { withUnsafeBytes(of: s.littleEndian) { out += $0 } }
        return out
    }

    /// Reads PCM 16-bit WAV files (any rate/channels); other encodings are refused (convert with sox first).
    public static func decode(_ bytes: [UInt8]) throws -> Audio {
        func u32(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 24 }
        func u16(_ i: Int) -> Int { Int(bytes[i]) | Int(bytes[i + 1]) << 8 }
        guard bytes.count >= 12, bytes[0..<4].elementsEqual("RIFF".utf8), bytes[8..<12].elementsEqual("WAVE".utf8) else {
            throw FormatError(description: "not a RIFF WAVE file")
        }
        var i = 12
        var format: (tag: Int, channels: Int, rate: Int, bits: Int)?
        while i + 8 <= bytes.count {
            let id = String(decoding: bytes[i..<i + 4], as: UTF8.self), size = u32(i + 4)
            let body = i + 8
            // A streaming writer may leave the size 0 or too large: take what is there.
            let end = min(bytes.count, body + size)
            if id == "fmt " {
                guard size >= 16, body + 16 <= bytes.count else { throw FormatError(description: "short fmt chunk") }
                format = (u16(body), u16(body + 2), u32(body + 4), u16(body + 14))
            } else if id == "data" {
                guard let f = format else { throw FormatError(description: "data before fmt") }
                let tag = f.tag == 0xFFFE ? 1 : f.tag   // WAVE_FORMAT_EXTENSIBLE with PCM
                guard tag == 1, f.bits == 16 else { throw FormatError(description: "only PCM 16-bit is read (tag \(f.tag), \(f.bits) bits)") }
                var samples: [Int16] = []
                samples.reserveCapacity((end - body) / 2)
                var j = body
                while j + 1 < end { samples.append(Int16(bitPattern: UInt16(u16(j)))); j += 2 }
                return Audio(sampleRate: f.rate, channels: f.channels, samples: samples)
            }
            i = body + size + (size & 1)
        }
        throw FormatError(description: "no data chunk")
    }
}
