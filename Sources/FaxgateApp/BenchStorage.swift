import ArgumentParser
import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import SQLiteStorage

/// `faxgate bench storage`: the send queue's claims with two claimers and the journal's page query on a large
/// journal, SQLite next to PostgreSQL. Figures are printed, never asserted.
extension Bench {
    struct StorageBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "storage",
            abstract: "Jobs claimed per second with two claimers, and journal page queries, SQLite vs PostgreSQL.")
        @Option(help: "Configuration whose storage.postgres names an EMPTY scratch database (the bench leaves its rows).")
        var config: String?
        @Option(help: "A local test cluster instead: 127.0.0.1:<port>, user postgres, no TLS; a database is created and dropped.")
        var pgPort: Int?
        @Option(help: "Queued jobs the claimers drain.") var jobs = 10_000
        @Option(help: "Calls in the journal.") var calls = 1_000_000
        @Option(help: "Runs of each journal query (the median is printed).") var repeats = 5

        func run() async throws {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("faxgate-bench-storage-\(getpid())").path
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: work) }
            var logger = Logger(label: "faxgate.bench.storage")
            logger.logLevel = .critical

            var scratch: String?
            let settings: PostgresConnectionSettings
            if let file = config {
                let c = try ConfigLoader.load(path: file)
                guard let pg = c.storage.postgres else { throw ValidationError("\(file): no storage.postgres") }
                settings = try PostgresConnectionSettings(pg)
            } else if let port = pgPort {
                let name = "faxgate_bench_\(getpid())"
                try Self.psql(port: port, "CREATE DATABASE \(name)")
                scratch = name
                settings = PostgresConnectionSettings(host: "127.0.0.1", port: port, database: name, user: "postgres", password: nil, tls: .disable)
            } else {
                throw ValidationError("give --config (a scratch database) or --pg-port (a local test cluster)")
            }
            defer { if let scratch, let port = pgPort { try? Self.psql(port: port, "DROP DATABASE \(scratch) WITH (FORCE)") } }

            let quiet = logger
            let make: @Sendable () -> PostgresStorage = {
                PostgresStorage(connection: settings, node: "bench", spoolDirectory: work, logger: quiet)
            }
            let pgA = make(), pgB = make()
            defer { pgA.close(); pgB.close() }
            try await pgA.migrate()
            guard try await pgA.benchIsEmpty() else { throw ValidationError("the PostgreSQL database is not empty; give a scratch database") }
            print("postgres: \(try await pgA.serverVersion().split(separator: ",").first ?? "?")")
            print("sqlite: \(SQLiteStorage.sqliteVersion)")

            // (a) claims
            let sff = work + "/bench.sff"
            try Data((0..<2048).map { UInt8($0 & 0xFF) }).write(to: URL(fileURLWithPath: sff))
            let sqlitePath = work + "/claims.sqlite"
            let sqA = try SQLiteStorage(path: sqlitePath)
            try await sqA.migrate()
            // SQLite is one node: its two claimers share one handle (one writer per database). Two handles on one
            // file ended in "database is locked" at 10,000 jobs despite the 10 s busy timeout.
            let sqB = sqA
            print("claims: \(jobs) queued jobs, 2 claimers (PostgreSQL: 2 handles; SQLite: 1 handle), one job per claim")
            print("backend    claimed  duplicates   jobs/s   p50 ms   p99 ms")
            for (label, a, b) in [("sqlite", sqA as any Storage, sqB as any Storage), ("postgres", pgA as any Storage, pgB as any Storage)] {
                try await Self.queue(a, jobs: jobs, sff: sff)
                let r = try await Self.drain(a, b)
                print(String(format: "%@ %10d %11d %8.1f %8.3f %8.3f", label.padding(toLength: 8, withPad: " ", startingAt: 0),
                             r.claimed, r.duplicates, Double(r.claimed) / r.seconds, r.p50 * 1000, r.p99 * 1000))
            }

            // (b) journal
            let journalPath = work + "/journal.sqlite"
            let sqJournal = try SQLiteStorage(path: journalPath)
            try await sqJournal.migrate()
            var fill = ContinuousClock.now
            try await BenchWebFixture.fill(sqJournal, database: journalPath, calls: calls, jobs: 1)
            let sqFill = GatewayMetrics.seconds(since: fill)
            fill = ContinuousClock.now
            var template = CallRecord(state: .mailed, startedAt: Date(), callingNumber: "301234567", calledNumber: "100", extensionName: "Empfang")
            template.pages = 2
            template = try await pgA.insertCall(template, event: "bench template")
            try await pgA.benchFillCalls(template: template.id!, count: calls)
            let pgFill = GatewayMetrics.seconds(since: fill)
            print(String(format: "journal: %d calls (filled in %.1f s on SQLite, %.1f s on PostgreSQL), median of %d runs", calls, sqFill, pgFill, repeats))
            print("backend  query                         ms     rows")
            for (label, s) in [("sqlite", sqJournal as any Storage), ("postgres", pgA as any Storage)] {
                let first = try await s.searchCalls(CallQuery(limit: 50))
                guard let newest = first.first?.id else { throw ValidationError("\(label): empty journal") }
                // A page 90 % down the list: the id of that call (copies are numbered in list order after the template).
                let deepID = newest + Int64(Double(calls) * 0.9)
                let queries: [(String, () async throws -> Int)] = [
                    ("searchCalls first page", { try await s.searchCalls(CallQuery(limit: 50)).count }),
                    ("searchCalls deep keyset page", { try await s.searchCalls(CallQuery(beforeID: deepID, limit: 50)).count }),
                    ("searchCalls fax, incoming", { try await s.searchCalls(CallQuery(direction: .incoming, kinds: [.fax], limit: 50)).count }),
                    ("countCalls", { try await s.countCalls(CallQuery(limit: 1)) }),
                ]
                for (name, q) in queries {
                    var times: [Double] = []
                    var rows = 0
                    for _ in 0..<max(1, repeats) {
                        let t = ContinuousClock.now
                        rows = try await q()
                        times.append(GatewayMetrics.seconds(since: t))
                    }
                    times.sort()
                    print(String(format: "%@ %@ %8.2f %8d", label.padding(toLength: 8, withPad: " ", startingAt: 0),
                                 name.padding(toLength: 28, withPad: " ", startingAt: 0), times[times.count / 2] * 1000, rows))
                }
            }
        }

        /// `count` ready jobs, each to its own number (one number is dialled by one node at a time).
        static func queue(_ s: any Storage, jobs count: Int, sff: String) async throws {
            let created = Date().addingTimeInterval(-60)
            var start = 0
            while start < count {
                let batch = (start..<min(count, start + 500)).map { i in
                    FaxJob(createdAt: created, intakeID: nil, sender: "bench@example.invalid", senderName: nil, extensionName: "Empfang",
                           language: "de", number: String(format: "+4930%08d", i), dialString: String(format: "030%08d", i),
                           subject: "bench", pages: 1, fine: false, sffPath: sff, requestMessageID: nil)
                }
                _ = try await s.insertJobs(batch, intake: nil, event: "bench")
                start += 500
            }
        }

        struct Drained { var claimed: Int; var duplicates: Int; var seconds: Double; var p50: Double; var p99: Double }

        /// Two claimers take one job per claim until the queue is empty; every claim's latency is kept.
        static func drain(_ a: any Storage, _ b: any Storage) async throws -> Drained {
            let start = ContinuousClock.now
            let results = try await withThrowingTaskGroup(of: ([Int64], [Double]).self) { group in
                for (i, s) in [a, b].enumerated() {
                    group.addTask {
                        var ids: [Int64] = [], latencies: [Double] = []
                        while true {
                            let t = ContinuousClock.now
                            let now = Date()
                            let got = try await s.claimJobs(node: "bench-\(i)", limit: 1, now: now, leaseUntil: now.addingTimeInterval(600))
                            latencies.append(GatewayMetrics.seconds(since: t))
                            if got.isEmpty { break }
                            ids += got.compactMap(\.id)
                        }
                        return (ids, latencies)
                    }
                }
                var all: [([Int64], [Double])] = []
                for try await r in group { all.append(r) }
                return all
            }
            let seconds = GatewayMetrics.seconds(since: start)
            let ids = results.flatMap(\.0)
            let latencies = results.flatMap(\.1).sorted()
            let p = { (q: Double) in latencies.isEmpty ? 0 : latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
            return Drained(claimed: ids.count, duplicates: ids.count - Set(ids).count, seconds: seconds, p50: p(0.5), p99: p(0.99))
        }

        /// The test cluster's superuser on loopback (trusted there), for creating and dropping the scratch database.
        static func psql(port: Int, _ sql: String) throws {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
            p.arguments = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-c", sql]
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw ValidationError("psql failed: \(sql)") }
        }
    }
}
