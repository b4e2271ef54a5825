import CEtpan
import Foundation

/// The one thread that touches a connection's libetpan session. libetpan blocks in every call and a session
/// must not be used from two threads; the Swift concurrency pool (2 threads here) must never wait on a socket.
final class IMAPThread: @unchecked Sendable {
    /// The libetpan session. Read and written only by jobs running on the thread.
    var session: UnsafeMutablePointer<mailimap>?

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [() -> Void] = []
    private var stopped = false

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty { condition.unlock(); return }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Queues `job`; false once the thread has been told to stop.
    private func enqueue(_ job: @escaping () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        if stopped { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Runs `body` on the thread and returns its result to the awaiting task.
    func run<T: Sendable>(_ body: @escaping @Sendable (IMAPThread) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let accepted = enqueue { continuation.resume(with: Result { try body(self) }) }
            if !accepted { continuation.resume(throwing: IMAPError.closed) }
        }
    }

    /// Frees the session (on the thread) and lets the thread end after the jobs already queued.
    func shutdown() {
        _ = enqueue { [self] in
            if let s = session { mailimap_free(s) }
            session = nil
        }
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}

/// The items of a libetpan `clist`, typed.
func clistItems<T>(_ list: UnsafeMutablePointer<clist>?, as _: T.Type) -> [UnsafeMutablePointer<T>] {
    var items: [UnsafeMutablePointer<T>] = []
    var cell = list?.pointee.first
    while let c = cell {
        if let data = c.pointee.data { items.append(data.assumingMemoryBound(to: T.self)) }
        cell = c.pointee.next
    }
    return items
}
