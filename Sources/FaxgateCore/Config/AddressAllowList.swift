import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A list of IP addresses and CIDR ranges (`web.metrics_allow`: "10.0.0.5", "192.168.1.0/24", "fd00::/8").
/// IPv4-mapped IPv6 peers (`::ffff:10.0.0.5`) match their IPv4 form.
public struct AddressAllowList: Sendable, Equatable {
    struct Range: Sendable, Equatable {
        var bytes: [UInt8]   // 4 or 16
        var prefix: Int
    }
    let ranges: [Range]
    /// Entries that are no address or range (config check reports them; they never match).
    public let invalid: [String]

    public init(_ entries: [String]) {
        var ranges: [Range] = []
        var invalid: [String] = []
        for entry in entries {
            let parts = entry.trimmingCharacters(in: .whitespaces).split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), let bytes = Self.parse(String(parts[0])) else { invalid.append(entry); continue }
            let maxPrefix = bytes.count * 8
            let prefix = parts.count == 2 ? Int(parts[1]) : maxPrefix
            guard let prefix, (0...maxPrefix).contains(prefix), parts.count == 1 || parts[1].allSatisfy(\.isASCII) else {
                invalid.append(entry); continue
            }
            ranges.append(Range(bytes: bytes, prefix: prefix))
        }
        self.ranges = ranges
        self.invalid = invalid
    }

    public func contains(_ address: String) -> Bool {
        guard let bytes = Self.parse(address) else { return false }
        return ranges.contains { r in
            guard r.bytes.count == bytes.count else { return false }
            var bits = r.prefix
            for i in 0..<bytes.count where bits > 0 {
                let mask: UInt8 = bits >= 8 ? 0xFF : UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
                if bytes[i] & mask != r.bytes[i] & mask { return false }
                bits -= 8
            }
            return true
        }
    }

    /// 127.0.0.0/8, ::1 and their IPv4-mapped forms.
    public static func isLoopback(_ address: String) -> Bool {
        guard let bytes = parse(address) else { return false }
        return bytes.count == 4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// Address bytes (4 for IPv4 and IPv4-mapped IPv6, 16 for IPv6), nil when `text` is no literal address.
    static func parse(_ text: String) -> [UInt8]? {
        var text = text
        if text.hasPrefix("["), text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let zone = text.firstIndex(of: "%") { text = String(text[..<zone]) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }
}
