import ArgumentParser
import FaxDocument
import Foundation
import SoftFax
#if canImport(Glibc)
import Glibc
#endif

/// `faxgate bench softfax`: what the software fax modem costs per channel, and how many channels a core carries.
///
/// Two spandsp endpoints run back to back in virtual time (SoftFax's harness: no line clock, no sockets), so a
/// session takes as long as its CPU work. CPU is the thread's own clock (CLOCK_THREAD_CPUTIME_ID), line time
/// is samples / 8000. A back-to-back pair is two engines, a sender and a receiver; one gateway channel runs one
/// of them, so a channel costs half of the pair. Figures are printed, never asserted.
extension Bench {
    struct SoftFaxBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "softfax",
            abstract: "Software fax CPU per channel (real-time factor) and channels per core, next to a PRI's 30 B-channels.")
        @Option(help: "Pages per fax (a text-heavy A4 document made with Ghostscript).") var pages = 2
        @Option(help: "Repetitions per modem / line coding.") var repeats = 3
        @Option(help: "Threads for the concurrent run (each owns its engines); 0 = one per core.") var threads = 0
        @Option(help: "Sessions each thread runs in the concurrent run.") var sessionsPerThread = 2

        func run() async throws {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("faxgate-bench-softfax-\(getpid())").path
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: work) }
            let sff = try BenchInput.makeSFF(in: work, pages: max(1, pages))
            let document = try SFFReader.read([UInt8](try Data(contentsOf: URL(fileURLWithPath: sff)))).pages
            let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
            print("document: \(document.count) A4 pages, \(document.first.map { $0.resolution == .fine ? "fine" : "normal" } ?? "-"), "
                  + "\(repeats) repetitions, \(cores) cores online")
            #if DEBUG
            // Swift's share (line coding, buffers) costs several times more unoptimized; spandsp's C does not change.
            print("build: debug — figures are pessimistic; a release build (swift build -c release) shows what a deployment gets")
            #endif
            print("RTF = CPU seconds per channel per second of line time (half of a back-to-back pair's thread CPU, line coding included);")
            print("engine = the same inside spandsp's engines only; channels/core = 1 / median RTF")
            print("session                     bit/s  line s  pages   RTF min  RTF median   RTF max  engine med  channels/core")

            var worst: (label: String, rtf: Double)?
            for scenario in SoftFaxBenchScenario.all {
                var rtfs: [Double] = [], engine: [Double] = []
                var last: SoftFaxBenchScenario.Session?
                for r in 0..<max(1, repeats) {
                    let s = try SoftFaxBenchScenario.session(scenario, document: document, work: "\(work)/\(scenario.slug)-\(r)")
                    guard s.pages == document.count else {
                        throw ValidationError("\(scenario.label): only \(s.pages) of \(document.count) pages went across (\(s.result))")
                    }
                    rtfs.append(s.cpuSeconds / 2 / s.lineSeconds)
                    engine.append(s.engineCPUSeconds / 2 / s.lineSeconds)
                    last = s
                }
                rtfs.sort(); engine.sort()
                let median = rtfs[rtfs.count / 2]
                print(String(format: "%@ %6d %7.1f %6d %9.5f %11.5f %9.5f %11.5f %14.0f",
                             scenario.label.padding(toLength: 26, withPad: " ", startingAt: 0), last?.bitRate ?? 0,
                             last?.lineSeconds ?? 0, last?.pages ?? 0, rtfs.first!, median, rtfs.last!, engine[engine.count / 2], 1 / median))
                if worst == nil || median > worst!.rtf { worst = (scenario.label, median) }
            }
            if let worst {
                let perCore = 1 / worst.rtf
                print(String(format: "one core carries %.0f channels at once in the costliest mode (%@)", perCore,
                             worst.label.trimmingCharacters(in: .whitespaces)))
                print(String(format: "PRI (30 B-channels): %.1f %% of one core; FRITZ!Box / BRI (2 B-channels): %.2f %% of one core",
                             30 / perCore * 100, 2 / perCore * 100))
            }

            // Several cores: each thread owns its engines from start to end (spandsp is not thread-safe).
            let threadCount = threads > 0 ? threads : max(1, cores)
            let concurrent = try SoftFaxBenchScenario.concurrent(threads: threadCount, sessionsPerThread: max(1, sessionsPerThread),
                                                                 document: document, work: work + "/concurrent")
            print(String(format: "concurrent: %d threads × %d sessions (V.17 ECM A-law): %.1f line s in %.3f s wall, CPU %.3f s",
                         threadCount, max(1, sessionsPerThread), concurrent.lineSeconds, concurrent.wallSeconds, concurrent.cpuSeconds))
            print(String(format: "channels carried at once on %d threads: %.0f (line-seconds per wall-second, 2 engines per pair)",
                         threadCount, concurrent.lineSeconds * 2 / concurrent.wallSeconds))
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            print(String(format: "peak RSS: %.1f MiB", Double(usage.ru_maxrss) / 1024))  // Linux reports KiB
        }
    }
}

/// One modem family and line coding, and the runs of the bench.
struct SoftFaxBenchScenario: Sendable {
    var label: String
    var slug: String
    var maxBitRate: Int
    var ecm: Bool
    var codec: BackToBackLine.Codec

    /// V.17 with ECM is the usual case; V.29 and V.27ter are what a retry or a bad line falls back to; A-law is what a
    /// B-channel carries (the codec is part of a channel's cost); V.17 without ECM is the retry after an ECM failure.
    static let all: [SoftFaxBenchScenario] = [
        .init(label: "V.17 14400 ECM linear", slug: "v17ecm-lin", maxBitRate: 14400, ecm: true, codec: .linear),
        .init(label: "V.17 14400 ECM A-law", slug: "v17ecm-alaw", maxBitRate: 14400, ecm: true, codec: .alaw),
        .init(label: "V.17 14400 A-law no ECM", slug: "v17-alaw", maxBitRate: 14400, ecm: false, codec: .alaw),
        .init(label: "V.29 9600 ECM linear", slug: "v29-lin", maxBitRate: 9600, ecm: true, codec: .linear),
        .init(label: "V.29 9600 ECM A-law", slug: "v29-alaw", maxBitRate: 9600, ecm: true, codec: .alaw),
        .init(label: "V.27ter 4800 ECM linear", slug: "v27-lin", maxBitRate: 4800, ecm: true, codec: .linear),
        .init(label: "V.27ter 4800 ECM A-law", slug: "v27-alaw", maxBitRate: 4800, ecm: true, codec: .alaw),
    ]

    struct Session {
        var lineSeconds: Double
        /// The whole back-to-back run on this thread: both engines, line coding, work files.
        var cpuSeconds: Double
        /// Inside the two engines only (the harness's own figure).
        var engineCPUSeconds: Double
        var pages: Int
        var bitRate: Int?
        var result: String
    }

    /// One fax from a sending to a receiving engine on this thread.
    static func session(_ s: SoftFaxBenchScenario, document: [FaxPage], work: String) throws -> Session {
        let modems = FaxModem.families(upTo: s.maxBitRate)
        let sender = FaxEngineOptions(calling: true, localIdent: "+49 30 1111", ecm: s.ecm, modems: modems)
        let receiver = FaxEngineOptions(calling: false, localIdent: "+49 30 2222", ecm: s.ecm, modems: modems)
        defer { try? FileManager.default.removeItem(atPath: work) }
        let start = threadCPU()
        let outcome = try BackToBack.run(pages: document, sender: sender, receiver: receiver, line: BackToBackLine(codec: s.codec),
                                         workDirectory: work)
        let cpu = threadCPU() - start
        return Session(lineSeconds: outcome.lineSeconds, cpuSeconds: cpu, engineCPUSeconds: outcome.engineCPUSeconds,
                       pages: outcome.receivedPages.count, bitRate: outcome.sender.bitRate,
                       result: "\(outcome.sender.kind): \(outcome.sender.text)")
    }

    struct Concurrent { var lineSeconds: Double; var wallSeconds: Double; var cpuSeconds: Double; var failures: [String] }

    /// `threads` threads, each running `sessionsPerThread` V.17 ECM A-law sessions one after another.
    static func concurrent(threads: Int, sessionsPerThread: Int, document: [FaxPage], work: String) throws -> Concurrent {
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        let scenario = all[1]
        let collected = Collected()
        let group = DispatchGroup()
        let cpuStart = processCPU()
        let wallStart = monotonic()
        for t in 0..<threads {
            group.enter()
            // A Thread, not a task: the engines stay on this OS thread from creation to end.
            let thread = Thread {
                defer { group.leave() }
                for i in 0..<sessionsPerThread {
                    do {
                        let s = try session(scenario, document: document, work: "\(work)/t\(t)-\(i)")
                        collected.add(line: s.lineSeconds, failure: s.pages == document.count ? nil : s.result)
                    } catch {
                        collected.add(line: 0, failure: "\(error)")
                    }
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        group.wait()
        let wall = monotonic() - wallStart
        let (line, failures) = collected.values
        if !failures.isEmpty { throw ValidationError("concurrent run: \(failures.count) sessions failed: \(failures.first!)") }
        return Concurrent(lineSeconds: line, wallSeconds: wall, cpuSeconds: processCPU() - cpuStart, failures: failures)
    }

    final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var line = 0.0
        private var failures: [String] = []
        func add(line l: Double, failure: String?) {
            lock.withLock { line += l; if let failure { failures.append(failure) } }
        }
        var values: (Double, [String]) { lock.withLock { (line, failures) } }
    }

    static func threadCPU() -> Double { clock(CLOCK_THREAD_CPUTIME_ID) }
    static func monotonic() -> Double { clock(CLOCK_MONOTONIC) }
    static func clock(_ id: clockid_t) -> Double {
        var ts = timespec()
        clock_gettime(id, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
    /// User + system CPU of the whole process (all threads).
    static func processCPU() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
}
