/// Bounds checked before a message reaches libetpan, whose parse time grows quadratically with nesting
/// depth (1.3 MB with 20 000 levels takes 43 s): mail is untrusted input.
public struct MIMELimits: Sendable, Equatable {
    public var maxBytes: Int
    /// Nested multipart and message/* containers on one path (a plain multipart/mixed is depth 1).
    public var maxDepth: Int
    /// Body parts (boundary delimiters), counted over the whole message.
    public var maxParts: Int
    /// Size of any one header block (the message's or a part's).
    public var maxHeaderBytes: Int

    public init(maxBytes: Int = 25 * 1024 * 1024, maxDepth: Int = 10, maxParts: Int = 100, maxHeaderBytes: Int = 256 * 1024) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxParts = maxParts
        self.maxHeaderBytes = maxHeaderBytes
    }
}

public enum MIMEError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooLarge(what: String, bytes: Int, limit: Int)
    case tooDeep(limit: Int)
    case tooManyParts(limit: Int)
    case malformed(String)

    public var description: String {
        switch self {
        case .tooLarge(let what, let bytes, let limit):
            return "\(what) too large: \(bytes) bytes, the limit is \(limit)"
        case .tooDeep(let limit): return "message nested too deeply: more than \(limit) levels of multipart/message parts"
        case .tooManyParts(let limit): return "message has too many parts: more than \(limit)"
        case .malformed(let text): return "message cannot be parsed: \(text)"
        }
    }
}

/// A cheap line scan of the MIME skeleton: header blocks, Content-Type containers and boundary lines. It
/// enforces the limits without building anything and notes boundaries that are never closed.
struct MIMEStructureScan {
    private enum Container { case multipart(boundary: [UInt8], closed: Bool), message }  // closed: seen "--b--"
    private(set) var problems: [String] = []
    private(set) var maxDepthSeen = 0
    private(set) var partCount = 0

    init(_ bytes: [UInt8], limits: MIMELimits) throws(MIMEError) {
        var stack: [Container] = []
        var containers = 0
        var inHeader = true
        var headerStart = 0
        var field: [UInt8] = []
        var contentType: [UInt8]?

        func flushField() {
            if let colon = field.firstIndex(of: UInt8(ascii: ":")),
                      asciiLowercased(trimmed(field[..<colon])) == Array("content-type".utf8) {
                contentType = Array(field[(colon + 1)...])
            }
            field.removeAll(keepingCapacity: true)
        }

        var lineStart = 0
        let count = bytes.count
        while lineStart < count {
            var lineEnd = lineStart
            while lineEnd < count && bytes[lineEnd] != 0x0A { lineEnd += 1 }
            var contentEnd = lineEnd
            if contentEnd > lineStart && bytes[contentEnd - 1] == 0x0D { contentEnd -= 1 }
            let next = lineEnd + 1

            if inHeader {
                if contentEnd == lineStart {
                    // End of a header block: decide what the body that follows is.
                    flushField()
                    if next - headerStart > limits.maxHeaderBytes {
                        throw .tooLarge(what: "header block", bytes: next - headerStart, limit: limits.maxHeaderBytes)
                    }
                    inHeader = false
                    if let ct = contentType {
                        let lower = asciiLowercased(trimmed(ct[...]))
                        if lower.starts(with: Array("multipart/".utf8)), let boundary = boundaryParameter(ct) {
                            stack.append(.multipart(boundary: boundary, closed: false))
                            containers += 1
                        } else if lower.starts(with: Array("message/".utf8)) {
                            // The body is another message: its header block follows at once.
                            stack.append(.message)
                            containers += 1
                            inHeader = true
                            headerStart = next
                        }
                        if stack.count > limits.maxDepth { throw .tooDeep(limit: limits.maxDepth) }
                        // Every container is at least one part: this also bounds depth libetpan might see
                        // where this scan and libetpan disagree about a boundary.
                        if containers > limits.maxParts { throw .tooManyParts(limit: limits.maxParts) }
                        maxDepthSeen = max(maxDepthSeen, stack.count)
                    }
                    contentType = nil
                } else if bytes[lineStart] == 0x20 || bytes[lineStart] == 0x09 {
                    if field.count < limits.maxHeaderBytes { field.append(contentsOf: bytes[lineStart..<contentEnd]) }
                } else {
                    flushField()
                    field.append(contentsOf: bytes[lineStart..<contentEnd])
                    if lineEnd - headerStart > limits.maxHeaderBytes {
                        throw .tooLarge(what: "header block", bytes: lineEnd - headerStart, limit: limits.maxHeaderBytes)
                    }
                }
            } else if contentEnd - lineStart >= 3 && bytes[lineStart] == 0x2D && bytes[lineStart + 1] == 0x2D && !stack.isEmpty {
                var end = contentEnd
                while end > lineStart + 2 && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09) { end -= 1 }
                let candidate = bytes[(lineStart + 2)..<end]
                for index in stride(from: stack.count - 1, through: 0, by: -1) {
                    guard case .multipart(let boundary, _) = stack[index] else { continue }
                    let isClose = candidate.count == boundary.count + 2 && candidate.starts(with: boundary)
                        && candidate.suffix(2).elementsEqual([0x2D, 0x2D])
                    guard isClose || candidate.elementsEqual(boundary) else { continue }
                    for inner in stack[(index + 1)...] {
                        if case .multipart(let b, false) = inner { noteUnclosed(b) }
                    }
                    stack.removeSubrange((index + 1)...)
                    if isClose {
                        stack.removeLast()
                    } else {
                        partCount += 1
                        if partCount > limits.maxParts { throw .tooManyParts(limit: limits.maxParts) }
                        inHeader = true
                        headerStart = next
                        contentType = nil
                    }
                    break
                }
            }
            lineStart = next
        }
        if inHeader && count - headerStart > limits.maxHeaderBytes {
            throw .tooLarge(what: "header block", bytes: count - headerStart, limit: limits.maxHeaderBytes)
        }
        for container in stack {
            if case .multipart(let b, false) = container { noteUnclosed(b) }
        }
    }

    private mutating func noteUnclosed(_ boundary: [UInt8]) {
        problems.append("multipart boundary \"\(String(decoding: boundary, as: UTF8.self))\" is never closed")
    }
}

/// The `boundary` parameter of a Content-Type value (quoted or token), as bytes.
private func boundaryParameter(_ value: [UInt8]) -> [UInt8]? {
    let lower = asciiLowercased(value[...])
    let key = Array("boundary".utf8)
    var i = 0
    while i + key.count <= lower.count {
        if lower[i..<(i + key.count)].elementsEqual(key) && (i == 0 || [0x3B, 0x20, 0x09].contains(lower[i - 1])) {
            var j = i + key.count
            while j < value.count && (value[j] == 0x20 || value[j] == 0x09) { j += 1 }
            guard j < value.count, value[j] == 0x3D else { i += 1; continue }
            j += 1
            while j < value.count && (value[j] == 0x20 || value[j] == 0x09) { j += 1 }
            guard j < value.count else { return nil }
            if value[j] == 0x22 {
                var out: [UInt8] = []
                j += 1
                while j < value.count && value[j] != 0x22 {
                    if value[j] == 0x5C && j + 1 < value.count { j += 1 }
                    out.append(value[j])
                    j += 1
                }
                return out.isEmpty ? nil : out
            }
            var end = j
            while end < value.count && ![0x3B, 0x20, 0x09, 0x0D, 0x0A].contains(value[end]) { end += 1 }
            return end > j ? Array(value[j..<end]) : nil
        }
        i += 1
    }
    return nil
}

func asciiLowercased<C: Collection<UInt8>>(_ bytes: C) -> [UInt8] {
    bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
}

func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
    var s = bytes
    while let f = s.first, f == 0x20 || f == 0x09 || f == 0x0D || f == 0x0A { s = s.dropFirst() }
    while let l = s.last, l == 0x20 || l == 0x09 || l == 0x0D || l == 0x0A { s = s.dropLast() }
    return s
}
