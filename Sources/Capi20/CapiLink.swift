import CCapi20
import CapiProtocol
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where libcapi20 finds its controller.
public struct CapiLinkConfiguration: Sendable, Equatable {
    /// libcapi20 module: "rcapi", "standard" or "fritzbox".
    public var driver: String
    public var host: String
    public var port: Int
    /// Directory used as HOME, where `.capi20rc` is written. libcapi20 prefers that file over the ext API, so
    /// with a private HOME the settings here are exactly what the library uses.
    public var home: String?
    public var traceLevel: Int
    public init(driver: String = "rcapi", host: String = "127.0.0.1", port: Int = 2662, home: String? = nil, traceLevel: Int = 0) {
        self.driver = driver; self.host = host; self.port = port; self.home = home; self.traceLevel = traceLevel
    }
}

public enum CapiLinkEvent: Sendable {
    case message(CapiMessage)
    /// The controller connection is gone; the application has been released on the link thread.
    case linkLost(CapiInfo)
}

public struct CapiRegistration: Sendable, Equatable {
    public var applID: UInt16
    /// Profile per controller number (1-based); empty when the controller would not tell.
    public var profiles: [Int: CapiProfile]
}

public struct CapiLinkError: Error, Sendable, CustomStringConvertible {
    public var info: CapiInfo
    public var description: String
}

/// The one owner of libcapi20 in the process.
///
/// libcapi20 keeps static buffers and per-process state, so every call into it runs on the link's own thread.
/// That thread sleeps in `poll` on the application's socket and a wake-up eventfd; callers hand it work
/// (register, release, send) through a queue and get inbound messages from `events`.
public final class CapiLink: Sendable {
    public let configuration: CapiLinkConfiguration
    public let events: AsyncStream<CapiLinkEvent>
    private let continuation: AsyncStream<CapiLinkEvent>.Continuation

    private struct Shared {
        var jobs: [@Sendable (inout ThreadState) -> Void] = []
        var outbound: [CapiMessage] = []
        var stopping = false
        /// The thread has ended: work can no longer be run on it.
        var threadDone = false
    }
    /// Only touched on the link thread (passed `inout` to jobs).
    struct ThreadState {
        var applID: UInt32?
        var configured = false
        /// Receive buffers libcapi20 still lends us: (NCCI, handle) of every DATA_B3_IND not yet answered.
        var lentBuffers = LentBuffers()
    }
    private let shared = Mutex(Shared())
    /// Self-pipe that wakes the link thread out of poll.
    private let wakeRead: Int32, wakeWrite: Int32

    public init(configuration: CapiLinkConfiguration) {
        self.configuration = configuration
        (events, continuation) = AsyncStream.makeStream(of: CapiLinkEvent.self)
        var fds: [Int32] = [-1, -1]
        _ = pipe(&fds)
        for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK); _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        wakeRead = fds[0]; wakeWrite = fds[1]
        // A dead controller socket must not kill the process when libcapi20 writes to it.
        signal(SIGPIPE, SIG_IGN)
        let thread = Thread { [self] in self.threadMain() }
        thread.name = "libcapi20"
        thread.start()
    }

    // MARK: API (any thread)

    /// Registers an application. Throws when the controller is not reachable or refuses.
    /// `maxLogicalConnection` is computed from the controller profiles, which are read before registering
    /// (empty when the controller would not tell).
    public func register(maxLogicalConnection: @escaping @Sendable ([Int: CapiProfile]) -> Int, maxBDataBlocks: Int = 7,
                         maxBDataLen: Int = 2048) async throws -> CapiRegistration {
        let config = configuration
        let stopped = CapiLinkError(info: CapiInfo(0x1009), description: "CAPI link is shut down")
        let result: Result<CapiRegistration, CapiLinkError> = await perform(fallback: .failure(stopped)) { state in
            Self.doRegister(&state, config: config, maxLogicalConnection: maxLogicalConnection,
                            maxBDataBlocks: maxBDataBlocks, maxBDataLen: maxBDataLen)
        }
        return try result.get()
    }

    /// Releases the application (if any). Messages not yet sent are dropped.
    public func release() async {
        await perform(fallback: ()) { state in
            if let appl = state.applID { _ = capi20_release(appl); state.applID = nil }
        }
        shared.withLock { $0.outbound.removeAll() }
    }

    /// Queues a message for `capi20_put_message`. The ApplID is filled in on the link thread.
    public func send(_ message: CapiMessage) {
        shared.withLock { $0.outbound.append(message) }
        wake()
    }

    /// Reason text from libcapi20's `capi_info2str`, falling back to the built-in table.
    public func infoText(_ code: UInt16) async -> String {
        await perform(fallback: CapiInfo(code).name ?? "CAPI info 0x\(String(code, radix: 16))") { _ in
            if let p = capi_info2str(code) {
                let s = String(cString: p)
                if !s.isEmpty && !s.hasPrefix("No additional information") || code == 0 { return s }
            }
            return CapiInfo(code).name ?? "CAPI info 0x\(String(code, radix: 16))"
        }
    }

    /// Releases the application and ends the thread; `events` finishes.
    public func shutdown() {
        shared.withLock { $0.stopping = true }
        wake()
    }

    /// Runs `body` on the link thread; `fallback` when the thread has already ended (libcapi20 is never
    /// called from anywhere else).
    func perform<T: Sendable>(fallback: T, _ body: @escaping @Sendable (inout ThreadState) -> T) async -> T {
        await withCheckedContinuation { (c: CheckedContinuation<T, Never>) in
            let queued = shared.withLock { s -> Bool in
                if s.threadDone { return false }
                s.jobs.append { state in c.resume(returning: body(&state)) }
                return true
            }
            if queued { wake() } else { c.resume(returning: fallback) }
        }
    }

    private func wake() {
        var one: UInt8 = 1
        _ = Glibc.write(wakeWrite, &one, 1)
    }

    // MARK: Link thread

    private func threadMain() {
        var state = ThreadState()
        while true {
            let (jobs, outbound, stopping) = shared.withLock { s in
                defer { s.jobs.removeAll(); s.outbound.removeAll() }
                return (s.jobs, s.outbound, s.stopping)
            }
            for job in jobs { job(&state) }
            var retrySoon = false
            if let appl = state.applID {
                for (index, message) in outbound.enumerated() {
                    // A DATA_B3_RESP for a buffer the library already took back (DISCONNECT_IND arrived first)
                    // must not reach it: libcapi20 asserts on a buffer returned twice and aborts the process.
                    guard state.lentBuffers.mayPut(message) else { continue }
                    let rc = put(appl, message)
                    if rc == 0 { continue }
                    if rc == 0x1103 {
                        // Queue full: keep this and the later messages, in order, and try again shortly —
                        // except a DATA_B3_RESP: libcapi20 has already handed its buffer back before the send
                        // failed, and returning it twice trips the library's assertion and kills the process.
                        let rest = message.isDataB3Response ? outbound[(index + 1)...] : outbound[index...]
                        shared.withLock { $0.outbound.insert(contentsOf: rest, at: 0) }
                        retrySoon = true
                    } else {
                        // A message that never left would leave a call waiting for its answer forever: treat the
                        // controller connection as gone, so every call in flight ends and we register again.
                        _ = capi20_release(appl)
                        state.applID = nil
                        continuation.yield(.linkLost(CapiInfo(UInt16(truncatingIfNeeded: rc))))
                    }
                    break
                }
            }
            if state.applID == nil { state.lentBuffers = LentBuffers() }
            if stopping { break }

            var fds = [pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
            if let appl = state.applID {
                let fd = capi20_fileno(appl)
                if fd >= 0 { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            }
            let n = poll(&fds, nfds_t(fds.count), retrySoon ? 10 : 1000)
            if n < 0 { if errno == EINTR { continue }; usleep(10_000); continue }
            if fds[0].revents != 0 {
                var drain = [UInt8](repeating: 0, count: 64)
                while Glibc.read(wakeRead, &drain, 64) > 0 {}
            }
            if fds.count > 1, fds[1].revents != 0, let appl = state.applID {
                receive(&state, appl)
            }
        }
        if let appl = state.applID { _ = capi20_release(appl); state.applID = nil }
        // Jobs queued while stopping still run here, so their callers are not left waiting.
        while true {
            let late = shared.withLock { s in
                defer { s.jobs.removeAll(); if s.jobs.isEmpty { s.threadDone = true } }
                return s.jobs
            }
            if late.isEmpty { break }
            for job in late { job(&state) }
            if let appl = state.applID { _ = capi20_release(appl); state.applID = nil }
        }
        close(wakeRead); close(wakeWrite)
        continuation.finish()
    }

    private func receive(_ state: inout ThreadState, _ appl: UInt32) {
        var buffer: UnsafeMutablePointer<UInt8>? = nil
        let rc = capi20_get_message(appl, &buffer)
        guard rc == 0, let buffer else {
            // The socket was readable but no message came: on the TCP modules that means the peer is gone,
            // and get_message would keep answering 0x1104 at once — release instead of spinning.
            _ = capi20_release(appl)
            state.applID = nil
            continuation.yield(.linkLost(CapiInfo(UInt16(truncatingIfNeeded: rc))))
            return
        }
        let length = Int(buffer[0]) | Int(buffer[1]) << 8
        var bytes = Array(UnsafeBufferPointer(start: buffer, count: max(length, 8)))
        if bytes[4] == CapiCommand.dataB3.rawValue && bytes[5] == CapiSubcommand.ind.rawValue && length >= 22 {
            let dataLength = Int(bytes[16]) | Int(bytes[17]) << 8
            var pointer: UInt = 0
            if length >= 30 {
                for i in 0..<8 { pointer |= UInt(bytes[22 + i]) << (8 * i) }
            } else {
                for i in 0..<4 { pointer |= UInt(bytes[12 + i]) << (8 * i) }
            }
            if let data = UnsafePointer<UInt8>(bitPattern: pointer), dataLength > 0 {
                bytes.append(contentsOf: UnsafeBufferPointer(start: data, count: dataLength))
            }
        }
        do {
            let message = try CapiMessage.decode(bytes)
            state.lentBuffers.received(message)
            continuation.yield(.message(message))
        } catch {
            // Undecodable input is a controller bug; dropping it keeps the link alive.
        }
    }

    /// libcapi20's SEND_BUFSIZ (capi20.h: 128 + 2048).
    static let sendBufferSize = 128 + 2048

    /// Hands one message to libcapi20; returns its info code (0 = accepted). Note that for DATA_B3_RESP the
    /// library returns the data buffer before it sends, whatever the outcome.
    private func put(_ appl: UInt32, _ message: CapiMessage) -> UInt32 {
        var m = message
        m.applID = UInt16(truncatingIfNeeded: appl)
        var bytes = m.encoded()
        // The fritzbox module copies SEND_BUFSIZ − 3 bytes from every message whatever its length (it sends only
        // the length): hand it a buffer that large, or it reads past the end of ours.
        if bytes.count < Self.sendBufferSize { bytes += [UInt8](repeating: 0, count: Self.sendBufferSize - bytes.count) }
        return bytes.withUnsafeMutableBytes { raw in
            let base = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            if case .dataB3Req = m.body {
                // libcapi20 reads the payload through the message's data pointer: point it behind the message.
                let pointer = UInt(bitPattern: base + CapiMessage.dataB3MessageLength)
                for i in 0..<8 { base[22 + i] = UInt8(truncatingIfNeeded: pointer >> (8 * i)) }
                if pointer <= UInt(UInt32.max) { for i in 0..<4 { base[12 + i] = UInt8(truncatingIfNeeded: pointer >> (8 * i)) } }
            }
            return UInt32(capi20_put_message(appl, base))
        }
    }

    private static func doRegister(_ state: inout ThreadState, config: CapiLinkConfiguration,
                                   maxLogicalConnection: ([Int: CapiProfile]) -> Int,
                                   maxBDataBlocks: Int, maxBDataLen: Int) -> Result<CapiRegistration, CapiLinkError> {
        if let appl = state.applID { _ = capi20_release(appl); state.applID = nil }
        configure(config)
        let installed = capi20_isinstalled()
        guard installed == 0 else {
            return .failure(CapiLinkError(info: CapiInfo(UInt16(truncatingIfNeeded: installed)),
                                          description: "CAPI not installed (\(config.driver) \(config.host):\(config.port)): \(CapiInfo(UInt16(truncatingIfNeeded: installed)))"))
        }
        var profiles: [Int: CapiProfile] = [:]
        var buf = [UInt8](repeating: 0, count: 64)
        if capi20_get_profile(0, &buf) == 0 {
            let count = Int(buf[0]) | Int(buf[1]) << 8
            for controller in 1...max(1, min(count, 16)) {
                buf = [UInt8](repeating: 0, count: 64)
                if capi20_get_profile(UInt32(controller), &buf) == 0, let p = try? CapiProfile.decode(buf) {
                    profiles[controller] = p
                }
            }
        }
        var appl: UInt32 = 0
        let rc = capi20_register(UInt32(maxLogicalConnection(profiles)), UInt32(maxBDataBlocks), UInt32(maxBDataLen), &appl)
        guard rc == 0, appl != 0, appl != UInt32.max else {
            let info = CapiInfo(UInt16(truncatingIfNeeded: rc == 0 ? 0x1009 : rc))
            return .failure(CapiLinkError(info: info, description: "CAPI_REGISTER failed: \(info)"))
        }
        state.applID = appl
        return .success(CapiRegistration(applID: UInt16(truncatingIfNeeded: appl), profiles: profiles))
    }

    /// Points libcapi20 at the controller. The config file in HOME wins over the ext API, so write both.
    private static func configure(_ config: CapiLinkConfiguration) {
        if let home = config.home {
            let rc = "REMOTE \(config.driver) \(config.host) \(config.port)\nTRACELEVEL \(config.traceLevel)\n"
            try? FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
            try? rc.write(toFile: home + "/.capi20rc", atomically: true, encoding: .utf8)
            setenv("HOME", home, 1)
        }
        // The library keeps these pointers; they must outlive the call.
        capi20ext_set_driver(strdup(config.driver))
        capi20ext_set_host(strdup(config.host))
        capi20ext_set_port(Int32(config.port))
        capi20ext_set_tracelevel(Int32(config.traceLevel))
    }
}

extension CapiMessage {
    var isDataB3Response: Bool {
        if case .dataB3Resp = body { return true }
        return false
    }
}

/// Mirrors libcapi20's receive-buffer bookkeeping so we never hand back a buffer it has already reclaimed.
///
/// The library lends one buffer per DATA_B3_IND and takes it back on our DATA_B3_RESP — or by itself when the
/// rcapi module *receives* DISCONNECT_IND for the PLCI, and when we *send* DISCONNECT_B3_RESP for the NCCI.
/// Our answers travel through an actor and lag behind the link thread, so a RESP can arrive after the
/// library's own cleanup; returning that buffer again trips `assert(buf->used == 1)` in capi20.c.
struct LentBuffers {
    private var lent: Set<UInt64> = []

    private static func key(_ ncci: UInt32, _ handle: UInt16) -> UInt64 { UInt64(ncci) << 16 | UInt64(handle) }

    mutating func received(_ message: CapiMessage) {
        switch message.body {
        case .dataB3Ind(let ncci, let handle, _, _):
            lent.insert(Self.key(ncci, handle))
        case .disconnectInd(let plci, _):
            lent = lent.filter { UInt32(truncatingIfNeeded: $0 >> 16) & 0xFFFF != plci & 0xFFFF }
        default:
            break
        }
    }

    /// False for a DATA_B3_RESP whose buffer the library no longer lends; records what a put returns.
    mutating func mayPut(_ message: CapiMessage) -> Bool {
        switch message.body {
        case .dataB3Resp(let ncci, let handle):
            return lent.remove(Self.key(ncci, handle)) != nil
        case .disconnectB3Resp(let ncci):
            lent = lent.filter { UInt32(truncatingIfNeeded: $0 >> 16) != ncci }
            return true
        default:
            return true
        }
    }
}
