import CapiProtocol
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One accepted rcapi or fritzbox TCP connection (libcapi20 opens one for control requests and one per application).
final class RcapiConnection: Sendable {
    let id: Int
    let fd: Int32
    /// Framing of this connection (FritzboxWire.swift); everything above it is shared.
    let wire: CapiWire
    private let writeLock = Mutex(())
    private let closed = Atomic<Bool>(false)

    init(id: Int, fd: Int32, wire: CapiWire = .rcapi) { self.id = id; self.fd = fd; self.wire = wire }

    /// Writes one frame with a single send(): the client reads the length and then the rest in one go.
    @discardableResult
    func send(_ message: [UInt8]) -> Bool {
        sendRaw(wire.frame(message))
    }

    /// Writes bytes that are already framed (the fritzbox control replies have their own prefix).
    @discardableResult
    func sendRaw(_ frame: [UInt8]) -> Bool {
        writeLock.withLock { _ in
            var offset = 0
            while offset < frame.count {
                let n = frame[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
    }

    /// Reads one frame's content (without the length prefix); nil at EOF or error.
    func receiveFrame() -> [UInt8]? {
        guard let prefix = readExactly(wire.prefixLength), let length = wire.bodyLength(prefix: prefix) else { return nil }
        return readExactly(length)
    }

    private func readExactly(_ n: Int) -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: n)
        var got = 0
        while got < n {
            let r = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress! + got, n - got, 0) }
            if r < 0 && errno == EINTR { continue }
            if r <= 0 { return nil }
            got += r
        }
        // ACK at once: libcapi20 writes small messages without TCP_NODELAY, so a delayed ACK here would hold its
        // next message back by Nagle's algorithm (up to 40 ms) — a software fax line exchanges 100 a second.
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_QUICKACK, &one, socklen_t(MemoryLayout<Int32>.size))
        return buffer
    }

    /// Closes the socket once; the reader thread then sees EOF.
    func close() {
        if closed.exchange(true, ordering: .acquiringAndReleasing) { return }
        shutdown(fd, Int32(SHUT_RDWR))
    }

    var isClosed: Bool { closed.load(ordering: .acquiring) }

    deinit { Glibc.close(fd) }
}

/// TCP listener on 127.0.0.1 with an accept thread and a reader thread per connection.
final class RcapiServer: Sendable {
    private let listenFD: Int32
    let port: UInt16
    private let running = Atomic<Bool>(true)

    init(port requested: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SimulatorError.socket("socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        // libcapi20 keeps the port in a signed short, so pick ephemeral ports below 32768 ourselves.
        var candidates: [UInt16] = requested != 0 ? [requested] : (0..<200).map { _ in UInt16.random(in: 20000...32000) }
        var bound: UInt16? = nil
        while let p = candidates.first {
            candidates.removeFirst()
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = p.bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if rc == 0 { bound = p; break }
        }
        guard let bound, listen(fd, 16) == 0 else {
            Glibc.close(fd)
            throw SimulatorError.socket("cannot bind 127.0.0.1:\(requested): \(String(cString: strerror(errno)))")
        }
        listenFD = fd
        port = bound
    }

    /// Starts accepting; `onAccept` runs on the accept thread, `onFrame`/`onClose` on the connection's thread.
    func start(onAccept: @escaping @Sendable (Int32) -> RcapiConnection?,
               onFrame: @escaping @Sendable (RcapiConnection, [UInt8]) -> Void,
               onClose: @escaping @Sendable (RcapiConnection) -> Void) {
        let thread = Thread { [self] in
            while running.load(ordering: .acquiring) {
                var p = pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)
                // A bounded wait so stop() is noticed; idle cost is one wake-up per 200 ms.
                if poll(&p, 1, 200) <= 0 { continue }
                let client = accept(listenFD, nil, nil)
                if client < 0 { continue }
                _ = fcntl(client, F_SETFD, FD_CLOEXEC)
                var one: Int32 = 1
                setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                guard let connection = onAccept(client) else { continue }
                let reader = Thread {
                    while let frame = connection.receiveFrame() { onFrame(connection, frame) }
                    connection.close()
                    onClose(connection)
                }
                reader.name = "capisim-conn-\(connection.id)"
                reader.start()
            }
            Glibc.close(listenFD)
        }
        thread.name = "capisim-accept"
        thread.start()
    }

    func stop() { running.store(false, ordering: .releasing) }
}

public enum SimulatorError: Error, Sendable, CustomStringConvertible, Equatable {
    case socket(String)
    case notListening(controller: Int, cip: UInt16)
    case timeout(String)
    case connectionLost(String)
    case protocolViolation(String)
    public var description: String {
        switch self {
        case .socket(let s): "simulator socket error: \(s)"
        case .notListening(let c, let cip): "no application listens on controller \(c) for CIP \(cip)"
        case .timeout(let s): "timed out waiting for \(s)"
        case .connectionLost(let s): "gateway connection lost while waiting for \(s)"
        case .protocolViolation(let s): "protocol violation: \(s)"
        }
    }
}
