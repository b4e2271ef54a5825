import Foundation

/// `extensions[].voicemail`: voice calls to the extension get a greeting, a beep and a recording by mail.
public struct VoicemailConfig: Sendable, Codable, Equatable {
    public var enabled: Bool = true
    /// Greeting in any format sox reads (WAV, MP3 …, any rate, stereo); converted once at start. nil = built-in.
    public var greeting: String?
    /// Seconds of ringing before the voicemail answers (ALERT is sent meanwhile).
    public var ringDelaySeconds: Int = 0
    public var maxSeconds: Int = 60
    /// Trailing silence that ends the recording; 0 = off.
    public var silenceSeconds: Int = 5
    /// Calls with less recorded audio (hang-up during the greeting) are journaled without mail.
    public var minSeconds: Double = 1
    public var attachWAV: Bool = true
    /// "none" or "mp3" (libmp3lame).
    public var compressed: String = "none"
    /// Mail a notice without the audio (the recording stays in the spool until retention).
    public var privacyNoticeOnly: Bool = false
    /// CSV file: number,name per line; names the caller in the mail.
    public var addressBook: String?
    /// A fax tone during greeting or recording switches to fax reception.
    public var faxOnTone: Bool = true

    enum CodingKeys: String, CodingKey {
        case enabled, greeting, ringDelaySeconds = "ring_delay_seconds", maxSeconds = "max_seconds"
        case silenceSeconds = "silence_seconds", minSeconds = "min_seconds", attachWAV = "attach_wav", compressed
        case privacyNoticeOnly = "privacy_notice_only", addressBook = "address_book", faxOnTone = "fax_on_tone"
    }
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        enabled = try c.decodeIfPresent(Bool.self, forKey: .enabled) ?? enabled
        greeting = try c.decodeIfPresent(String.self, forKey: .greeting)
        ringDelaySeconds = try c.decodeIfPresent(Int.self, forKey: .ringDelaySeconds) ?? ringDelaySeconds
        maxSeconds = try c.decodeIfPresent(Int.self, forKey: .maxSeconds) ?? maxSeconds
        silenceSeconds = try c.decodeIfPresent(Int.self, forKey: .silenceSeconds) ?? silenceSeconds
        minSeconds = try c.decodeIfPresent(Double.self, forKey: .minSeconds) ?? minSeconds
        attachWAV = try c.decodeIfPresent(Bool.self, forKey: .attachWAV) ?? attachWAV
        compressed = try c.decodeIfPresent(String.self, forKey: .compressed) ?? compressed
        privacyNoticeOnly = try c.decodeIfPresent(Bool.self, forKey: .privacyNoticeOnly) ?? privacyNoticeOnly
        addressBook = try c.decodeIfPresent(String.self, forKey: .addressBook)
        faxOnTone = try c.decodeIfPresent(Bool.self, forKey: .faxOnTone) ?? faxOnTone
    }
}

/// An extension's voicemail settings, checked.
public struct Voicemail: Sendable, Equatable {
    public enum Compression: String, Sendable { case none, mp3 }
    public var greetingFile: String?
    public var ringDelaySeconds: Int
    public var maxSeconds: Int
    public var silenceSeconds: Int
    public var minSeconds: Double
    public var attachWAV: Bool
    public var compression: Compression
    public var privacyNoticeOnly: Bool
    public var addressBookFile: String?
    public var faxOnTone: Bool

    public init(_ c: VoicemailConfig) {
        greetingFile = c.greeting; ringDelaySeconds = c.ringDelaySeconds; maxSeconds = c.maxSeconds
        silenceSeconds = c.silenceSeconds; minSeconds = c.minSeconds; attachWAV = c.attachWAV
        compression = Compression(rawValue: c.compressed.lowercased()) ?? .none
        privacyNoticeOnly = c.privacyNoticeOnly; addressBookFile = c.addressBook; faxOnTone = c.faxOnTone
    }
}

/// `number,name` lines (a header line, comments with '#' and quotes are tolerated). Numbers are compared by
/// their digits, with a leading international or national prefix folded so +49 30 123 matches 030123.
public struct AddressBook: Sendable, Equatable {
    public private(set) var entries: [(digits: String, name: String)] = []
    public static func == (a: AddressBook, b: AddressBook) -> Bool { a.entries.map(\.digits) == b.entries.map(\.digits) }

    public init(csv: String) {
        for raw in csv.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: line.contains(";") ? ";" : ",", maxSplits: 1).map {
                $0.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
            }
            guard parts.count == 2 else { continue }
            let digits = Self.key(parts[0])
            if digits.count >= 3, !parts[1].isEmpty { entries.append((digits, parts[1])) }
        }
    }

    public init(file: String) throws {
        self.init(csv: try String(contentsOfFile: file, encoding: .utf8))
    }

    /// Digits with prefixes folded: "+4930…"/"004930…" and "030…" both become "30…" (German numbering).
    static func key(_ number: String) -> String {
        var d = number.filter(\.isASCII).filter(\.isNumber)
        if number.trimmingCharacters(in: .whitespaces).hasPrefix("+") { d = String(d.dropFirst(2)) }
        else if d.hasPrefix("00") { d = String(d.dropFirst(4)) }
        else if d.hasPrefix("0") { d = String(d.dropFirst()) }
        return d
    }

    public func name(for number: String?) -> String? {
        guard let number else { return nil }
        let k = Self.key(number)
        return entries.first { $0.digits == k }?.name
    }
}

extension ConfigValidator {
    static func validateVoicemail(_ v: VoicemailConfig) -> [Problem] {
        var problems: [Problem] = []
        func problem(_ key: String, _ message: String) { problems.append(Problem(path: [.key(key)], message: message)) }
        if let g = v.greeting {
            if !g.hasPrefix("/") { problem("greeting", "must be an absolute path") }
            else if !FileManager.default.isReadableFile(atPath: g) { problem("greeting", "file \(g) is not readable") }
        }
        if let a = v.addressBook {
            if !a.hasPrefix("/") { problem("address_book", "must be an absolute path") }
            else if !FileManager.default.isReadableFile(atPath: a) { problem("address_book", "file \(a) is not readable") }
        }
        if !(0...60).contains(v.ringDelaySeconds) { problem("ring_delay_seconds", "between 0 and 60") }
        if !(1...3600).contains(v.maxSeconds) { problem("max_seconds", "between 1 and 3600") }
        if !(0...60).contains(v.silenceSeconds) { problem("silence_seconds", "between 0 (off) and 60") }
        if !(0...60).contains(v.minSeconds) { problem("min_seconds", "between 0 and 60") }
        if Voicemail.Compression(rawValue: v.compressed.lowercased()) == nil {
            problem("compressed", "must be none or mp3 (Opus is not built in)")
        }
        return problems
    }
}
