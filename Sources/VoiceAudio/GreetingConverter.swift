import Foundation

/// Turns an uploaded greeting in any format sox reads (WAV, MP3, FLAC, Ogg …; any rate, stereo) into line
/// audio once, at start, so no call ever waits for a converter.
///
/// sox runs as a subprocess with an empty environment, stdin closed, a time limit and only the two paths as
/// arguments: a damaged or hostile upload can crash or stall sox, never the gateway.
public enum GreetingConverter {
    public struct ConversionError: Error, CustomStringConvertible { public var description: String }

    public static var soxPath: String? {
        ["/usr/bin/sox", "/usr/local/bin/sox"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Converts `input` to line bytes (bit-reversed A-law, 8 kHz mono). Loudness is normalized to −3 dBFS
    /// so quiet uploads stay audible on the phone.
    public static func convert(_ input: String, timeout: TimeInterval = 30) throws -> [UInt8] {
        guard let sox = soxPath else { throw ConversionError(description: "sox is not installed") }
        guard FileManager.default.isReadableFile(atPath: input) else {
            throw ConversionError(description: "greeting \(input) is not readable")
        }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("faxgate-greeting-\(UUID().uuidString).al").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: sox)
        p.arguments = ["-V1", input, "-t", "al", "-r", "8000", "-c", "1", out, "gain", "-n", "-3"]
        p.environment = [:]
        p.standardInput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { p.terminate(); p.waitUntilExit(); throw ConversionError(description: "sox took longer than \(Int(timeout)) s") }
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: out), !data.isEmpty else {
            throw ConversionError(description: "sox could not convert \(input): \(message.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return G711.reversed([UInt8](data))
    }
}

/// The built-in greetings (German and English, made once with espeak-ng and shipped as 8 kHz A-law).
public enum DefaultGreeting {
    /// Where the shipped files are looked for: the SwiftPM resource bundle beside the executable
    /// (`swift build`), then the installed share directories.
    public static func directories() -> [String] {
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent().path
        let selfExe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            .map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
        return [selfExe, exe].compactMap { $0 }.flatMap { [$0 + "/Faxgate_VoiceAudio.resources/Greetings", $0 + "/Faxgate_VoiceAudio.resources"] }
            + ["/usr/local/share/faxgate/greetings", "/usr/share/faxgate/greetings"]
    }

    /// Line bytes of the default greeting for a language ("de", "en"), nil when no file is installed.
    public static func line(language: String) -> [UInt8]? {
        for dir in directories() {
            if let d = FileManager.default.contents(atPath: "\(dir)/greeting-\(language).alaw"), !d.isEmpty {
                return G711.reversed([UInt8](d))
            }
        }
        return nil
    }
}
