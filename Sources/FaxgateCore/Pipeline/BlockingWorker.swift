import Foundation
import Synchronization

/// A dedicated thread for blocking C calls (libcurl). The Swift concurrency pool has only as many
/// threads as cores (2 here); a blocking SMTP dialogue must never sit on one of them.
public final class BlockingWorker: Sendable {
    private struct State { var jobs: [@Sendable () -> Void] = []; var stopped = false }
    private let state = Mutex(State())
    private let condition = NSCondition()

    public init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            var job: (@Sendable () -> Void)?
            while job == nil {
                let (next, stopped) = state.withLock { s -> ((@Sendable () -> Void)?, Bool) in
                    (s.jobs.isEmpty ? nil : s.jobs.removeFirst(), s.stopped)
                }
                if let next { job = next; break }
                if stopped { condition.unlock(); return }
                condition.wait()
            }
            condition.unlock()
            job?()
        }
    }

    /// Runs `body` on the worker thread and returns its result.
    public func run<T: Sendable, E: Error>(_ body: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            condition.lock()
            state.withLock { $0.jobs.append { continuation.resume(returning: Result { () throws(E) -> T in try body() }) } }
            condition.signal()
            condition.unlock()
        }
        return try result.get()
    }

    public func stop() {
        condition.lock()
        state.withLock { $0.stopped = true }
        condition.broadcast()
        condition.unlock()
    }
}

/// Lets a loop sleep until a deadline or until someone has new work for it, whichever comes first.
public final class Wakeup: Sendable {
    private let pending = Mutex<(signalled: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))
    public init() {}

    public func signal() {
        let waiter = pending.withLock { p -> CheckedContinuation<Void, Never>? in
            if let w = p.waiter { p.waiter = nil; return w }
            p.signalled = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns after `timeout`, on `signal()`, or on cancellation.
    public func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                        let resumeNow = pending.withLock { p -> Bool in
                            if p.signalled { p.signalled = false; return true }
                            p.waiter = c
                            return false
                        }
                        if resumeNow { c.resume() }
                    }
                } onCancel: { [self] in
                    signal()
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
        // Whichever side lost may have left a waiter or a flag; clear the flag only if we consumed nothing.
    }
}
