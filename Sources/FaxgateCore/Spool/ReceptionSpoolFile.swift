import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The file a transport streams a received document into (SFF for CAPI).
///
/// Data is appended as it arrives and fsynced at the end (and every `syncEvery` bytes), so a power cut loses
/// at most the tail of a call in progress. The file lives at its final name from the start: the journal row
/// says whether it is complete, and a restart treats an unfinished one as a partial reception, never deletes it.
public final class ReceptionSpoolFile: Sendable {
    public let path: String
    private struct State {
        var fd: Int32; var written: Int; var unsynced: Int; var failure: String?
        var pages = SFFPageCounter()
        var exceeded: ReceptionLimits.Exceeded?
    }
    private let state: Mutex<State>
    private let syncEvery = 256 * 1024
    /// Bounds for a received fax; nil for files without them (voice recordings have their own maximum length).
    public let limits: ReceptionLimits?
    private let started = ContinuousClock.now

    /// `limits`: stop storing once a received SFF document goes past them (see `exceeded`).
    public convenience init(path: String, limits: ReceptionLimits) throws {
        try self.init(path: path, bounded: limits)
    }

    public convenience init(path: String) throws {
        try self.init(path: path, bounded: nil)
    }

    private init(path: String, bounded: ReceptionLimits?) throws {
        self.path = path
        self.limits = bounded
        // 0600 whatever the umask: the file is a received fax or voice message.
        let fd = try DurableFile.createFile(path, flags: O_WRONLY | O_EXCL, mode: 0o600)
        state = Mutex(State(fd: fd, written: 0, unsynced: 0, failure: nil))
        try DurableFile.syncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// Appends received bytes. A write error is remembered and reported by `finish()`; the call goes on
    /// so the remote is not left hanging, but the reception will be reported as failed.
    /// Past a limit nothing more is stored: the caller hangs up (see `exceeded`); pages already complete stay.
    public func append(_ bytes: UnsafeRawBufferPointer) {
        state.withLock { s in
            guard s.fd >= 0, s.failure == nil, s.exceeded == nil else { return }
            var count = bytes.count
            if let limits {
                if ContinuousClock.now - started > limits.maxDuration {
                    s.exceeded = .duration(limits.maxDuration)
                    return
                }
                // Stop right before the page header of the first page too many, so every stored page is whole.
                if let cut = s.pages.feed(bytes, stopBeforePage: limits.maxPages + 1) {
                    count = cut
                    s.exceeded = .pages(limits.maxPages)
                }
                if s.written + count > limits.maxBytes {
                    count = max(0, limits.maxBytes - s.written)
                    s.exceeded = .bytes(limits.maxBytes)
                }
            }
            var offset = 0
            while offset < count {
                let n = write(s.fd, bytes.baseAddress! + offset, count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    s.failure = "write \(path): \(DurableFile.errnoText())"
                    return
                }
                offset += n
            }
            s.written += count
            s.unsynced += count
            if s.unsynced >= syncEvery { fsync(s.fd); s.unsynced = 0 }
        }
    }

    public func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    public var bytesWritten: Int { state.withLock { $0.written } }

    /// The limit this reception went past (the transport hangs up; the pages before it are kept and mailed).
    public var exceeded: ReceptionLimits.Exceeded? { state.withLock { $0.exceeded } }

    /// Flushes and closes the file. Returns the number of bytes stored; throws if any write failed.
    @discardableResult
    public func finish() throws -> Int {
        try state.withLock { s in
            if s.fd >= 0 {
                let syncOK = fsync(s.fd) == 0
                close(s.fd)
                s.fd = -1
                if !syncOK && s.failure == nil { s.failure = "fsync \(path): \(DurableFile.errnoText())" }
            }
            if let failure = s.failure { throw DurableFile.Failure(description: failure) }
            return s.written
        }
    }

    deinit {
        state.withLock { s in if s.fd >= 0 { fsync(s.fd); close(s.fd) } }
    }
}

/// How much one incoming fax call may bring: a stranger's endless fax must not fill the disk or hold the line.
public struct ReceptionLimits: Sendable, Equatable {
    public var maxBytes: Int
    public var maxPages: Int
    public var maxDuration: Duration

    public init(maxBytes: Int = 50 * 1_048_576, maxPages: Int = 200, maxDuration: Duration = .seconds(60 * 60)) {
        self.maxBytes = maxBytes; self.maxPages = maxPages; self.maxDuration = maxDuration
    }

    /// Which limit stopped a reception; typed, so the journal and the mail never parse a reason text.
    public enum Exceeded: Sendable, Equatable {
        case bytes(Int)
        case pages(Int)
        case duration(Duration)

        public func text(_ language: String) -> String {
            let de = language != "en"
            switch self {
            case .bytes(let limit):
                let mb = limit / 1_048_576
                return de ? "der Empfang wurde nach \(mb) MB beendet, der Grenze für ein Fax; die Seiten bis dahin sind angehängt"
                          : "reception was stopped after \(mb) MB, the limit for one fax; the pages up to there are attached"
            case .pages(let limit):
                return de ? "der Empfang wurde nach \(limit) Seiten beendet, der Grenze für ein Fax; weitere Seiten wurden nicht angenommen"
                          : "reception was stopped after \(limit) pages, the limit for one fax; further pages were not accepted"
            case .duration(let limit):
                let minutes = Int(limit.components.seconds / 60)
                return de ? "der Empfang wurde nach \(minutes) Minuten beendet, der Grenze für einen Anruf; die Seiten bis dahin sind angehängt"
                          : "reception was stopped after \(minutes) minutes, the limit for one call; the pages up to there are attached"
            }
        }
    }
}

/// Counts the pages of an SFF stream as it arrives, record by record, across chunk boundaries.
struct SFFPageCounter: Sendable {
    private enum Phase: Sendable { case header, skip, record, longLength, pageHeaderLength, userInfoLength, end }
    private var phase = Phase.header
    private var header: [UInt8] = []
    private var skip = 0
    private var longLengthBytes: [UInt8] = []
    private(set) var pages = 0

    /// Feeds one chunk. Returns the index in `bytes` of the page-header record that would start page
    /// `stopBeforePage`, if it is in this chunk (0 when it began in an earlier one); nil otherwise.
    mutating func feed(_ bytes: UnsafeRawBufferPointer, stopBeforePage: Int) -> Int? {
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            switch phase {
            case .header:
                // "Sfff", version, reserved, user info length, page count, offset of the first page header (LE).
                header.append(b)
                if header.count == 12 {
                    let first = Int(header[10]) | Int(header[11]) << 8
                    skip = max(0, first - 12)
                    phase = skip > 0 ? .skip : .record
                }
                i += 1
            case .skip:
                let n = min(skip, bytes.count - i)
                skip -= n
                i += n
                if skip == 0 { phase = .record }
            case .record:
                i += 1
                switch b {
                case 0: phase = .longLength; longLengthBytes = []
                case 1...216: skip = Int(b); phase = .skip
                case 217...253: break
                case 254:
                    phase = .pageHeaderLength
                    // Decided when the length byte arrives; remember where this record began.
                    pendingPageHeader = i - 1
                default: phase = .userInfoLength
                }
            case .longLength:
                longLengthBytes.append(b)
                i += 1
                if longLengthBytes.count == 2 {
                    skip = Int(longLengthBytes[0]) | Int(longLengthBytes[1]) << 8
                    phase = skip > 0 ? .skip : .record
                }
            case .pageHeaderLength:
                i += 1
                if b == 0 { phase = .end; continue }  // document end
                if pages + 1 >= stopBeforePage { return max(0, pendingPageHeader ?? 0) }
                pages += 1
                skip = Int(b)
                phase = .skip
            case .userInfoLength:
                i += 1
                skip = Int(b)
                phase = skip > 0 ? .skip : .record
            case .end:
                return nil
            }
        }
        // A page header split across chunks starts at the beginning of the next one.
        pendingPageHeader = phase == .pageHeaderLength ? 0 : nil
        return nil
    }

    private var pendingPageHeader: Int?
}
