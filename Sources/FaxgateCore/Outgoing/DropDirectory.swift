import Foundation
import Logging
import ServiceLifecycle

/// The CLI's way in: `faxgate send`, `cancel` and `resend` write a request file into `<spool>/drop/` and wait
/// for the daemon's answer file. The CLI never writes to the database (one writer, the daemon's).
///
/// A request is `<id>.json` (written last, atomically); its document files are `<id>.<n>` beside it.
/// The answer is `<id>.answer`, one line of text, then the request's files are removed.
public struct DropRequest: Codable, Sendable {
    public enum Command: String, Codable, Sendable { case send, cancel, resend }
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
    /// cancel / resend
    public var jobID: Int64?

    public struct DropFile: Codable, Sendable {
        public var name: String
        public var contentType: String
        public var stored: String
        public init(name: String, contentType: String, stored: String) { self.name = name; self.contentType = contentType; self.stored = stored }
    }

    public init(command: Command) { self.command = command }
}

public actor DropDirectoryIntake: Service {
    public nonisolated let directory: String
    private let storage: any Storage
    private let processor: SubmissionProcessor
    private let queue: SendQueue
    private let logger: Logger

    public init(directory: String, storage: any Storage, processor: SubmissionProcessor, queue: SendQueue, logger: Logger) throws {
        self.directory = directory; self.storage = storage; self.processor = processor; self.queue = queue; self.logger = logger
        // Group-writable so admins in the faxgate group can submit; the daemon owns what it reads.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o2770])
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await scan()
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    func scan() async {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        for name in names {
            let id = String(name.dropLast(5))
            let answer: String
            do {
                let data = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)"))
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                let request = try decoder.decode(DropRequest.self, from: data)
                answer = await handle(request, id: id)
            } catch {
                answer = "error: unreadable request: \(error)"
            }
            try? DurableFile.write(Array((answer + "\n").utf8), to: "\(directory)/\(id).answer", mode: 0o660)
            for file in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                where file.hasPrefix(id + ".") && !file.hasSuffix(".answer") {
                try? FileManager.default.removeItem(atPath: "\(directory)/\(file)")
            }
        }
    }

    func handle(_ request: DropRequest, id: String) async -> String {
        do {
            switch request.command {
            case .cancel:
                guard let job = request.jobID else { return "error: no job id" }
                return try await queue.cancel(jobID: job)
            case .resend:
                guard let job = request.jobID else { return "error: no job id" }
                return try await queue.resend(jobID: job)
            case .send:
                return try await submit(request, id: id)
            }
        } catch {
            return "error: \(error)"
        }
    }

    private func submit(_ request: DropRequest, id: String) async throws -> String {
        var attachments: [IncomingMail.Attachment] = []
        for file in request.files ?? [] {
            guard !file.stored.contains("/"), let data = FileManager.default.contents(atPath: "\(directory)/\(file.stored)") else {
                return "error: file \(file.name) missing from the request"
            }
            attachments.append(.init(filename: file.name, contentType: file.contentType, data: [UInt8](data)))
        }
        var headers: [(name: String, value: String)] = []
        if let r = request.resolution { headers.append(("X-Fax-Resolution", r)) }
        if let at = request.sendAt { headers.append(("X-Fax-Send-At", ISO8601DateFormatter().string(from: at))) }
        if let cover = request.cover { headers.append(("X-Fax-Cover", cover ? "yes" : "no")) }
        let mail = IncomingMail(fromAddress: request.notify ?? "", to: [], subject: request.subject ?? "", headers: headers,
                                attachments: attachments)
        // Keep the request for the record, as the IMAP intake keeps the raw mail.
        let raw = "\(directory)/../intake/drop-\(id).json"
        try FileManager.default.createDirectory(atPath: "\(directory)/../intake", withIntermediateDirectories: true)
        try? FileManager.default.copyItem(atPath: "\(directory)/\(id).json", toPath: raw)
        let (record, _) = try await storage.recordIntake(IntakeRecord(source: "drop", uidValidity: 0, uid: Int64(id.prefix { $0.isNumber }) ?? Int64.random(in: 1...Int64.max),
                                                                      messageID: "drop-\(id)", rawPath: raw))
        guard let extensionName = request.extensionName else { return "error: no extension given" }
        let result = try await processor.process(mail, intake: record,
                                                 local: .init(extensionName: extensionName, numbers: request.numbers ?? []))
        switch result.state {
        case .accepted:
            let jobs = try await storage.jobs(in: [.ready, .deferred]).filter { $0.intakeID == result.id }
            return "queued: " + jobs.map { "job #\($0.id ?? 0) to \($0.number) (\($0.pages) pages)" }.joined(separator: ", ")
        case .rejected: return "refused: \(result.detail ?? "")"
        default: return "not queued: \(result.detail ?? "")"
        }
    }
}
