import Capi20
import CapiProtocol
import FaxgateCore
import Foundation
import Logging
import ServiceLifecycle
import SoftFax
import FaxDocument
import VoiceAudio

public struct CAPITransportSettings: Sendable, Equatable {
    /// libcapi20 module: "rcapi", "standard" or "fritzbox".
    public var driver: String
    public var host: String
    public var port: Int
    /// Controllers to listen on; empty = all the controller profile reports.
    public var controllers: [Int]
    /// Also take 3.1 kHz audio calls (CIP 4) and answer them as fax.
    public var answerAudioAsFax: Bool
    /// Some extension has voicemail: listen for speech, 3.1 kHz audio and telephony (CIP 1, 4, 16) too.
    public var answerVoice: Bool = false
    /// Directory used as HOME for libcapi20's `.capi20rc` (written by the transport). nil = system config + ext API.
    public var capiHome: String?
    /// How long a call in flight may go on after a graceful shutdown request before it is disconnected.
    public var shutdownGrace: Duration
    public var minimumBackoff: Duration
    public var maximumBackoff: Duration
    /// Who runs T.30 (see `CAPIFaxEngineSetting`): the default and per-controller overrides.
    public var faxEngine: CAPIFaxEngineSetting = .auto
    public var faxEngines: [Int: CAPIFaxEngineSetting] = [:]
    /// Scratch directory for the software modem's page files; nil = the system's temporary directory.
    public var softFaxDirectory: String?

    public init(driver: String = "rcapi", host: String = "127.0.0.1", port: Int = 2662, controllers: [Int] = [],
                answerAudioAsFax: Bool = false, capiHome: String? = nil, shutdownGrace: Duration = .seconds(60),
                minimumBackoff: Duration = .seconds(1), maximumBackoff: Duration = .seconds(30)) {
        self.driver = driver; self.host = host; self.port = port; self.controllers = controllers
        self.answerAudioAsFax = answerAudioAsFax; self.capiHome = capiHome; self.shutdownGrace = shutdownGrace
        self.minimumBackoff = minimumBackoff; self.maximumBackoff = maximumBackoff
    }
}

/// Receives and sends faxes through a CAPI 2.0 controller (libcapi20).
///
/// All protocol decisions live in `FaxReceiveStateMachine` (incoming) and `FaxSendStateMachine` (outgoing);
/// this actor feeds them from one serial input loop (link messages, gateway decisions, timers) and carries out
/// their actions. Messages for calls we placed go to the send machine, everything else to the receive machine.
public actor CAPIFaxTransport: FaxSendingTransport {
    public nonisolated let name = "capi"
    public nonisolated let settings: CAPITransportSettings
    private let handler: any ReceptionHandler
    private let logger: Logger

    enum Input: Sendable {
        case link(CapiLinkEvent)
        case decided(plci: UInt32, CallDecision)
        case ringElapsed(plci: UInt32)
        case voiceWatchdog(plci: UInt32)
        case answerTimer(call: Int, token: Int)
        case reconnect
        case shutdown
        case shutdownDeadline
        case shutdownAbandon
    }
    private nonisolated let inbox: AsyncStream<Input>
    private nonisolated let inboxContinuation: AsyncStream<Input>.Continuation

    private var machine: FaxReceiveStateMachine
    private var sendMachine = FaxSendStateMachine()
    private var voiceMachine = VoiceCallStateMachine()
    /// Callers of `send` waiting for their outcome, by send-machine call id.
    private var pendingSends: [Int: CheckedContinuation<SendOutcome, Never>] = [:]
    private var nextSendID = 1
    private var link: CapiLink?
    private var registered = false {
        didSet { if registered != oldValue { registeredChangedAt = Date() } }
    }
    /// For the dashboard (statusSnapshot): since when `registered` has its value, and the last line problem.
    private var registeredChangedAt: Date?
    private var lastLineError: String?
    private var backoff: Duration
    private var knownProfiles: [Int: CapiProfile] = [:]
    private var listeningControllers: [Int] = []
    private var shuttingDown = false
    private var handlerTasks: [UUID: Task<Void, Never>] = [:]
    private var timers: [Task<Void, Never>] = []

    // Software fax engine (spandsp over transparent B-channels): all of it owned by this actor.
    /// Engine per controller, resolved at registration from the settings and the profile.
    private var faxEngines: [Int: FaxEngineResolution] = [:]
    /// One modem per call running on our side, by PLCI.
    private var softChannels: [UInt32: SoftFaxChannel] = [:]
    private var softReceptions: [Int64: UInt32] = [:]       // reception id → PLCI
    private var softSendCalls: [Int: UInt32] = [:]          // send-machine call id → PLCI
    private var softSendPages: [Int: [FaxPage]] = [:]       // send-machine call id → decoded document
    /// Pacers carried over from a voice call (its greeting blocks still occupy the window), by PLCI.
    private var pendingPacers: [UInt32: SoftFaxPacer] = [:]
    /// CNG detectors of voice calls on software-engine controllers, by PLCI.
    private var toneDetectors: [UInt32: ToneWatch] = [:]
    private var softDataNumber: UInt16 = 0x1000

    public init(settings: CAPITransportSettings, handler: any ReceptionHandler, logger: Logger) {
        self.settings = settings
        self.handler = handler
        self.logger = logger
        self.machine = FaxReceiveStateMachine(options: .init(answerAudioAsFax: settings.answerAudioAsFax,
                                                             answerVoice: settings.answerVoice))
        self.backoff = settings.minimumBackoff
        (inbox, inboxContinuation) = AsyncStream.makeStream(of: Input.self)
    }

    public func run() async throws {
        removeStaleSoftFaxWork()
        let link = CapiLink(configuration: CapiLinkConfiguration(
            driver: settings.driver, host: settings.host, port: settings.port, home: settings.capiHome, traceLevel: 0))
        self.link = link
        let pump = Task { [inboxContinuation] in
            for await event in link.events { inboxContinuation.yield(.link(event)) }
        }
        let inboxContinuation = self.inboxContinuation
        await withGracefulShutdownHandler {
            await self.loop()
        } onGracefulShutdown: {
            inboxContinuation.yield(.shutdown)
        }
        // Cancelled or shut down: whatever is still in flight ends here.
        registered = false
        perform(machine.abandonAll(text: shuttingDown ? "gateway shut down" : "transport stopped"))
        performVoice(voiceMachine.abandonAll(text: shuttingDown ? "gateway shut down" : "transport stopped"))
        performSend(sendMachine.abandonAll(text: shuttingDown ? "gateway shutting down" : "transport stopped"))
        for task in timers { task.cancel() }
        for task in handlerTasks.values { await task.value }
        await link.release()
        link.shutdown()
        pump.cancel()
        self.link = nil
    }

    private func loop() async {
        inboxContinuation.yield(.reconnect)
        for await input in inbox {
            await process(input)
            if shuttingDown && machine.isIdle && sendMachine.isIdle && voiceMachine.isIdle { break }
        }
    }

    private func process(_ input: Input) async {
        switch input {
        case .link(.message(let m)):
            if case .listenConf(let c, let info) = m.body, info != .noError {
                logger.error("LISTEN_REQ refused", metadata: ["controller": "\(c)", "info": "\(info)"])
            }
            // The remote hung up: every block it sent was already fed to the modem (messages are handled in
            // order), so the modem now judges the end of the session before the machines see the clearing.
            // B3 down alone: the fax is over, we clear the call ourselves; DISCONNECT_IND: the call is gone already.
            switch m.body {
            case .disconnectB3Ind(let a, _, _): softLineDown(plci: a.capiPLCI, callGone: false)
            case .disconnectInd(let a, _): softLineDown(plci: a.capiPLCI, callGone: true)
            default: break
            }
            if let actions = sendMachine.handle(m) {
                performSend(actions)
            } else if let actions = voiceMachine.handle(m) {
                performVoice(actions)
            } else {
                perform(machine.handle(m))
            }
        case .link(.linkLost(let info)):
            registered = false
            lastLineError = "controller connection lost (\(info))"
            logger.error("CAPI controller connection lost", metadata: ["info": "\(info)"])
            perform(machine.abandonAll(text: "controller connection lost"))
            performVoice(voiceMachine.abandonAll(text: "controller connection lost"))
            performSend(sendMachine.abandonAll(text: "controller connection lost"))
            if !shuttingDown { scheduleReconnect() }
        case .decided(let plci, let decision):
            perform(machine.decided(plci: plci, decision))
        case .ringElapsed(let plci):
            perform(machine.ringDelayElapsed(plci: plci))
            performVoice(voiceMachine.ringDelayElapsed(plci: plci))
        case .voiceWatchdog(let plci):
            performVoice(voiceMachine.watchdogFired(plci: plci))
        case .answerTimer(let call, let token):
            performSend(sendMachine.answerTimerFired(call: call, token: token))
        case .reconnect:
            guard !shuttingDown, !registered else { return }
            await register()
        case .shutdown:
            guard !shuttingDown else { return }
            shuttingDown = true
            logger.info("CAPI transport shutting down", metadata: ["calls": "\(machine.callCount)", "sending": "\(sendMachine.callCount)"])
            if registered {
                for c in listeningControllers { listen(controller: c, cipMask: 0) }
            }
            schedule(.shutdownDeadline, after: settings.shutdownGrace)
        case .shutdownDeadline:
            perform(machine.disconnectAll())
            performVoice(voiceMachine.disconnectAll())
            performSend(sendMachine.disconnectAll(text: "gateway shutting down"))
            schedule(.shutdownAbandon, after: .seconds(5))
        case .shutdownAbandon:
            perform(machine.abandonAll(text: "gateway shut down"))
            performVoice(voiceMachine.abandonAll(text: "gateway shut down"))
            performSend(sendMachine.abandonAll(text: "gateway shutting down"))
        }
    }

    private func register() async {
        guard let link else { return }
        let fallback = knownProfiles
        let configured = settings.controllers
        do {
            let registration = try await link.register(maxLogicalConnection: { profiles in
                // Incoming and outgoing calls share the B-channels of every controller (we may dial out on one we
                // do not listen on): two logical connections per B-channel, a spare for a call being set up or
                // torn down.
                let p = profiles.isEmpty ? fallback : profiles
                let channels = p.isEmpty ? 2 * max(1, configured.count) : p.values.reduce(0) { $0 + Int($1.bChannels) }
                return max(4, 2 * channels)
            }, maxBDataBlocks: 7, maxBDataLen: 2048)
            registered = true
            backoff = settings.minimumBackoff
            if !registration.profiles.isEmpty { knownProfiles = registration.profiles }
            let controllers = !configured.isEmpty ? configured
                : knownProfiles.isEmpty ? [1] : knownProfiles.keys.sorted()
            listeningControllers = controllers
            resolveEngines(controllers: controllers)
            // The profile goes into the log so support snapshots (which carry redacted logs) show the hardware.
            let profile = knownProfiles.keys.sorted().map { c -> String in
                let p = knownProfiles[c]!
                return "\(c): \(p.bChannels) B-channels, options 0x\(String(p.globalOptions, radix: 16)), B1 0x\(String(p.b1Support, radix: 16)) "
                    + "B2 0x\(String(p.b2Support, radix: 16)) B3 0x\(String(p.b3Support, radix: 16))"
            }.joined(separator: "; ")
            logger.info("CAPI registered", metadata: [
                "applID": "\(registration.applID)", "controllers": "\(controllers)", "profile": "\(profile)",
                "driver": "\(settings.driver)",
            ])
            var cip: UInt32 = 1 << 17
            if settings.answerAudioAsFax { cip |= 1 << 4 }
            if settings.answerVoice { cip |= 1 << 1 | 1 << 4 | 1 << 16 }
            for c in controllers { listen(controller: c, cipMask: cip) }
        } catch {
            lastLineError = "registration failed: \(error)"
            logger.warning("CAPI registration failed, retrying", metadata: ["error": "\(error)", "in": "\(backoff)"])
            scheduleReconnect()
        }
    }

    private func scheduleReconnect() {
        schedule(.reconnect, after: backoff)
        backoff = min(backoff * 2, settings.maximumBackoff)
    }

    private func schedule(_ input: Input, after delay: Duration) {
        let c = inboxContinuation
        timers.removeAll { $0.isCancelled }
        timers.append(Task {
            do { try await Task.sleep(for: delay) } catch { return }
            c.yield(input)
        })
    }

    private var listenNumber: UInt16 = 0x4000
    private func listen(controller: Int, cipMask: UInt32) {
        listenNumber = listenNumber == 0x7FFF ? 0x4000 : listenNumber + 1
        // InfoMask bit 4 = call progress (ALERTING), bit 7 = called party number (DDI digits).
        link?.send(CapiMessage(applID: 0, messageNumber: listenNumber, body: .listenReq(
            controller: UInt32(controller), infoMask: 1 << 4 | 1 << 7, cipMask: cipMask, cipMask2: 0,
            callingNumber: [], callingSubaddress: [])))
    }

    private func perform(_ actions: [FaxReceiveStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let m):
                link?.send(m)
            case .decide(let call):
                // A withheld number stays out of the log too.
                let from = call.callingNumberRestricted ? "withheld" : call.callingNumber ?? "-"
                logger.info("incoming call", metadata: ["from": "\(from)", "to": "\(call.calledNumber)",
                                                        "service": "\(call.service)", "plci": "\(String(call.handle, radix: 16))"])
                let handler = self.handler, c = inboxContinuation
                spawn { c.yield(.decided(plci: call.handle, await handler.decide(call))) }
            case .startRingDelay(let plci, let delay):
                schedule(.ringElapsed(plci: plci), after: delay)
            case .append(let receptionID, let data):
                if let spool = spool(for: receptionID) {
                    spool.append(data)
                    if spool.exceeded != nil { hangUpOverLimit(receptionID) }
                }
            case .connected(let receptionID, let info):
                let handler = self.handler
                spawn(reception: receptionID) { await handler.faxConnected(receptionID: receptionID, info: info) }
            case .finished(let f):
                finish(f)
            case .handOverVoice(let plci, let number, let answer, let gone):
                performVoice(voiceMachine.start(plci: plci, indicationNumber: number, answer: answer, goneReason: gone))
            case .startSoftFax(let plci, let ncci, let answer):
                startSoftReceive(plci: plci, ncci: ncci, answer: answer)
            case .softAudio(let plci, let data):
                softAudio(plci: plci, data)
            case .softAudioConfirmed(let plci, let handle):
                softConfirmed(plci: plci, handle: handle)
            }
        }
    }

    /// Receptions past their limits (bytes, pages, minutes) that we already hung up; the call then ends
    /// through the protocol as usual and `finish` says why.
    private var hungUpOverLimit: Set<Int64> = []
    private func hangUpOverLimit(_ receptionID: Int64) {
        guard hungUpOverLimit.insert(receptionID).inserted,
            let plci = machine.calls.values.first(where: { $0.answer?.receptionID == receptionID })?.plci else { return }
        logger.warning("reception over its limit, hanging up", metadata: ["reception": "\(receptionID)"])
        link?.send(CapiMessage(applID: 0, messageNumber: 0x3FFF, body: .disconnectReq(plci: plci, additionalInfo: [])))
    }

    /// Spool files of answered calls, by reception id (kept here so DATA_B3 needs no lookup in the machine).
    private var spools: [Int64: ReceptionSpoolFile] = [:]
    private func spool(for receptionID: Int64) -> ReceptionSpoolFile? {
        if let s = spools[receptionID] { return s }
        guard let answer = machine.answer(for: receptionID) else { return nil }
        spools[receptionID] = answer.spool
        return answer.spool
    }

    private func finish(_ call: FaxReceiveStateMachine.FinishedCall) {
        var call = call
        if let plci = softReceptions.removeValue(forKey: call.receptionID), let channel = softChannels.removeValue(forKey: plci) {
            // The call ended under the modem (line lost, shutdown): it still tells what it got.
            if !channel.isFinished { _ = channel.lineDisconnected() }
            call.session = channel.session
            if call.textOverride == nil, let failure = call.session.failure {
                call.textOverride = SoftFaxChannel.describe(failure, sending: false, pagesDone: call.session.pages ?? 0, pagesTotal: nil)
            }
            call.answer.spool.append(channel.spoolTrailer())
            logSoftEnd(channel, id: "reception \(call.receptionID)")
        }
        let f = call
        spools[f.receptionID] = nil
        hungUpOverLimit.remove(f.receptionID)
        let overLimit = f.answer.spool.exceeded
        var spoolError: String? = nil
        do { try f.answer.spool.finish() } catch { spoolError = "\(error)" }
        let handler = self.handler, link = self.link, logger = self.logger, spoolFailure = spoolError
        spawn(reception: f.receptionID) {
            var text: String
            if let override = f.textOverride {
                text = override
            } else {
                let t = { (code: UInt16) async -> String in
                    await link?.infoText(code) ?? CapiInfo(code).name ?? "0x\(String(code, radix: 16))"
                }
                let normal: Set<UInt16> = [0, 0x3400, 0x3490]
                if f.reasonB3 != 0 {
                    text = await t(f.reasonB3)
                    if !normal.contains(f.reason) { text += "; " + (await t(f.reason)) }
                } else {
                    text = await t(f.reason)
                }
            }
            if let spoolFailure { text += "; spool: \(spoolFailure)" }
            if let overLimit { text = overLimit.text("en") }
            let end = CallEnd(reason: Int(f.reason), reasonB3: Int(f.reasonB3), text: text, session: f.session,
                              cause: overLimit != nil ? .limitExceeded : f.cause)
            logger.info("call ended", metadata: ["reception": "\(f.receptionID)", "reason": "\(text)",
                                                 "pages": "\(f.session.pages ?? 0)"])
            await handler.callEnded(receptionID: f.receptionID, end: end)
        }
    }

    // MARK: Voice

    private func performVoice(_ actions: [VoiceCallStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let m):
                link?.send(m)
            case .startRingDelay(let plci, let delay):
                schedule(.ringElapsed(plci: plci), after: delay)
            case .startWatchdog(let plci, let delay):
                schedule(.voiceWatchdog(plci: plci), after: delay)
            case .record(let receptionID, let data):
                voiceMachine.answer(for: receptionID)?.recording.append(data)
            case .switchedToFax(let plci, let voice, let fallback):
                switchVoiceToFax(plci: plci, voice: voice, fallback: fallback, detector: "controller") { fax in
                    self.machine.adoptSwitchedCall(plci: plci, answer: fax)
                }
            case .finished(let f):
                toneDetectors = toneDetectors.filter { $0.value.receptionID != f.answer.receptionID }
                finishVoice(f)
            case .detectFaxTone(let plci, let data):
                detectFaxTone(plci: plci, data)
            case .switchedToSoftFax(let plci, let ncci, let voice, let fallback, let outstanding, let nextHandle):
                toneDetectors[plci] = nil
                switchVoiceToFax(plci: plci, voice: voice, fallback: fallback, detector: "software detector") { fax in
                    self.pendingPacers[plci] = SoftFaxPacer(outstanding: outstanding, nextHandle: nextHandle)
                    self.perform(self.machine.adoptSwitchedSoftCall(plci: plci, ncci: ncci, answer: fax))
                }
            }
        }
    }

    /// A fax tone turned a voice call into a fax: close the recording (kept until the fax brings a page), open the
    /// fax spool, let `adopt` hand the call to the receive machine, and tell the pipeline. Without a spool file
    /// the fax would be lost: hang up and report the voice call as ended instead.
    private func switchVoiceToFax(plci: UInt32, voice: VoiceAnswer, fallback: VoiceAnswer.FaxFallback, detector: String,
                                  adopt: (FaxAnswer) -> Void) {
        do { try voice.recording.finish() } catch {
            logger.error("voice recording before the fax tone not completely stored: \(error)",
                         metadata: ["reception": "\(voice.receptionID)"])
        }
        do {
            let spool = try ReceptionSpoolFile(path: fallback.spoolPath)
            adopt(FaxAnswer(receptionID: voice.receptionID, stationID: fallback.stationID, headline: fallback.headline,
                            fine: fallback.fine, spool: spool))
            logger.info("fax tone (\(detector)): voice call switched to fax", metadata: ["reception": "\(voice.receptionID)"])
            let handler = self.handler
            spawn(reception: voice.receptionID) { await handler.voiceSwitchedToFax(receptionID: voice.receptionID, spoolPath: fallback.spoolPath) }
        } catch {
            logger.error("cannot switch to fax: \(error)", metadata: ["reception": "\(voice.receptionID)"])
            link?.send(CapiMessage(applID: 0, messageNumber: 0x3FFF, body: .disconnectReq(plci: plci, additionalInfo: [])))
            finishVoice(.init(answer: voice, cause: .interrupted, reason: 0, recordedBytes: 0, greetingCompleted: false,
                              textOverride: "fax tone, but the fax spool file could not be created: \(error)"))
        }
    }

    private func finishVoice(_ f: VoiceCallStateMachine.FinishedVoiceCall) {
        var spoolError: String? = nil
        do { try f.answer.recording.finish() } catch { spoolError = "\(error)" }
        let handler = self.handler, link = self.link, logger = self.logger, spoolFailure = spoolError
        spawn(reception: f.answer.receptionID) {
            var text: String
            if let override = f.textOverride { text = override } else {
                text = await link?.infoText(f.reason) ?? CapiInfo(f.reason).name ?? "0x\(String(f.reason, radix: 16))"
            }
            if let spoolFailure { text += "; spool: \(spoolFailure)" }
            let end = VoiceCallEnd(cause: f.cause, reason: Int(f.reason), text: text, recordedSeconds: f.recordedSeconds,
                                   greetingCompleted: f.greetingCompleted)
            logger.info("voice call ended", metadata: ["reception": "\(f.answer.receptionID)", "cause": "\(f.cause.rawValue)",
                                                       "seconds": "\(f.recordedSeconds)"])
            await handler.voiceEnded(receptionID: f.answer.receptionID, end: end)
        }
    }

    // MARK: Sending

    /// Controllers, channels in use and registration, in the core's generic terms (dashboard, metrics, readiness).
    public func statusSnapshot() -> TransportSnapshot {
        let busy = busyChannels
        let lines = usableControllers.map { c in
            LineSnapshot(controller: c, registered: registered && listeningControllers.contains(c),
                         channelsTotal: bChannels(of: c), channelsInUse: busy[c] ?? 0)
        }
        return TransportSnapshot(name: name, registered: registered, since: registeredChangedAt, lines: lines, lastError: lastLineError)
    }

    /// B-channels of the controllers we use; 0 while not registered.
    public var channels: Int {
        guard registered else { return 0 }
        return usableControllers.reduce(0) { $0 + bChannels(of: $1) }
    }

    private var usableControllers: [Int] {
        !settings.controllers.isEmpty ? settings.controllers : knownProfiles.isEmpty ? listeningControllers : knownProfiles.keys.sorted()
    }
    private func bChannels(of controller: Int) -> Int { knownProfiles[controller].map { Int($0.bChannels) } ?? 2 }

    /// Calls holding (or about to hold) a B-channel on each controller, both directions.
    private var busyChannels: [Int: Int] {
        var busy = sendMachine.callsPerController
        busy.merge(voiceMachine.callsPerController, uniquingKeysWith: +)
        for call in machine.calls.values where call.phase != .rejected { busy[call.plci.capiController, default: 0] += 1 }
        return busy
    }

    public func send(_ fax: OutgoingFax) async -> SendOutcome {
        let now = Date()
        func early(_ cause: SendOutcome.Cause, _ text: String) -> SendOutcome {
            SendOutcome(cause: cause, reason: 0, reasonB3: 0, text: text, session: FaxSessionInfo(), pagesSent: 0,
                        dialedAt: now, connectedAt: nil, endedAt: Date())
        }
        if shuttingDown { return early(.networkFailure, "gateway shutting down") }
        guard registered, link != nil else { return early(.localError, "no CAPI controller registered") }
        let controller: Int
        if let wanted = fax.controller {
            controller = wanted
        } else {
            let busy = busyChannels
            guard let free = usableControllers.first(where: { busy[$0, default: 0] < bChannels(of: $0) }) else {
                return early(.networkFailure, "no free B-channel")
            }
            controller = free
        }
        let engine = faxEngine(for: controller)
        var softPages: [FaxPage]? = nil
        if engine == .software {
            // Our modem sends pages, not SFF: decode before dialling, so a bad document costs no call.
            do {
                let doc = try SFFReader.read(fax.sff)
                guard !doc.pages.isEmpty else { return early(.localError, "the document has no pages for the software fax engine") }
                softPages = doc.pages
            } catch {
                return early(.localError, "the document could not be read for the software fax engine: \(error)")
            }
        }
        let id = nextSendID
        nextSendID += 1
        if let softPages { softSendPages[id] = softPages }
        // No dial string here: with a PBX's outside-line digit it is no notation of the number the redaction can
        // equate, so it would get another pseudonym than the queue's "dialling" line (which names the number).
        logger.info("dialling", metadata: ["job": "\(fax.jobID)", "controller": "\(controller)",
                                           "bytes": "\(fax.sff.count)"])
        return await withCheckedContinuation { c in
            pendingSends[id] = c
            performSend(sendMachine.start(call: id, fax: fax, controller: controller, now: now, engine: engine))
        }
    }

    private func performSend(_ actions: [FaxSendStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let m):
                link?.send(m)
            case .startAnswerTimer(let call, let token, let delay):
                schedule(.answerTimer(call: call, token: token), after: delay)
            case .finished(let f):
                softSendPages[f.call] = nil
                if let plci = softSendCalls.removeValue(forKey: f.call), let channel = softChannels.removeValue(forKey: plci) {
                    logSoftEnd(channel, id: "job \(f.jobID)")
                }
                finishSend(f)
            case .startSoftFax(let call, let plci, let ncci):
                startSoftSend(call: call, plci: plci, ncci: ncci)
            case .softAudio(let call, let data):
                if let plci = softSendCalls[call] { softAudio(plci: plci, data) }
            case .softAudioConfirmed(let call, let handle):
                if let plci = softSendCalls[call] { softConfirmed(plci: plci, handle: handle) }
            }
        }
    }

    private func finishSend(_ f: FaxSendStateMachine.FinishedSend) {
        guard let continuation = pendingSends.removeValue(forKey: f.call) else { return }
        let link = self.link, logger = self.logger
        spawn {
            // Reason texts come from libcapi20 (capi_info2str on the link thread), after what happened in words.
            let t = { (code: UInt16) async -> String in
                await link?.infoText(code) ?? CapiInfo(code).name ?? "0x\(String(code, radix: 16))"
            }
            var text: String
            if let override = f.textOverride {
                text = override
            } else if let info = f.info {
                text = "\(f.context): \(await t(info))"
            } else if f.cause == .success {
                text = f.context
            } else {
                let normal: Set<UInt16> = [0, 0x3400, 0x3490]
                var reasons: [String] = []
                if f.reasonB3 != 0 { reasons.append(await t(f.reasonB3)) }
                if !normal.contains(f.reason) || reasons.isEmpty { reasons.append(await t(f.reason)) }
                text = "\(f.context): " + reasons.joined(separator: "; ")
            }
            let outcome = SendOutcome(cause: f.cause, reason: Int(f.reason), reasonB3: Int(f.reasonB3), text: text,
                                      session: f.session, pagesSent: f.pagesSent, dialedAt: f.dialedAt,
                                      connectedAt: f.connectedAt, endedAt: f.endedAt)
            logger.info("outgoing call ended", metadata: ["job": "\(f.jobID)", "cause": "\(f.cause.rawValue)", "text": "\(text)",
                                                          "pages": "\(f.pagesSent)"])
            continuation.resume(returning: outcome)
        }
    }

    private func spawn(_ body: @escaping @Sendable () async -> Void) {
        let id = UUID()
        handlerTasks[id] = Task {
            await body()
            await self.taskDone(id)
        }
    }
    private func taskDone(_ id: UUID) { handlerTasks[id] = nil }

    /// The handler's events of one call in the order they happened: each reads the call's row and writes it back
    /// whole, so one overtaking an earlier one (a "fax session up" read before "switched to fax" was stored) would
    /// write a stale row (the fax call journaled as a voice call). Visible with a database of a few ms per query.
    private var receptionTails: [Int64: (id: UUID, task: Task<Void, Never>)] = [:]
    private func spawn(reception: Int64, _ body: @escaping @Sendable () async -> Void) {
        let previous = receptionTails[reception]?.task
        let id = UUID()
        let task = Task {
            await previous?.value
            await body()
            await self.taskDone(id, reception: reception)
        }
        handlerTasks[id] = task
        receptionTails[reception] = (id, task)
    }
    private func taskDone(_ id: UUID, reception: Int64) {
        handlerTasks[id] = nil
        if receptionTails[reception]?.id == id { receptionTails[reception] = nil }
    }
}

// MARK: - Software fax engine

/// A voice call's CNG detector (spandsp state: owned by the actor).
final class ToneWatch {
    let receptionID: Int64
    let detector: ConnectToneDetector
    init(receptionID: Int64) {
        self.receptionID = receptionID
        detector = ConnectToneDetector(.cng)
    }
}

extension CAPIFaxTransport {
    /// Engine for a controller (resolved at registration; before that, from the settings alone).
    func faxEngine(for controller: Int) -> FaxEngineKind {
        faxEngines[controller]?.engine
            ?? FaxEngineResolution.resolve(settings.faxEngineSetting(for: controller), profile: knownProfiles[controller]).engine
    }

    /// The engines currently in force, per controller (for tests and the log).
    public func resolvedFaxEngines() -> [Int: FaxEngineKind] { faxEngines.mapValues(\.engine) }

    fileprivate func resolveEngines(controllers: [Int]) {
        let resolved = settings.resolveFaxEngines(controllers: controllers, profiles: knownProfiles)
        for c in resolved.keys.sorted() where faxEngines[c] != resolved[c] {
            logger.info("fax engine", metadata: ["controller": "\(c)", "engine": "\(resolved[c]!.engine.rawValue)",
                                                 "why": "\(resolved[c]!.why)"])
        }
        faxEngines = resolved
        let software = Set(resolved.filter { $0.value.engine == .software }.keys)
        machine.softwareControllers = software
        voiceMachine.softwareControllers = software
    }

    /// Work directories of software-fax calls a previous process did not finish (killed mid-call) hold page
    /// images (personal data) no retention knows; their pages are already in the reception spool. No call is
    /// running before `run`, so every `call-*` directory is stale.
    private func removeStaleSoftFaxWork() {
        for (name, error) in SoftFaxChannel.removeStaleWork(in: softWorkDirectory) {
            logger.error("cannot remove stale software fax work directory \(name): \(error)")
        }
    }

    private var softWorkDirectory: String { settings.softFaxDirectory ?? NSTemporaryDirectory() + "faxgate-softfax" }

    fileprivate func startSoftReceive(plci: UInt32, ncci: UInt32, answer: FaxAnswer) {
        // No MMR when receiving: spandsp decodes a whole 64 KB ECM block at once, and a stranger's MMR block of
        // near-empty rows expands to 100+ MB before the row limit can refuse the page; with MH/MR it stays ~8 MB.
        // ECM still repairs the line; the cost is a somewhat longer call for dense pages.
        let options = FaxEngineOptions(calling: false, localIdent: FaxEngineOptions.ident(answer.stationID), pageHeader: nil,
                                       ecm: true, compressions: [.mh, .mr], acceptFine: answer.fine)
        let pacer = pendingPacers.removeValue(forKey: plci) ?? SoftFaxPacer()
        do {
            let channel = try SoftFaxChannel(plci: plci, ncci: ncci, options: options, send: nil,
                                             workDirectory: softWorkDirectory, pacer: pacer)
            softChannels[plci] = channel
            softReceptions[answer.receptionID] = plci
            logger.info("software fax engine answering", metadata: ["reception": "\(answer.receptionID)"])
        } catch {
            logger.error("software fax engine failed to start: \(error)", metadata: ["reception": "\(answer.receptionID)"])
            let session = FaxSessionInfo(engine: .software, failure: T30Failure(kind: .local, code: 0, text: "\(error)"))
            perform(machine.softFaxFinished(plci: plci, session: session, failureText: "software fax engine failed to start: \(error)",
                                            lineGone: false))
        }
    }

    fileprivate func startSoftSend(call: Int, plci: UInt32, ncci: UInt32) {
        guard let fax = sendMachine.fax(call: call) else { return }
        let pages = softSendPages[call] ?? []
        let header = fax.headline.trimmingCharacters(in: .whitespaces)
        let options = FaxEngineOptions(calling: true, localIdent: FaxEngineOptions.ident(fax.stationID),
                                       pageHeader: header.isEmpty ? nil : header, ecm: fax.modem.ecm,
                                       modems: FaxModem.families(upTo: fax.modem.maxBitRate), acceptFine: fax.fine)
        do {
            let channel = try SoftFaxChannel(plci: plci, ncci: ncci, options: options, send: pages, workDirectory: softWorkDirectory)
            softChannels[plci] = channel
            softSendCalls[call] = plci
            logger.info("software fax engine sending", metadata: ["job": "\(fax.jobID)", "pages": "\(pages.count)",
                                                                 "ecm": "\(fax.modem.ecm)", "max_rate": "\(fax.modem.maxBitRate ?? 14400)"])
        } catch {
            logger.error("software fax engine failed to start: \(error)", metadata: ["job": "\(fax.jobID)"])
            let text = "software fax engine failed to start: \(error)"
            let session = FaxSessionInfo(engine: .software, failure: T30Failure(kind: .local, code: 0, text: "\(error)"))
            performSend(sendMachine.softFaxFinished(call: call, .init(succeeded: false, pagesSent: 0, session: session, text: text),
                                                    lineGone: false))
        }
    }

    fileprivate func softAudio(plci: UInt32, _ data: [UInt8]) {
        guard let channel = softChannels[plci] else { return }
        let (blocks, events) = channel.received(data)
        sendSoftBlocks(blocks, channel)
        handleSoftEvents(events, channel, lineGone: false)
        // Pages reach the spool only when complete: check the time limit about once a second of line audio too,
        // so a caller that never finishes a page is still hung up (an empty append checks the limits).
        if channel.takeSecondTick(), let reception = softReceptions.first(where: { $0.value == plci })?.key,
           let spool = spool(for: reception) {
            spool.append([UInt8]())
            if spool.exceeded != nil { hangUpOverLimit(reception) }
        }
    }

    fileprivate func softConfirmed(plci: UInt32, handle: UInt16) {
        guard let channel = softChannels[plci] else { return }
        sendSoftBlocks(channel.confirmed(handle: handle), channel)
    }

    /// DISCONNECT_B3_IND or DISCONNECT_IND for a call whose modem still runs.
    fileprivate func softLineDown(plci: UInt32, callGone: Bool) {
        guard let channel = softChannels[plci], !channel.isFinished else { return }
        handleSoftEvents(channel.lineDisconnected(), channel, lineGone: callGone)
    }

    private func sendSoftBlocks(_ blocks: [SoftFaxPacer.Block], _ channel: SoftFaxChannel) {
        for b in blocks {
            softDataNumber = softDataNumber >= 0x1FFF ? 0x1000 : softDataNumber + 1
            link?.send(CapiMessage(applID: 0, messageNumber: softDataNumber,
                                   body: .dataB3Req(ncci: channel.ncci, handle: b.handle, flags: 0, data: b.data)))
        }
    }

    private func handleSoftEvents(_ events: [FaxEngineEvent], _ channel: SoftFaxChannel, lineGone: Bool) {
        let plci = channel.plci
        let reception = softReceptions.first { $0.value == plci }?.key
        let sendCall = softSendCalls.first { $0.value == plci }?.key
        for event in events {
            switch event {
            case .negotiated(let ident, let rate, let ecm, let compression, let fine):
                logger.info("fax negotiated", metadata: ["plci": "\(String(plci, radix: 16))", "rate": "\(rate)", "ecm": "\(ecm)",
                                                         "compression": "\(compression.rawValue)", "fine": "\(fine)"])
                if let reception {
                    let info = FaxSessionInfo(bitRate: rate, fine: fine, remoteStationID: ident, ecm: ecm, engine: .software,
                                              compression: compression.core)
                    let handler = self.handler
                    spawn(reception: reception) { await handler.faxConnected(receptionID: reception, info: info) }
                }
            case .page(let report, let page):
                logger.info("fax page", metadata: ["plci": "\(String(plci, radix: 16))", "page": "\(report.page)",
                                                   "rate": "\(report.bitRate)", "ecm_retransmitted": "\(report.ecmRetransmittedFrames)",
                                                   "bad_rows": "\(report.badRows)"])
                if let reception, let page, let spool = spool(for: reception) {
                    spool.append(channel.spoolBytes(for: page))
                    if spool.exceeded != nil { hangUpOverLimit(reception) }
                }
            case .finished(let result):
                let session = channel.session
                if reception != nil {
                    let text = session.failure.map {
                        SoftFaxChannel.describe($0, sending: false, pagesDone: session.pages ?? 0, pagesTotal: nil)
                    }
                    perform(machine.softFaxFinished(plci: plci, session: session, failureText: text, lineGone: lineGone))
                } else if let sendCall {
                    let complete = result.succeeded && result.pages >= channel.pagesToSend
                    let text: String
                    if complete {
                        text = "\(result.pages) page\(result.pages == 1 ? "" : "s") sent"
                    } else if let failure = session.failure {
                        text = SoftFaxChannel.describe(failure, sending: true, pagesDone: result.pages, pagesTotal: channel.pagesToSend)
                    } else {
                        text = "fax session ended after \(result.pages) of \(channel.pagesToSend) pages"
                    }
                    var s = session
                    if !complete && s.failure == nil {
                        s.failure = T30Failure(kind: .other, code: result.code, text: text, bitRate: result.bitRate)
                    }
                    performSend(sendMachine.softFaxFinished(call: sendCall, .init(succeeded: complete, pagesSent: result.pages,
                                                                                  session: s, text: text), lineGone: lineGone))
                }
            }
        }
    }

    fileprivate func detectFaxTone(plci: UInt32, _ data: [UInt8]) {
        guard let receptionID = voiceMachine.receptionID(plci: plci) else { return }
        let watch: ToneWatch
        if let w = toneDetectors[plci] { watch = w } else {
            watch = ToneWatch(receptionID: receptionID)
            toneDetectors[plci] = watch
        }
        if watch.detector.feed(G711.pcm(fromLine: data)) {
            toneDetectors[plci] = nil
            performVoice(voiceMachine.faxToneHeard(plci: plci))
        }
    }

    fileprivate func logSoftEnd(_ channel: SoftFaxChannel, id: String) {
        let p = channel.pacer
        var meta: Logger.Metadata = ["call": "\(id)", "max_unconfirmed": "\(p.maxUnconfirmed)", "underruns": "\(p.underruns)"]
        if p.dropped > 0 { meta["dropped_blocks"] = "\(p.dropped)" }
        if p.underruns > 0 || p.dropped > 0 {
            // A sending modem that starves breaks pages: worth a warning with the figures.
            logger.warning("software fax transmit underruns", metadata: meta)
        } else {
            logger.debug("software fax transmit pacing", metadata: meta)
        }
    }
}
