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
    private struct State { var fd: Int32; var written: Int; var unsynced: Int; var failure: String? }
    private let state: Mutex<State>
    private let syncEvery = 256 * 1024

    public init(path: String) throws {
        self.path = path
        // 0600 whatever the umask: the file is a received fax or voice message.
        let fd = try DurableFile.createFile(path, flags: O_WRONLY | O_EXCL, mode: 0o600)
        state = Mutex(State(fd: fd, written: 0, unsynced: 0, failure: nil))
        try DurableFile.syncDirectory((path as NSString).deletingLastPathComponent)
    }

    /// Appends received bytes. A write error is remembered and reported by `finish()`; the call goes on
    /// so the remote is not left hanging, but the reception will be reported as failed.
    public func append(_ bytes: UnsafeRawBufferPointer) {
        state.withLock { s in
            guard s.fd >= 0, s.failure == nil else { return }
            var offset = 0
            while offset < bytes.count {
                let n = write(s.fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    s.failure = "write \(path): \(DurableFile.errnoText())"
                    return
                }
                offset += n
            }
            s.written += bytes.count
            s.unsynced += bytes.count
            if s.unsynced >= syncEvery { fsync(s.fd); s.unsynced = 0 }
        }
    }

    public func append(_ bytes: [UInt8]) { bytes.withUnsafeBytes { append($0) } }

    public var bytesWritten: Int { state.withLock { $0.written } }

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
