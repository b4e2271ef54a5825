import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import ServiceLifecycle

/// The CLI's way in: `faxgate send`, `cancel` and `resend` write a request file into `<spool>/drop/` and wait
/// for the daemon's answer file. The CLI never writes to the database (one writer, the daemon's).
///
/// A request is `<id>.json` (written last, atomically); its document files are `<id>.<n>` beside it.
/// The answer is `<id>.answer`, one line of text, then the request's files are removed.
public struct DropRequest: Codable, Sendable {
    public enum Command: String, Codable, Sendable { case send, cancel, resend, resolve }
    public var command: Command
    /// send
    public var numbers: [String]?
    public var extensionName: String?
    public var files: [DropFile]?
    public var subject: String?
    /// Status mails go here; nil = none.
    public var notify: String?
    public var resolution: String?
    public var sendAt: Date?
    public var cover: Bool?
    /// cancel / resend / resolve
    public var jobID: Int64?
    /// resolve: the decision on an uncertain job (`SendQueue.UncertainAction` raw value).
    public var action: String?

    public struct DropFile: Codable, Sendable {
        public var name: String
        public var contentType: String
        public var stored: String
        public init(name: String, contentType: String, stored: String) { self.name = name; self.contentType = contentType; self.stored = stored }
    }

    public init(command: Command) { self.command = command }
}

/// Reads the CLI's requests from `<spool>/drop/`.
///
/// Who submits: whoever can write into the directory (it is 2770, group-writable for the admins in the
/// daemon's group) and runs `faxgate send`/`cancel`/`resend`; the *submitting user* is the owner of the
/// request file `<id>.json`. Every file of a request is opened without following symbolic links (lstat,
/// then O_NOFOLLOW, then fstat of what was opened) and must be a regular file with one link, owned by that
/// same user: a symlink or hard link to a fax in the spool, to `/etc/shadow` or to another user's file is
/// refused and journaled (an intake row in state `rejected`), never read. Daily limits count per submitting
/// user (`DialRules.localLimitKey`).
public actor DropDirectoryIntake: Service {
    public nonisolated let directory: String
    private let storage: any Storage
    private let processor: SubmissionProcessor
    private let queue: SendQueue
    private let logger: Logger
    private let maxBytes: Int

    public init(directory: String, storage: any Storage, processor: SubmissionProcessor, queue: SendQueue, logger: Logger,
                maxBytes: Int = 25 * 1024 * 1024) throws {
        self.directory = directory; self.storage = storage; self.processor = processor; self.queue = queue; self.logger = logger
        self.maxBytes = maxBytes
        // Group-writable so admins in the faxgate group can submit; the daemon owns what it reads.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o2770])
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await scan()
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Why a file of a request was not read.
    public enum FileProblem: Error, Sendable, Equatable, CustomStringConvertible {
        case symbolicLink
        case notRegular
        case hardLinked
        case wrongOwner(owner: UInt32, expected: UInt32)
        case tooLarge(limit: Int)
        case unreadable(String)
        public var description: String {
            switch self {
            case .symbolicLink: return "is a symbolic link; it was not followed"
            case .notRegular: return "is not a regular file"
            case .hardLinked: return "has more than one link (a hard link to another file); it was not read"
            case .wrongOwner(let owner, let expected): return "belongs to uid \(owner), not to the submitting user (uid \(expected)); it was not read"
            case .tooLarge(let limit): return "is larger than \(limit) bytes"
            case .unreadable(let why): return "cannot be read: \(why)"
            }
        }
    }

    /// Reads a file of the drop directory without following a link: a regular file with one link, owned by
    /// `owner` (any owner when nil). Returns its bytes and its owner.
    public static func readOwnedFile(_ path: String, owner: UInt32?, maxBytes: Int) -> Result<(bytes: [UInt8], owner: UInt32), FileProblem> {
        var before = stat()
        guard lstat(path, &before) == 0 else { return .failure(.unreadable(String(cString: strerror(errno)))) }
        if (before.st_mode & S_IFMT) == S_IFLNK { return .failure(.symbolicLink) }
        guard (before.st_mode & S_IFMT) == S_IFREG else { return .failure(.notRegular) }
        // O_NOFOLLOW: a link swapped in after lstat fails with ELOOP; O_NONBLOCK: a FIFO swapped in cannot hang us.
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            return .failure(errno == ELOOP ? .symbolicLink : .unreadable(String(cString: strerror(errno))))
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(.unreadable(String(cString: strerror(errno)))) }
        guard (st.st_mode & S_IFMT) == S_IFREG, st.st_dev == before.st_dev, st.st_ino == before.st_ino else { return .failure(.notRegular) }
        guard st.st_nlink == 1 else { return .failure(.hardLinked) }
        if let owner, st.st_uid != owner { return .failure(.wrongOwner(owner: st.st_uid, expected: owner)) }
        guard st.st_size <= maxBytes else { return .failure(.tooLarge(limit: maxBytes)) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return .failure(.unreadable(String(cString: strerror(errno)))) }
            if n == 0 { break }
            bytes += chunk[0..<n]
            if bytes.count > maxBytes { return .failure(.tooLarge(limit: maxBytes)) }
        }
        return .success((bytes, st.st_uid))
    }

    func scan() async {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        for name in names {
            let id = String(name.dropLast(5))
            let answer: String
            switch Self.readOwnedFile("\(directory)/\(name)", owner: nil, maxBytes: 1024 * 1024) {
            case .failure(let problem):
                answer = await refuse(id: id, "the request \(name) \(problem)")
            case .success(let file):
                do {
                    let decoder = JSONDecoder()
                    decoder.dateDecodingStrategy = .iso8601
                    let request = try decoder.decode(DropRequest.self, from: Data(file.bytes))
                    answer = await handle(request, id: id, submitter: file.owner, raw: file.bytes)
                } catch {
                    answer = "error: unreadable request: \(error)"
                }
            }
            do {
                try DurableFile.write(Array((answer + "\n").utf8), to: "\(directory)/\(id).answer", mode: 0o660)
            } catch {
                logger.error("cannot write the answer to a drop request: \(error)", metadata: ["request": "\(id)"])
            }
            // unlink, never FileManager.removeItem: a link is removed itself, its target is never touched.
            for file in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                where file.hasPrefix(id + ".") && !file.hasSuffix(".answer") {
                if unlink("\(directory)/\(file)") != 0 && errno != ENOENT {
                    logger.error("cannot remove a drop file: \(String(cString: strerror(errno)))", metadata: ["request": "\(id)"])
                }
            }
        }
    }

    func handle(_ request: DropRequest, id: String, submitter: UInt32, raw: [UInt8]) async -> String {
        do {
            switch request.command {
            case .cancel:
                guard let job = request.jobID else { return "error: no job id" }
                return try await queue.cancel(jobID: job)
            case .resend:
                guard let job = request.jobID else { return "error: no job id" }
                return try await queue.resend(jobID: job)
            case .resolve:
                // An administrator's decision: root or the gateway's own account, not any user of the drop group.
                guard submitter == 0 || submitter == geteuid() else {
                    return "refused: only root or the gateway's account may resolve an uncertain job"
                }
                guard let job = request.jobID else { return "error: no job id" }
                guard let action = request.action.flatMap(SendQueue.UncertainAction.init(rawValue:)) else { return "error: no valid action" }
                return try await queue.resolve(jobID: job, action: action, by: "uid \(submitter) (faxgate queue resolve)")
            case .send:
                return try await submit(request, id: id, submitter: submitter, raw: raw)
            }
        } catch {
            return "error: \(error)"
        }
    }

    /// The ledger key of a drop request: stable for its id (a rescan after a crash finds the same row), 63 bits.
    static func ledgerUID(_ id: String) -> Int64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int64(hash >> 1)
    }

    /// A request refused before it reached the processor: journaled as a rejected intake, logged, answered.
    private func refuse(id: String, _ reason: String) async -> String {
        logger.warning("drop request refused: \(reason)", metadata: ["request": "\(id)"])
        do {
            let (record, isNew) = try await storage.recordIntake(IntakeRecord(source: "drop", uidValidity: 0, uid: Self.ledgerUID(id),
                                                                             messageID: "drop-\(id)", rawPath: ""))
            if isNew || record.state == .fetched {
                var rejected = record
                rejected.state = .rejected
                rejected.detail = reason
                try await storage.updateIntake(rejected)
            }
        } catch {
            logger.error("cannot journal a refused drop request: \(error)", metadata: ["request": "\(id)"])
        }
        return "refused: \(reason)"
    }

    private func submit(_ request: DropRequest, id: String, submitter: UInt32, raw rawRequest: [UInt8]) async throws -> String {
        var attachments: [IncomingMail.Attachment] = []
        var total = 0
        for file in request.files ?? [] {
            // Only this request's own files, beside it: "<id>.<n>".
            guard file.stored.hasPrefix(id + "."), !file.stored.contains("/"), file.stored != id + ".json", file.stored != id + ".answer" else {
                return await refuse(id: id, "the file \(file.name) is not part of the request")
            }
            switch Self.readOwnedFile("\(directory)/\(file.stored)", owner: submitter, maxBytes: maxBytes - total) {
            case .failure(.unreadable):
                return "error: file \(file.name) missing from the request"
            case .failure(let problem):
                return await refuse(id: id, "the file \(file.name) \(problem)")
            case .success(let read):
                total += read.bytes.count
                attachments.append(.init(filename: file.name, contentType: file.contentType, data: read.bytes))
            }
        }
        var headers: [(name: String, value: String)] = []
        if let r = request.resolution { headers.append(("X-Fax-Resolution", r)) }
        if let at = request.sendAt { headers.append(("X-Fax-Send-At", ISO8601DateFormatter().string(from: at))) }
        if let cover = request.cover { headers.append(("X-Fax-Cover", cover ? "yes" : "no")) }
        let mail = IncomingMail(fromAddress: request.notify ?? "", to: [], subject: request.subject ?? "", headers: headers,
                                attachments: attachments)
        // Keep the request for the record, as the IMAP intake keeps the raw mail: the bytes we read, not the path.
        let raw = "\(directory)/../intake/drop-\(id).json"
        try DurableFile.makeDirectory("\(directory)/../intake")  // 0700 whatever the umask
        try DurableFile.write(rawRequest, to: raw)
        let (record, _) = try await storage.recordIntake(IntakeRecord(source: "drop", uidValidity: 0, uid: Self.ledgerUID(id),
                                                                      messageID: "drop-\(id)", rawPath: raw))
        guard let extensionName = request.extensionName else { return "error: no extension given" }
        let result = try await processor.process(mail, intake: record,
                                                 local: .init(extensionName: extensionName, numbers: request.numbers ?? [],
                                                              submitterUID: submitter))
        GatewayMetrics.intakeDecided(result.state, source: .drop)
        switch result.state {
        case .accepted:
            let jobs = try await storage.jobs(in: [.ready, .deferred]).filter { $0.intakeID == result.id }
            return "queued: " + jobs.map { "job #\($0.id ?? 0) to \($0.number) (\($0.pages) pages)" }.joined(separator: ", ")
        case .rejected: return "refused: \(result.detail ?? "")"
        default: return "not queued: \(result.detail ?? "")"
        }
    }
}
