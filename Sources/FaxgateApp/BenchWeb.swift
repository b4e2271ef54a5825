import ArgumentParser
import FaxgateCore
import FaxgateWeb
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `faxgate bench web`: the admin journal page over HTTP with a big journal in storage.
///
/// Fills a temporary SQLite storage with `--calls` calls (and `--jobs` jobs), starts the web pages in this
/// process on a free loopback port, logs in an admin over HTTP (password, then the TOTP code computed here),
/// and measures GET /admin/journal (first page, and a filtered page) with a few keep-alive connections:
/// min / median / p99 latency and requests per second. /health/live, which touches no storage, is measured the
/// same way as the floor: what the HTTP stack alone costs. Figures are printed, never asserted.
extension Bench {
    struct WebBench: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "web", abstract: "Journal page render time and requests/s with many calls in storage.")
        @Option(help: "Calls to put into the journal.") var calls = 100_000
        @Option(help: "Outgoing jobs to put into the journal.") var jobs = 2_000
        @Option(help: "Requests per page.") var requests = 300
        @Option(help: "Concurrent keep-alive connections.") var connections = 4

        func run() async throws {
            let work = FileManager.default.temporaryDirectory.appendingPathComponent("faxgate-bench-web-\(getpid())").path
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: work) }
            var logger = Logger(label: "faxgate.bench")
            logger.logLevel = .critical  // the server's cancellation at the end is no news

            let port = try BenchHTTP.freePort()
            let configPath = work + "/faxgate.yaml"
            try BenchWebFixture.config(spool: work + "/spool", port: port).write(toFile: configPath, atomically: true, encoding: .utf8)
            let config = try ConfigLoader.load(path: configPath)
            try FileManager.default.createDirectory(atPath: config.spoolDirectory, withIntermediateDirectories: true)
            let storage = try PluginRegistry.storage(config)
            try await storage.migrate()

            let fillStart = ContinuousClock.now
            try await BenchWebFixture.fill(storage, database: config.spoolDirectory + "/faxgate.sqlite", calls: calls, jobs: jobs)
            let fillSeconds = GatewayMetrics.seconds(since: fillStart)
            let password = "bench-" + UUID().uuidString
            let secret = SecondFactor.newSecret()
            _ = try await storage.insertUser(WebUser(name: "benchadmin", role: .admin, extensions: [], passwordHash: try await Passwords.hash(password),
                                                     mustChangePassword: false, totpSecret: secret))
            let counted = try await storage.countCalls(CallQuery(limit: 1))
            print("storage: \(counted) calls, \(jobs) jobs in SQLite (filled in \(String(format: "%.1f", fillSeconds)) s)")

            let live = LiveConfiguration(config)
            let current: @Sendable () -> Configuration = { live.current }
            let environment = WebEnvironment(
                storage: storage, configuration: current, jobs: BenchNoJobs(),
                office: WebOfficeSettingsOperations(store: try OfficeSettingsStore(storage: storage, file: configPath), live: live, logger: logger),
                privacy: WebPrivacyOperations(configuration: current, configPath: configPath, storage: storage, logger: logger),
                status: BenchNoStatus(), logger: logger)
            let app = try WebServer(environment: environment, settings: config.web).application()
            let server = Task { try await app.runService(gracefulShutdownSignals: []) }
            defer { server.cancel() }
            try BenchHTTP.waitForPort(port, timeout: 20)

            // Log in as a browser would: the pre-session CSRF cookie, password, then the second factor.
            let session = try BenchHTTP.login(port: port, name: "benchadmin", password: password, secret: secret)
            let pages: [(label: String, path: String, cookie: String?)] = [
                ("/admin/journal (first page)", "/admin/journal", session),
                ("/admin/journal?dir=in&kind=fax&q=555", "/admin/journal?dir=in&kind=fax&q=555", session),
                ("/health/live (floor: HTTP only)", "/health/live", nil),
            ]
            print("\(requests) requests per page over \(connections) keep-alive connections, loopback")
            print("page                                      min ms  median ms   p99 ms    req/s   bytes")
            for page in pages {
                let r = try BenchHTTP.measure(port: port, path: page.path, cookie: page.cookie, requests: requests, connections: connections)
                print(String(format: "%@ %8.2f %10.2f %8.2f %8.1f %7d", page.label.padding(toLength: 40, withPad: " ", startingAt: 0),
                             r.min * 1000, r.median * 1000, r.p99 * 1000, r.perSecond, r.bytes))
            }
        }
    }
}

/// The temporary installation the bench measures.
enum BenchWebFixture {
    static func config(spool: String, port: Int) -> String {
        """
        spool_directory: \(spool)
        hostname: bench.invalid
        capi: {driver: rcapi, host: 127.0.0.1, port: 9}
        smtp: {host: 127.0.0.1, port: 9, security: none}
        mail: {from: "Faxgate <fax@bench.invalid>"}
        web: {listen: "127.0.0.1:\(port)", min_free_disk_mb: 0}
        extensions:
          - name: Empfang
            numbers: ["100", "120-129"]
            email: [empfang@bench.invalid]
          - name: Labor
            numbers: ["200"]
            email: [labor@bench.invalid]
        """
    }

    /// One call and one job through the storage plugin (every column as the gateway writes it), then copied by
    /// SQL (sqlite3) into `calls`/`jobs` rows with varied times, numbers, kinds and outcomes: inserting 100,000
    /// rows one commit each (synchronous=FULL) would take the bench longer than the measurement.
    static func fill(_ storage: any Storage, database: String, calls: Int, jobs: Int) async throws {
        var call = CallRecord(state: .mailed, startedAt: Date(), callingNumber: "301112223", calledNumber: "100", extensionName: "Empfang")
        call.outcome = .complete
        call.endedAt = Date().addingTimeInterval(60)
        call.pages = 3
        call.bitRate = 14400
        call.fine = true
        call.remoteStationID = "+49 30 1112223"
        call.reason = 0x3400
        call.reasonB3 = 0
        call.reasonText = "normal end"
        call.callingNumberType = .national
        call.endCause = .cleared
        let template = try await storage.insertCall(call, event: "bench template")
        let job = FaxJob(state: .done, intakeID: nil, sender: "alice@bench.invalid", senderName: "Alice", extensionName: "Empfang",
                         language: "de", number: "+49301234567", dialString: "0301234567", subject: "Bench", pages: 2, fine: true,
                         sffPath: "/nonexistent.sff", requestMessageID: nil)
        let jobTemplate = try await storage.insertJobs([job], intake: nil, event: "bench template")[0]

        func columns(_ table: String) throws -> [String] {
            try sqlite3(database, "SELECT name FROM pragma_table_info('\(table)');")
                .split(separator: "\n").map(String.init).filter { $0 != "id" }
        }
        // Each copy 3 minutes older than the one before: 100,000 calls span about seven months.
        let minutes = { (column: String) in "strftime('%Y-%m-%d %H:%M:%f', t.\(column), '-' || (n.i * 3) || ' minutes')" }
        let callOverrides: [String: String] = [
            "startedAt": minutes("startedAt"), "endedAt": minutes("endedAt"),
            "kind": "CASE WHEN n.i % 10 = 0 THEN 'voice' ELSE t.kind END",
            "outcome": "CASE WHEN n.i % 40 = 0 THEN 'partial' WHEN n.i % 97 = 0 THEN 'failed' ELSE t.outcome END",
            "callingNumber": "printf('30%07d', (n.i * 7919) % 10000000)",
            "calledNumber": "CASE WHEN n.i % 5 = 0 THEN '200' ELSE t.calledNumber END",
            "extensionName": "CASE WHEN n.i % 5 = 0 THEN 'Labor' ELSE t.extensionName END",
            "pages": "1 + n.i % 6", "spoolPath": "NULL", "mailMessageID": "NULL",
        ]
        let jobOverrides: [String: String] = [
            "createdAt": minutes("createdAt"), "sendAt": minutes("sendAt"),
            "nextAttemptAt": minutes("nextAttemptAt"),
            "number": "printf('+4930%07d', (n.i * 104729) % 10000000)", "dialString": "printf('030%07d', (n.i * 104729) % 10000000)",
            "state": "CASE WHEN n.i % 25 = 0 THEN 'failed' ELSE t.state END", "requestMessageID": "NULL", "intakeID": "NULL",
        ]
        func copy(_ table: String, id: Int64, count: Int, overrides: [String: String]) throws -> String {
            let cols = try columns(table)
            let exprs = cols.map { overrides[$0] ?? "t.\($0)" }
            return """
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(count))
            INSERT INTO "\(table)" (\(cols.map { "\"\($0)\"" }.joined(separator: ", ")))
            SELECT \(exprs.joined(separator: ", ")) FROM "\(table)" AS t, n WHERE t.id = \(id);
            """
        }
        let sql = ".timeout 10000\nBEGIN;\n"
            + (calls > 1 ? try copy("call", id: template.id!, count: calls - 1, overrides: callOverrides) : "") + "\n"
            + (jobs > 1 ? try copy("job", id: jobTemplate.id!, count: jobs - 1, overrides: jobOverrides) : "") + "\nCOMMIT;\n"
        _ = try sqlite3(database, sql)
    }

    /// Runs Debian's sqlite3 shell on `database` with `script` on stdin; its output.
    static func sqlite3(_ database: String, _ script: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        p.arguments = ["-batch", database]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        p.standardInput = input; p.standardOutput = output; p.standardError = errors
        try p.run()
        input.fileHandleForWriting.write(Data(script.utf8))
        try input.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0, err.isEmpty else {
            throw BenchHTTP.Failure(description: "sqlite3 failed: \(String(decoding: err, as: UTF8.self))")
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The bench serves pages that read storage only; the gateway's running parts are not there.
struct BenchNoJobs: JobOperations {
    struct NotRunning: Error, CustomStringConvertible { var description = "not available in the bench" }
    func cancel(jobID: Int64, by actor: WebActor) async throws -> JobCancelResult { throw NotRunning() }
    func resend(jobID: Int64, by actor: WebActor) async throws -> JobResendResult { throw NotRunning() }
    func checkNumber(_ written: String, extensionName: String, by actor: WebActor) async throws -> (any LocalizedReason)? { throw NotRunning() }
    func submit(_ submission: WebFaxSubmission, by actor: WebActor) async throws -> WebSubmitResult { throw NotRunning() }
    func submission(id: Int64) async throws -> WebSubmissionStatus? { nil }
}

struct BenchNoStatus: StatusOperations {
    func dashboard() async -> DashboardStatus {
        DashboardStatus(takenAt: Date(), transport: TransportSnapshot(name: "bench", registered: false), queue: [], callsToday: CallsToday(),
                        lastErrors: [], disk: DiskStatus(path: "-", spoolBytes: nil, freeBytes: 0, totalBytes: 0, minFreeBytes: 0), intake: [],
                        outbox: OutboxBacklog(count: 0, oldestQueuedAt: nil, failingSince: nil, lastError: nil, failed: 0, retryBudget: 0))
    }
    func readiness() async -> Readiness { Readiness(checks: [.init(name: "capi", ok: false, reason: "no line in the bench")]) }
    func refreshGauges() async {}
}

/// A small blocking HTTP/1.1 client over one keep-alive socket per connection: measures the server, not a client
/// library (Content-Length and chunked bodies; enough for our own pages).
final class BenchHTTP {
    struct Response { var status: Int; var headers: [(String, String)]; var body: [UInt8] }
    struct Failure: Error, CustomStringConvertible { var description: String }

    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0 else { close(fd); throw Failure(description: "connect to 127.0.0.1:\(port): errno \(errno)") }
    }
    deinit { close(fd) }

    func request(_ method: String, _ path: String, cookie: String? = nil, form: String? = nil) throws -> Response {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: faxgate-bench\r\nAccept-Language: en\r\n"
        if let cookie { head += "Cookie: \(cookie)\r\n" }
        if let form { head += "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: \(form.utf8.count)\r\n" }
        let bytes = Array((head + "\r\n" + (form ?? "")).utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw Failure(description: "write: errno \(errno)") }
            sent += n
        }
        let headerEnd = try readUntil([13, 10, 13, 10])
        let headerText = String(decoding: buffer[..<headerEnd], as: UTF8.self)
        buffer.removeFirst(headerEnd + 4)
        var lines = headerText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw Failure(description: "bad status line") }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body: [UInt8] = []
        if let length = headers.first(where: { $0.0 == "content-length" }).flatMap({ Int($0.1) }) {
            try fill(length)
            body = Array(buffer[..<length]); buffer.removeFirst(length)
        } else if headers.contains(where: { $0.0 == "transfer-encoding" && $0.1.lowercased().contains("chunked") }) {
            while true {
                let end = try readUntil([13, 10])
                let size = Int(String(decoding: buffer[..<end], as: UTF8.self).split(separator: ";")[0], radix: 16) ?? 0
                buffer.removeFirst(end + 2)
                try fill(size + 2)
                body += buffer[..<size]; buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        }
        return Response(status: status, headers: headers, body: body)
    }

    private func readMore() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { throw Failure(description: "connection closed by the server") }
        buffer += chunk[..<n]
    }
    private func fill(_ count: Int) throws { while buffer.count < count { try readMore() } }
    private func readUntil(_ marker: [UInt8]) throws -> Int {
        var from = 0
        while true {
            if buffer.count >= marker.count {
                for i in from...(buffer.count - marker.count) where buffer[i..<(i + marker.count)].elementsEqual(marker) { return i }
                from = buffer.count - marker.count + 1
            }
            try readMore()
        }
    }

    static func cookies(_ response: Response) -> [String: String] {
        var out: [String: String] = [:]
        for (name, value) in response.headers where name == "set-cookie" {
            let pair = value.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
            if pair.count == 2 { out[String(pair[0])] = String(pair[1]) }
        }
        return out
    }

    static func formValue(_ html: [UInt8], name: String) -> String? {
        let text = String(decoding: html, as: UTF8.self)
        guard let at = text.range(of: "name=\"\(name)\" value=\"") else { return nil }
        return String(text[at.upperBound...].prefix { $0 != "\"" })
    }

    static func urlEncoded(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }

    /// Password and TOTP over HTTP as a browser does; returns the session cookie header.
    static func login(port: Int, name: String, password: String, secret: [UInt8]) throws -> String {
        let c = try BenchHTTP(port: port)
        let form = try c.request("GET", "/login")
        guard let pre = cookies(form)["fg_pre"] else { throw Failure(description: "GET /login set no pre-session cookie (status \(form.status))") }
        let afterPassword = try c.request("POST", "/login", cookie: "fg_pre=\(pre)",
                                          form: urlEncoded([("name", name), ("password", password), ("csrf", pre)]))
        guard let session = cookies(afterPassword)["fg_session"] else {
            throw Failure(description: "password login failed (status \(afterPassword.status))")
        }
        let cookie = "fg_pre=\(pre); fg_session=\(session)"
        let totpForm = try c.request("GET", "/login/totp", cookie: cookie)
        guard let csrf = formValue(totpForm.body, name: "csrf") else { throw Failure(description: "no CSRF token on /login/totp (status \(totpForm.status))") }
        let code = SecondFactor.code(secret: secret, counter: SecondFactor.counter())  // HummingbirdOTP's TOTP, in-process
        let done = try c.request("POST", "/login/totp", cookie: cookie, form: urlEncoded([("code", code), ("csrf", csrf)]))
        let final = cookies(done)["fg_session"] ?? session
        let check = try c.request("GET", "/admin/journal", cookie: "fg_session=\(final)")
        guard check.status == 200 else { throw Failure(description: "GET /admin/journal after login answered \(check.status)") }
        return "fg_session=\(final)"
    }

    struct Figures { var min: Double; var median: Double; var p99: Double; var perSecond: Double; var bytes: Int }

    /// `requests` GETs of `path` spread over `connections` threads, each with its own keep-alive socket.
    static func measure(port: Int, path: String, cookie: String?, requests: Int, connections: Int) throws -> Figures {
        let perConnection = max(1, requests / max(1, connections))
        // Warm-up (templates, statement caches) outside the figures.
        let warm = try BenchHTTP(port: port)
        for _ in 0..<5 { guard try warm.request("GET", path, cookie: cookie).status == 200 else { throw Failure(description: "\(path) is not 200") } }
        /// What the threads report, under its lock.
        final class Collected: @unchecked Sendable {
            let lock = NSLock()
            var latencies: [Double] = []
            var failure: (any Error)?
            var bytes = 0
            func add(_ mine: [Double], bytes: Int) { lock.lock(); latencies += mine; self.bytes = bytes; lock.unlock() }
            func fail(_ error: any Error) { lock.lock(); failure = error; lock.unlock() }
        }
        let collected = Collected()
        let group = DispatchGroup()
        let start = ContinuousClock.now
        for _ in 0..<max(1, connections) {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                do {
                    let c = try BenchHTTP(port: port)
                    var mine: [Double] = []
                    var size = 0
                    for _ in 0..<perConnection {
                        let t0 = ContinuousClock.now
                        let r = try c.request("GET", path, cookie: cookie)
                        mine.append(GatewayMetrics.seconds(since: t0))
                        guard r.status == 200 else { throw Failure(description: "\(path) answered \(r.status)") }
                        size = r.body.count
                    }
                    collected.add(mine, bytes: size)
                } catch {
                    collected.fail(error)
                }
            }
            thread.start()
        }
        group.wait()
        let wall = GatewayMetrics.seconds(since: start)
        if let failure = collected.failure { throw failure }
        var latencies = collected.latencies
        let bytes = collected.bytes
        latencies.sort()
        let p = { (q: Double) in latencies[min(latencies.count - 1, Int((Double(latencies.count) * q).rounded(.up)) - 1)] }
        return Figures(min: latencies[0], median: p(0.5), p99: p(0.99), perSecond: Double(latencies.count) / wall, bytes: bytes)
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        guard bound == 0 else { throw Failure(description: "bind: errno \(errno)") }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    static func waitForPort(_ port: Int, timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? BenchHTTP(port: port)) != nil { return }
            usleep(50_000)
        }
        throw Failure(description: "the web server did not listen on 127.0.0.1:\(port)")
    }
}
