import FaxgateCore
import FaxgateWeb
import Foundation
import Logging
import MailOut
import ServiceLifecycle

/// Assembles the running gateway from a configuration: storage, outbox, reception pipeline, transport —
/// one ServiceGroup in dependency order, so SIGTERM stops the transport first (it finishes or parks the
/// calls in flight), then the pipeline, then the outbox.
struct Gateway {
    let config: Configuration
    let logger: Logger
    /// The configuration file, for the office settings the web edits (nil: office settings are not editable).
    var configPath: String? = nil

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)  // curl and libcapi20 write to sockets a peer may have closed
        if geteuid() == 0 {
            logger.warning("running as root; the systemd unit in contrib/ runs faxgate as an unprivileged user")
        }
        Self.logRenderSandbox(config, logger: logger)
        try FileManager.default.createDirectory(atPath: config.spoolDirectory, withIntermediateDirectories: true)
        let storage = try PluginRegistry.storage(config)
        try await storage.migrate()
        // Several nodes on one database (a storage plugin that can coordinate them): singletons on the leader only,
        // no new work while fenced, wake-ups from other nodes. Alone: always leader, never fenced.
        let provided = (storage as? any NodeCoordinationProviding)?
            .nodeCoordination(node: config.node.effectiveID, settings: config.node, logger: logger.with(label: "node"))
        let coordination: any NodeCoordination = provided ?? LocalNodeCoordination(node: config.node.effectiveID)
        // File infrastructure + office settings, read per call/mail by the components below: web edits apply
        // without a restart (README "Settings: file and web").
        let live = LiveConfiguration(config)

        let smtp = try Self.smtpSettings(config)
        let smtpSender = SMTPMailSender(settings: smtp)
        let outboxSettings = Outbox.Settings(
            retryInitial: .seconds(config.smtp.retryInitialSeconds), retryMax: .seconds(config.smtp.retryMaxSeconds),
            giveUpAfter: .seconds(config.smtp.giveUpAfterHours * 3600))
        // A storage shared by several nodes keeps the outbox too: every mail goes out once, whichever node queued
        // it, and a dead node's mails are sent by another after its claim (10 min: longer than any SMTP dialogue).
        let outbox: Outbox
        if let shared = storage as? any SharedOutboxStorage {
            outbox = Outbox(store: shared.sharedOutboxStore(lease: .seconds(600), logger: logger.with(label: "outbox")),
                            directory: config.spoolDirectory + "/outbox", sender: smtpSender, settings: outboxSettings,
                            logger: logger.with(label: "outbox"))
        } else {
            outbox = try Outbox(directory: config.spoolDirectory + "/outbox", sender: smtpSender, settings: outboxSettings,
                                logger: logger.with(label: "outbox"))
        }

        guard let from = MailboxSyntax.address(in: config.mail.from) else { throw ValidationFailure("mail.from is not an address") }
        let hostname = config.hostname ?? ProcessInfo.processInfo.hostName
        var receptionSettings = ReceptionPipeline.Settings(
            spoolDirectory: config.spoolDirectory, from: MailAddress(from.address, displayName: from.name),
            envelopeFrom: config.mail.envelopeFrom ?? from.address, hostname: hostname,
            answerAudioAsFax: config.capi.answerAudioAsFax, line: config.outgoing.line)
        receptionSettings.receptionLimits = config.reception.limits
        receptionSettings.rejectUnknownNumbers = config.reception.rejectsUnknownNumbers
        let pipeline = try ReceptionPipeline(
            settings: receptionSettings,
            directory: ExtensionDirectory(config), storage: storage, outbox: outbox, logger: logger.with(label: "reception"), live: live)
        let resultLogger = logger.with(label: "outbox")
        await outbox.setResultHandler { envelope, delivered, detail in
            if let call = envelope.callID { await pipeline.mailResult(callID: call, delivered: delivered, detail: detail) }
            // A status mail's fate goes into its job's history, where `faxgate show`/`queue` users look.
            if let jobID = envelope.jobID {
                do {
                    if let job = try await storage.job(id: jobID) {
                        try await storage.updateJob(job, expecting: job.state, event: delivered
                            ? "status mail accepted by the SMTP server" : "status mail undeliverable (outbox/failed/\(envelope.id)): \(detail)")
                    }
                } catch {
                    resultLogger.error("cannot record the status mail result in the job's history: \(error)", metadata: ["job": "\(jobID)"])
                }
            }
        }
        let transport = PluginRegistry.transport(
            config, handler: FencedReceptionHandler(base: pipeline, coordination: coordination, logger: logger.with(label: "reception")), logger: logger.with(label: "capi"))

        // Mail → fax: the queue dials; intakes (IMAP mailboxes, the CLI's drop directory) feed the processor.
        let sender = MailAddress(from.address, displayName: from.name)
        let queue = SendQueue(
            settings: .init(
                from: sender, hostname: hostname, retry: config.outgoing.retry, notifyEachRetry: config.outgoing.notifyEachRetry,
                callingNumbers: Dictionary(uniqueKeysWithValues: config.extensions.map {
                    ($0.name, (number: $0.senders.callingNumber ?? $0.numbers.first.flatMap { NumberPattern($0)?.low }, hide: $0.senders.hideCallingNumber))
                }),
                stationIDs: Dictionary(uniqueKeysWithValues: config.extensions.map { ($0.name, (id: $0.stationID ?? "", headline: $0.headline ?? "")) }),
                rules: DialRules(config)).withNodeSettings(of: config),
            storage: storage, transport: transport, outbox: outbox, logger: logger.with(label: "queue"), live: live,
            pausedReason: { coordination.isFenced ? "this node is fenced: its database connection is lost" : nil },
            sweepsForOthers: { coordination.isLeader(of: NodeSingleton.leaseExpiry) })
        let processor = try SubmissionProcessor(
            settings: .init(spoolDirectory: config.spoolDirectory, from: sender, hostname: hostname), config: config,
            storage: storage, outbox: outbox, logger: logger.with(label: "submission"), live: live, jobsAdded: { queue.wake() })
        await processor.setDigestGate { coordination.isLeader(of: NodeSingleton.adminDigest) }
        // Shared database: refusals another node recorded reach the admin through the leader's periodic digest.
        let digest: [any Service] = provided == nil ? [] : [LeaderOnlyService(
            NodeSingleton.adminDigest, coordination: coordination,
            base: PeriodicDigest(processor: processor, every: .seconds(max(1, config.outgoing.replies.adminDigestMinutes) * 60),
                                 logger: logger.with(label: "submission")),
            logger: logger.with(label: "submission"))]
        let drop = try DropDirectoryIntake(directory: config.spoolDirectory + "/drop", storage: storage, processor: processor,
                                           queue: queue, logger: logger.with(label: "drop"))
        let intakes = try PluginRegistry.mailIntakes(config, storage: storage, processor: processor, logger: logger.with(label: "intake"))

        let retention = try await PrivacyAssembly.retentionService(config, storage: storage, logger: logger.with(label: "retention"), live: live)
            .map { LeaderOnlyService(NodeSingleton.retention, coordination: coordination, base: $0, logger: logger.with(label: "retention")) }
        let web = try webServices(storage: storage, live: live, pipeline: pipeline, queue: queue, processor: processor,
                                  transport: transport, intakes: intakes, outbox: outbox)
        logger.info("faxgate \(FaxgateVersion.string) starting", metadata: [
            "extensions": "\(config.extensions.count)", "spool": "\(config.spoolDirectory)", "transport": "\(transport.name)",
        ])
        // Last, so SIGTERM stops taking web requests before the parts they drive.
        let webConfigs: [ServiceGroupConfiguration.ServiceConfiguration] = web.map { .init(service: $0) }
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: coordination),
                .init(service: JobWakeForwarder(coordination: coordination, queue: queue)),
                .init(service: outbox),
                .init(service: pipeline),
                // The parts that take new work start once the node has reached its database (fail closed).
                .init(service: AfterFirstContact(coordination: coordination, base: transport)),
                .init(service: AfterFirstContact(coordination: coordination, base: queue)),
                .init(service: AfterFirstContact(coordination: coordination, base: drop)),
            ] + intakes.map { .init(service: AfterFirstContact(coordination: coordination, base: $0)) } + (retention.map { [.init(service: $0)] } ?? [])
                + digest.map { .init(service: $0) } + webConfigs,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
        logger.info("faxgate stopped")
    }

    /// The web pages (`web.enabled`): the operations over the parts assembled above, then the HTTP server.
    func webServices(storage: any Storage, live: LiveConfiguration, pipeline: ReceptionPipeline, queue: SendQueue,
                     processor: SubmissionProcessor, transport: any FaxTransport, intakes: [any MailIntakeStatusReporting], outbox: Outbox) throws -> [any Service] {
        guard config.web.enabled else { return [] }
        guard let configPath else {
            logger.warning("web pages not started: no configuration file path (office settings need it)")
            return []
        }
        let current: @Sendable () -> Configuration = { live.current }
        let webLogger = logger.with(label: "web")
        let jobs = WebJobOperations(storage: storage, queue: queue, processor: processor, configuration: current,
                                    spoolDirectory: config.spoolDirectory, logger: webLogger)
        let environment = WebEnvironment(
            storage: storage, configuration: current, jobs: jobs,
            office: WebOfficeSettingsOperations(store: try OfficeSettingsStore(storage: storage, file: configPath), live: live, logger: webLogger),
            privacy: WebPrivacyOperations(configuration: current, configPath: configPath, storage: storage, logger: webLogger),
            status: WebStatusOperations(storage: storage, transport: transport, intakes: intakes, outbox: outbox, configuration: current),
            logger: webLogger,
            admin: WebAdminOperations(pipeline: pipeline, queue: queue, storage: storage, configuration: current))
        logger.info("web pages on \(config.web.usesTLS ? "https" : "http")://\(config.web.listen)")
        return [jobs, WebServer(environment: environment, settings: config.web)]
    }

    static func smtpSettings(_ config: Configuration) throws -> SMTPSettings {
        var password = config.smtp.password
        if let file = config.smtp.passwordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationFailure("cannot read smtp.password_file \(file)")
            }
            password = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        }
        let security: SMTPSettings.Security = switch config.smtp.security {
        case "tls": .implicitTLS
        case "none": SMTPSettings.Security.none
        default: .starttls
        }
        return SMTPSettings(host: config.smtp.host, port: config.smtp.port, security: security, username: config.smtp.username,
                            password: password, caFile: config.smtp.caFile, heloName: config.hostname,
                            timeoutSeconds: config.smtp.timeoutSeconds)
    }
}

/// Another node made jobs claimable (NOTIFY): the queue looks now instead of at its next poll.
struct JobWakeForwarder: Service {
    let coordination: any NodeCoordination
    let queue: SendQueue
    func run() async throws {
        let wakeups = coordination.jobWakeups()
        try? await cancelWhenGracefulShutdown { for await _ in wakeups { queue.wake() } }
    }
}

/// Starts `base` once the coordination has reached the database for the first time: a node does not listen for
/// calls (which it would have to refuse while fenced) or fetch work before it knows it may take work.
struct AfterFirstContact: Service {
    let coordination: any NodeCoordination
    let base: any Service
    func run() async throws {
        let changes = coordination.stateChanges()
        let ready = try? await cancelWhenGracefulShutdown {
            for await _ in changes where !coordination.isFenced { return true }
            return false
        }
        guard ready == true, !Task.isCancelled, !Task.isShuttingDownGracefully else { return }
        try await base.run()
    }
}

/// The admin digest at each period's end, on the leader (runs under `LeaderOnlyService`).
struct PeriodicDigest: Service {
    let processor: SubmissionProcessor
    let every: Duration
    let logger: Logger
    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do { try await cancelWhenGracefulShutdown { try await Task.sleep(for: every) } } catch { return }
            do { try await processor.sendAdminDigestIfDue() } catch {
                logger.error("admin digest not queued", metadata: ["error": "\(error)"])
            }
        }
    }
}

struct ValidationFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

extension Logger {
    /// A logger for one part of the gateway; the bootstrapped handler redacts and formats it.
    func with(label: String) -> Logger {
        var copy = Logger(label: "faxgate.\(label)")
        copy.logLevel = logLevel
        return copy
    }
}

enum FaxgateVersion {
    static let string = "0.1.0"
}
