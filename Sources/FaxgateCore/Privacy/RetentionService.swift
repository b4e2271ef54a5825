import Foundation
import Logging
import ServiceLifecycle

/// Runs retention inside `serve`: once at start, then every `run_every_hours`. Errors are logged and the
/// next run tries again; a retention problem must never stop faxes from arriving.
public struct RetentionService: Service {
    let engine: RetentionEngine
    let interval: Duration
    let logger: Logger

    public init(engine: RetentionEngine, interval: Duration, logger: Logger) {
        self.engine = engine; self.interval = interval; self.logger = logger
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let report = try await engine.run(dryRun: false)
                let deleted = report.lines.reduce(DeletionCounts()) { $0 + $1.deleted }
                logger.info("retention run finished", metadata: ["items": "\(deleted.items)", "files": "\(deleted.files)"])
            } catch {
                logger.error("retention run failed: \(error)")
            }
            // Sleeping through the interval, but woken by shutdown (cancelOnGracefulShutdown).
            do { try await cancelOnGracefulShutdown { try await Task.sleep(for: interval) } } catch { break }
        }
    }
}
