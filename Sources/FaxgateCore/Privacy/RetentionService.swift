import Foundation
import Logging
import ServiceLifecycle

/// Runs retention inside `serve`: once at start, then every `run_every_hours`. Errors are logged and the
/// next run tries again; a retention problem must never stop faxes from arriving.
public struct RetentionService: Service {
    let engine: RetentionEngine
    let interval: Duration
    let logger: Logger
    /// Retention days and legal holds edited on the web apply to the next run without a restart.
    let live: LiveConfiguration?

    public init(engine: RetentionEngine, interval: Duration, logger: Logger, live: LiveConfiguration? = nil) {
        self.engine = engine; self.interval = interval; self.logger = logger; self.live = live
    }

    /// The engine with the office part (days, configured holds) of the live configuration.
    var currentEngine: RetentionEngine {
        guard let config = live?.current else { return engine }
        var out = engine
        out.settings.days = config.retention.days
        out.configHolds = config.privacy.legalHolds.compactMap { SubjectID($0, countryCode: config.privacyCountryCode) }
        return out
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let report = try await currentEngine.run(dryRun: false)
                let deleted = report.lines.reduce(DeletionCounts()) { $0 + $1.deleted }
                for line in report.lines { GatewayMetrics.retentionDeleted(category: line.category, count: line.deleted.items) }
                logger.info("retention run finished", metadata: ["items": "\(deleted.items)", "files": "\(deleted.files)"])
            } catch {
                logger.error("retention run failed: \(error)")
            }
            // Sleeping through the interval, but woken by shutdown (cancelOnGracefulShutdown).
            do { try await cancelOnGracefulShutdown { try await Task.sleep(for: interval) } } catch { break }
        }
    }
}
