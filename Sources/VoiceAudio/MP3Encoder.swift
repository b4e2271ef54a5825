import CLame

/// MP3 through Debian's libmp3lame: 8 kHz mono voice at 16 kbit/s, a tenth of the WAV's size.
public enum MP3Encoder {
    public struct EncodingError: Error, CustomStringConvertible { public var description: String }

    public static func encode(_ pcm: [Int16], sampleRate: Int = G711.sampleRate, kbps: Int = 16) throws -> [UInt8] {
        guard let lame = lame_init() else { throw EncodingError(description: "lame_init failed") }
        defer { lame_close(lame) }
        lame_set_in_samplerate(lame, Int32(sampleRate))
        lame_set_out_samplerate(lame, Int32(sampleRate))
        lame_set_num_channels(lame, 1)
        lame_set_mode(lame, MONO)
        lame_set_brate(lame, Int32(kbps))
        lame_set_quality(lame, 5)
        lame_set_write_id3tag_automatic(lame, 0)
        guard lame_init_params(lame) >= 0 else { throw EncodingError(description: "lame_init_params refused the settings") }
        var out: [UInt8] = []
        let chunk = 8192
        var buffer = [UInt8](repeating: 0, count: chunk * 5 / 4 + 7200)
        var i = 0
        var samples = pcm
        while i < samples.count {
            let n = min(chunk, samples.count - i)
            let written = samples.withUnsafeMutableBufferPointer { s in
                buffer.withUnsafeMutableBufferPointer { b in
                    // Mono: the right channel pointer is ignored by lame.
                    lame_encode_buffer(lame, s.baseAddress! + i, s.baseAddress! + i, Int32(n), b.baseAddress!, Int32(b.count))
                }
            }
            guard written >= 0 else { throw EncodingError(description: "lame_encode_buffer failed (\(written))") }
            out += buffer[0..<Int(written)]
            i += n
        }
        let tail = buffer.withUnsafeMutableBufferPointer { lame_encode_flush(lame, $0.baseAddress!, Int32($0.count)) }
        guard tail >= 0 else { throw EncodingError(description: "lame_encode_flush failed (\(tail))") }
        out += buffer[0..<Int(tail)]
        return out
    }
}
