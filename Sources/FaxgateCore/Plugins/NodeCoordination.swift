import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// What several gateway nodes on one database need beyond rows: singletons that run on one node only and fail
/// over, fencing (a node that lost its database takes no new work), and a wake-up when new jobs are claimable.
///
/// A storage plugin that supports several nodes hands one out through `NodeCoordinationProviding`; without it the
/// gateway uses `LocalNodeCoordination` (one node: always leader, never fenced). `run()` keeps the coordination
/// alive (its connection, heartbeats, locks) until cancelled or gracefully shut down.
public protocol NodeCoordination: Service {
    /// This node's id.
    var node: String { get }
    /// Whether this node holds the singleton `name` right now. Asking registers interest: the implementation
    /// contends for it from then on (a node that never asks never leads).
    func isLeader(of name: String) -> Bool
    /// True while this node must take no new work: no claims, no incoming calls, no intake fetches.
    /// Starts true until the first contact with the database (fail closed).
    var isFenced: Bool { get }
    /// Yields once at once and then on every change of fencing or leadership (coalesced: read the properties).
    func stateChanges() -> AsyncStream<Void>
    /// Yields when another node (or this one) made jobs claimable, and after a reconnect (notifications sent
    /// while disconnected are lost). A hint only: the queue still polls.
    func jobWakeups() -> AsyncStream<Void>
}

/// The singletons of a gateway: one name each, the same on every node.
public enum NodeSingleton {
    public static let retention = "retention"
    public static let adminDigest = "admin-digest"
    public static let leaseExpiry = "lease-expiry"
}

/// A storage plugin that can coordinate several nodes on its database (a capability, so the core never names a plugin).
public protocol NodeCoordinationProviding {
    func nodeCoordination(node: String, settings: NodeSettings, logger: Logger) -> any NodeCoordination
}

extension NodeCoordination {
    /// Runs `body` only while this node leads `name`: waits for leadership, cancels `body` when it is lost (fencing
    /// drops every leadership), and starts it again when regained. Returns when the calling task is cancelled or
    /// the service group shuts down gracefully; an error thrown by `body` is logged and `body` restarts on the next
    /// change.
    public func runAsLeader(_ name: String, logger: Logger, _ body: @escaping @Sendable () async throws -> Void) async {
        _ = isLeader(of: name)  // registers interest
        let changes = stateChanges()
        // The stream ends when this task is cancelled; graceful shutdown cancels it too.
        try? await cancelWhenGracefulShutdown {
            var running: Task<Void, Never>?
            for await _ in changes {
                let lead = isLeader(of: name) && !isFenced
                if lead, running == nil {
                    logger.notice("this node now runs the singleton", metadata: ["singleton": "\(name)", "node": "\(node)"])
                    running = Task {
                        do { try await body() } catch is CancellationError {} catch {
                            logger.error("singleton failed: \(error)", metadata: ["singleton": "\(name)"])
                        }
                    }
                } else if !lead, let task = running {
                    logger.notice("singleton stopped: leadership lost", metadata: ["singleton": "\(name)", "node": "\(node)"])
                    task.cancel()
                    await task.value
                    running = nil
                }
            }
            if let task = running { task.cancel(); await task.value }
        }
    }
}

/// A `Service` that runs another only while this node leads `name` (retention, …).
public struct LeaderOnlyService: Service {
    let name: String
    let coordination: any NodeCoordination
    let base: any Service
    let logger: Logger

    public init(_ name: String, coordination: any NodeCoordination, base: any Service, logger: Logger) {
        self.name = name; self.coordination = coordination; self.base = base; self.logger = logger
    }

    public func run() async throws {
        let base = self.base
        await coordination.runAsLeader(name, logger: logger) { try await base.run() }
    }
}

/// Fan-out of "something happened" to every current subscriber; each subscriber keeps at most one pending signal.
public final class SignalBroadcaster: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<Void>.Continuation]>([:])
    public init() {}

    public func subscribe(initial: Bool) -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        continuation.onTermination = { [weak self] _ in _ = self?.subscribers.withLock { $0.removeValue(forKey: id) } }
        subscribers.withLock { $0[id] = continuation }
        if initial { continuation.yield() }
        return stream
    }

    public func signal() {
        for c in subscribers.withLock({ Array($0.values) }) { c.yield() }
    }

    public func finish() {
        for c in subscribers.withLock({ s in defer { s = [:] }; return Array(s.values) }) { c.finish() }
    }
}

/// One node alone on its database (SQLite): always leader, never fenced; wake-ups only from `signalJobs()`.
public final class LocalNodeCoordination: NodeCoordination {
    public let node: String
    private let wakeups = SignalBroadcaster()
    private let changes = SignalBroadcaster()

    public init(node: String) { self.node = node }

    public func isLeader(of name: String) -> Bool { true }
    public var isFenced: Bool { false }
    public func stateChanges() -> AsyncStream<Void> { changes.subscribe(initial: true) }
    public func jobWakeups() -> AsyncStream<Void> { wakeups.subscribe(initial: false) }
    /// Jobs became claimable on this node.
    public func signalJobs() { wakeups.signal() }

    public func run() async throws {
        // Nothing to keep alive; ends the streams at shutdown so their readers end too.
        try? await gracefulShutdown()
        changes.finish()
        wakeups.finish()
    }
}

/// Incoming calls while the node is fenced: refused as busy, so the caller's machine redials (and a PBX hunt group
/// moves on to the next line, perhaps another node's) instead of this node answering a call it cannot journal.
public struct FencedReceptionHandler: ReceptionHandler {
    let base: any ReceptionHandler
    let coordination: any NodeCoordination
    let logger: Logger

    public init(base: any ReceptionHandler, coordination: any NodeCoordination, logger: Logger) {
        self.base = base; self.coordination = coordination; self.logger = logger
    }

    public func decide(_ call: IncomingCall) async -> CallDecision {
        if coordination.isFenced {
            logger.warning("incoming call refused (busy): this node has lost its database", metadata: ["controller": "\(call.controller)"])
            return .reject(.busy)
        }
        return await base.decide(call)
    }
    public func faxConnected(receptionID: Int64, info: FaxSessionInfo) async { await base.faxConnected(receptionID: receptionID, info: info) }
    public func callEnded(receptionID: Int64, end: CallEnd) async { await base.callEnded(receptionID: receptionID, end: end) }
    public func voiceEnded(receptionID: Int64, end: VoiceCallEnd) async { await base.voiceEnded(receptionID: receptionID, end: end) }
    public func voiceSwitchedToFax(receptionID: Int64, spoolPath: String) async {
        await base.voiceSwitchedToFax(receptionID: receptionID, spoolPath: spoolPath)
    }
}
