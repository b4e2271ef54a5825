// The simulator's side of a transparent B-channel (B 1/1/0) with a software fax machine on it: a spandsp
// FaxEngine that hears the gateway's DATA_B3_REQ audio and speaks in DATA_B3_IND blocks of bit-reversed A-law,
// paced by a line clock, with seeded impairments on request.
import CapiProtocol
import FaxDocument
import Foundation
import SoftFax
import VoiceAudio

/// How the simulated line advances.
public enum LineClock: Sendable, Equatable, CustomStringConvertible {
    /// Line time runs at real time × `speed` (> 1: faster than real time). The gateway's audio is played out
    /// `latencySamples` after it could first have been sent; whatever is late is replaced by silence and counted
    /// as an underrun — as on a real line, where the gateway's modem must keep up.
    case realTime(speed: Double, latencySamples: Int = 480)
    /// For tests on loaded machines: line time never runs more than `marginSamples` ahead of the audio the
    /// gateway has sent, so a slow gateway slows the line down instead of starving its own modem. The
    /// simulator waits up to `patience` (real time) for the gateway's audio, then plays silence (an underrun).
    /// `maxSpeed` caps the pace against real time (nil = as fast as the gateway answers).
    case lockstep(marginSamples: Int = 320, patience: Duration = .seconds(2), maxSpeed: Double? = nil)

    var latency: Int {
        switch self {
        case .realTime(_, let l): max(0, l)
        case .lockstep(let m, _, _): max(0, m)
        }
    }
    var speed: Double? {
        switch self {
        case .realTime(let s, _): max(0.1, s)
        case .lockstep(_, _, let s): s.map { max(0.1, $0) }
        }
    }
    var patience: Duration? { if case .lockstep(_, let p, _) = self { p } else { nil } }

    public var description: String {
        switch self {
        case .realTime(let s, let l): "real time x\(s), latency \(l) samples"
        case .lockstep(let m, let p, let s): "lockstep, margin \(m) samples, patience \(p)\(s.map { ", at most x\($0)" } ?? "")"
        }
    }
}

/// Line impairments, all drawn from one seeded generator (the same seed gives the same damage).
public struct LineImpairment: Sendable, Equatable, CustomStringConvertible {
    public enum Direction: String, Sendable, Equatable {
        /// Audio from the simulator's fax machine to the gateway (DATA_B3_IND).
        case toGateway
        /// Audio from the gateway to the simulator's fax machine (DATA_B3_REQ).
        case fromGateway
        case both
    }
    public var seed: UInt64
    /// Probability that a bit of an A-law byte on the line is inverted.
    public var bitErrorRate: Double
    /// Probability that a whole block (one DATA_B3 message's worth of audio) is lost.
    public var blockLossRate: Double
    /// A lost block is replaced by silence (a controller that fills gaps) instead of vanishing (one that
    /// drops it: the receiver's clock just skips). ECM survives dropped blocks, not silence inside a page.
    public var lostBlocksBecomeSilence: Bool
    /// The simulator's fax machine's sample clock runs this many ppm fast (negative: slow) against the line;
    /// its audio is resampled in both directions.
    public var clockDriftPPM: Double
    public var direction: Direction
    /// Line seconds before any damage starts (e.g. to let the V.21 handshake through).
    public var startAfterSeconds: Double

    public init(seed: UInt64 = 1, bitErrorRate: Double = 0, blockLossRate: Double = 0, lostBlocksBecomeSilence: Bool = false,
                clockDriftPPM: Double = 0, direction: Direction = .both, startAfterSeconds: Double = 0) {
        self.seed = seed; self.bitErrorRate = min(max(bitErrorRate, 0), 0.5); self.blockLossRate = min(max(blockLossRate, 0), 1)
        self.lostBlocksBecomeSilence = lostBlocksBecomeSilence; self.clockDriftPPM = clockDriftPPM
        self.direction = direction; self.startAfterSeconds = startAfterSeconds
    }
    public static let none = LineImpairment()
    public var isNone: Bool { bitErrorRate == 0 && blockLossRate == 0 && clockDriftPPM == 0 }

    func applies(_ d: Direction) -> Bool { direction == .both || direction == d }

    public var description: String {
        if isNone { return "none" }
        var parts: [String] = []
        if bitErrorRate > 0 { parts.append("BER \(bitErrorRate)") }
        if blockLossRate > 0 { parts.append("block loss \(blockLossRate)\(lostBlocksBecomeSilence ? " as silence" : " dropped")") }
        if clockDriftPPM != 0 { parts.append("drift \(clockDriftPPM) ppm") }
        return parts.joined(separator: ", ") + " (\(direction.rawValue), seed \(seed))"
    }
}

/// The simulator's software fax machine and its line.
public struct SoftFaxRemote: Sendable, Equatable {
    /// Station id (TSI when sending, CSID when receiving).
    public var ident: String
    /// Header line printed on each sent page.
    public var pageHeader: String?
    public var ecm: Bool
    /// Modem families offered (a receiver with only V.27ter forces 4800 bit/s).
    public var modems: Set<FaxModem>
    public var compressions: Set<LineCompression>
    public var acceptFine: Bool
    public var clock: LineClock
    /// Audio bytes per DATA_B3_IND (160 = 20 ms).
    public var blockSize: Int
    public var impairment: LineImpairment
    /// Safety limit in line time; the remote hangs up after it.
    public var maxLineSeconds: Double
    /// Keep every byte the gateway sent (SoftFaxSession.gatewayAudio), e.g. to check a greeting.
    public var recordGatewayAudio: Bool
    /// Receiving: the pages are also written here as a TIFF (G4), path in `SoftFaxSession.tiffPath`.
    public var saveDirectory: String?
    /// How long to wait for each answer from the gateway during call setup and clearing.
    public var responseTimeout: Duration

    public init(ident: String = "+49 30 1234567", pageHeader: String? = nil, ecm: Bool = true,
                modems: Set<FaxModem> = Set(FaxModem.allCases), compressions: Set<LineCompression> = Set(LineCompression.allCases),
                acceptFine: Bool = true, clock: LineClock = .lockstep(), blockSize: Int = 160, impairment: LineImpairment = .none,
                maxLineSeconds: Double = 180, recordGatewayAudio: Bool = false, saveDirectory: String? = nil,
                responseTimeout: Duration = .seconds(15)) {
        self.ident = ident; self.pageHeader = pageHeader; self.ecm = ecm; self.modems = modems.isEmpty ? [.v27ter] : modems
        self.compressions = compressions.isEmpty ? [.mh] : compressions; self.acceptFine = acceptFine; self.clock = clock
        self.blockSize = min(max(blockSize, 8), 2048); self.impairment = impairment; self.maxLineSeconds = maxLineSeconds
        self.recordGatewayAudio = recordGatewayAudio; self.saveDirectory = saveDirectory; self.responseTimeout = responseTimeout
    }

    func engineOptions(calling: Bool) -> FaxEngineOptions {
        FaxEngineOptions(calling: calling, localIdent: ident, pageHeader: pageHeader, ecm: ecm, modems: modems,
                         compressions: compressions, acceptFine: acceptFine)
    }
}

/// What happened on a software fax line, seen from the simulator's fax machine.
public struct SoftFaxSession: Sendable, Equatable {
    public enum EndedBy: String, Sendable, Equatable {
        /// The simulator's machine finished its T.30 session and hung up.
        case remote
        /// The gateway cleared the B3 link or the call first.
        case gateway
        /// `maxLineSeconds` passed.
        case lineTimeLimit
        /// The gateway's TCP connection went away.
        case connectionLost
    }
    /// The simulator's engine's verdict (nil if it never finished, e.g. connection lost).
    public var result: FaxEngineResult?
    /// Every event of the simulator's engine, in order.
    public var events: [FaxEngineEvent] = []
    /// Receiving: the pages, as received.
    public var pages: [FaxPage] = []
    /// Sending: pages the gateway confirmed (page events of the sending engine).
    public var pagesSent = 0
    /// Receiving with `saveDirectory`: the TIFF holding `pages`.
    public var tiffPath: String?
    public var endedBy: EndedBy = .remote
    /// Line time when the call ended.
    public var lineSeconds: Double = 0
    /// Ticks in which the gateway's audio was missing (after it had started sending) and silence was played.
    public var underruns = 0
    /// Samples of silence played in place of missing gateway audio.
    public var underrunSamples = 0
    /// DATA_B3_IND sent / not sent because the gateway held all 7 receive buffers (data lost, as on a controller).
    public var indicationsSent = 0
    public var indicationsDropped = 0
    /// DATA_B3_REQ received and the audio bytes in them; confirmed = played out and answered with DATA_B3_CONF
    /// (blocks still queued when the B3 link goes down are dropped unconfirmed, as by a controller).
    public var requestsReceived = 0
    public var requestsConfirmed = 0
    public var bytesFromGateway = 0
    /// Everything the gateway sent, when `recordGatewayAudio` (line format).
    public var gatewayAudio: [UInt8] = []
    /// Damage done by the impairment.
    public var bitsFlipped = 0
    public var blocksLost = 0
    /// SELECT_B_PROTOCOL_REQ seen (nil entries: default protocol) and the Info each got.
    public var selectBProtocol: [BProtocol?] = []
    public var selectBProtocolInfo: [UInt16] = []
    /// FACILITY_REQ seen (e.g. DTMF listen on a voice call).
    public var facilityRequests = 0
    /// Protocol rules the gateway broke on this line.
    public var violations: [String] = []
}

// MARK: - Impairment helpers


/// Damage for one direction of the line.
struct LineDamage {
    let impairment: LineImpairment
    let active: Bool
    var random: SeededRandom
    /// Bits until the next inverted bit (geometric distribution).
    var bitsToNextError: Double
    var bitsFlipped = 0
    var blocksLost = 0

    init(_ impairment: LineImpairment, direction: LineImpairment.Direction, salt: UInt64) {
        self.impairment = impairment
        active = !impairment.isNone && impairment.applies(direction)
        random = SeededRandom(seed: (impairment.seed ^ salt) &+ 0x9E37_79B9_7F4A_7C15)   // as tuned before SoftFax shared it
        bitsToNextError = 0
        bitsToNextError = drawGap()
    }

    mutating func drawGap() -> Double {
        let p = impairment.bitErrorRate
        guard p > 0 else { return .infinity }
        return (-log(random.unit()) / -log1p(-p)).rounded(.down)
    }

    enum Fate { case deliver, drop, silence }

    /// Decides about one block of line bytes and damages its bits in place.
    mutating func apply(_ block: inout [UInt8], lineSeconds: Double) -> Fate {
        guard active, lineSeconds >= impairment.startAfterSeconds else { return .deliver }
        if impairment.blockLossRate > 0 && random.unit() <= impairment.blockLossRate {
            blocksLost += 1
            return impairment.lostBlocksBecomeSilence ? .silence : .drop
        }
        if impairment.bitErrorRate > 0 {
            var bit = 0.0
            let total = Double(block.count * 8)
            while bit + bitsToNextError < total {
                bit += bitsToNextError
                let i = Int(bit)
                block[i >> 3] ^= UInt8(1) << UInt8(i & 7)
                bitsFlipped += 1
                bit += 1
                bitsToNextError = drawGap()
            }
            bitsToNextError -= total - bit
        }
        return .deliver
    }
}

/// Linear-interpolation resampler for clock drift: output sample k is the input at position k × step.
struct DriftResampler {
    let step: Double
    var buffer: [Int16] = []
    var position: Double = 0

    /// Input samples still needed before `n` more outputs can be made.
    func inputNeeded(for n: Int) -> Int {
        max(0, Int((position + Double(n - 1) * step).rounded(.down)) + 2 - buffer.count)
    }
    mutating func push(_ samples: [Int16]) { buffer += samples }
    mutating func pull(max n: Int) -> [Int16] {
        var out: [Int16] = []
        out.reserveCapacity(n)
        while out.count < n {
            let i = Int(position)
            guard i + 1 < buffer.count else { break }
            let f = position - Double(i)
            out.append(Int16(clamping: Int((Double(buffer[i]) * (1 - f) + Double(buffer[i + 1]) * f).rounded())))
            position += step
        }
        let k = min(Int(position), buffer.count)
        buffer.removeFirst(k)
        position -= Double(k)
        return out
    }
}

// MARK: - The line

/// How a software fax line ended, for the call script that clears the call.
enum SoftFaxLineEnd: Equatable {
    /// The simulator's machine is done: the call script hangs up (DISCONNECT_B3_IND, DISCONNECT_IND).
    case remoteDone
    case lineTimeLimit
    /// DISCONNECT_B3_REQ (the B3 link is already confirmed down by the reader thread).
    case gatewayB3Down
    /// DISCONNECT_REQ.
    case gatewayHungUp
    case connectionLost
}

extension CapiSimulator {
    /// Runs the audio of one B-channel until one side is done. The engine is owned by this call alone.
    /// `gatewayAudioMessages` receive the gateway's messages for this PLCI (DATA_B3_REQ, DATA_B3_RESP,
    /// FACILITY_REQ, SELECT_B_PROTOCOL_REQ, DISCONNECT_*_REQ).
    func runSoftFaxLine(_ listen: Listen, plci: UInt32, ncci: UInt32, inbox: MessageInbox, engine: FaxEngine,
                        remote: SoftFaxRemote, session: inout SoftFaxSession) async -> SoftFaxLineEnd {
        let tick = remote.blockSize
        let tickSeconds = Double(tick) / 8000
        let clock = remote.clock
        let impairment = remote.impairment
        var toGateway = LineDamage(impairment, direction: .toGateway, salt: 0x746F_6777)
        var fromGateway = LineDamage(impairment, direction: .fromGateway, salt: 0x6672_6777)
        // Drift: the machine's clock is (1 + ppm) × the line's. It makes 1+e samples per line sample and consumes
        // as many; resampling keeps the line at exactly 8000/s.
        let drift = impairment.clockDriftPPM * 1e-6
        var txResampler = drift != 0 ? DriftResampler(step: 1 + drift) : nil
        var rxResampler = drift != 0 ? DriftResampler(step: 1 / (1 + drift)) : nil

        // The gateway's audio waiting to be played out, after `latency` samples of line silence.
        var fifo: [UInt8] = []
        var fifoRead = 0
        var prefill = clock.latency
        var consumed = 0          // gateway bytes played out so far
        var received = 0          // gateway bytes received so far
        var pendingConf: [(request: CapiMessage, handle: UInt16, end: Int)] = []
        var unanswered = 0        // DATA_B3_IND without DATA_B3_RESP
        var indHandle: UInt16 = 0
        var gatewayStarted = false
        // Lockstep: the gateway let the patience run out, so it is not sending (a voice call's gateway is silent
        // while it records). Until its next block the line runs at `silentSpeed` instead of waiting each tick.
        var gatewaySilent = false
        let silentSpeed = clock.speed ?? 10
        var end: SoftFaxLineEnd? = nil
        var tailTicks: Int? = nil  // after the machine finished: a little more line time to get its last frame out
        var n = 0
        // Pacing reference: (real instant, tick number); moved when the pace changes (lockstep → silent).
        var pace = (at: ContinuousClock.now, tick: 0)

        func handle(_ m: CapiMessage) {
            switch m.body {
            case .dataB3Req(let to, let h, _, let data):
                if to != ncci { session.violations.append("DATA_B3_REQ for NCCI 0x\(String(to, radix: 16))") }
                if data.count > 2048 { session.violations.append("DATA_B3_REQ of \(data.count) bytes (> 2048)") }
                fifo += data
                received += data.count
                pendingConf.append((m, h, received))
                if pendingConf.count > 7 { session.violations.append("\(pendingConf.count) DATA_B3_REQ unconfirmed (> 7)") }
                session.requestsReceived += 1
                session.bytesFromGateway += data.count
                if remote.recordGatewayAudio { session.gatewayAudio += data }
                gatewayStarted = true
                gatewaySilent = false
            case .dataB3Resp:
                unanswered = max(0, unanswered - 1)
            case .disconnectB3Req:
                if end == nil { end = .gatewayB3Down }
            case .disconnectReq:
                end = .gatewayHungUp
            case .other(.facility, .req, _):
                session.facilityRequests += 1
                if let f = CapiFacility(m) {
                    reply(listen.connection, to: m, CapiFacility.confirmation(address: f.address, info: 0, selector: f.selector))
                }
            case .other(.selectBProtocol, .req, _):
                let bp = CapiSelectBProtocol.decodeRequest(m)?.bProtocol
                let info = refusal(for: bp)
                session.selectBProtocol.append(bp)
                session.selectBProtocolInfo.append(info)
                reply(listen.connection, to: m, CapiSelectBProtocol.confirmation(plci: plci, info: info))
            default:
                break
            }
        }
        /// Confirms every DATA_B3_REQ whose audio has been played out (a controller frees the buffer then).
        func confirmPlayed() {
            while let first = pendingConf.first, first.end <= consumed {
                pendingConf.removeFirst()
                session.requestsConfirmed += 1
                reply(listen.connection, to: first.request, .dataB3Conf(ncci: ncci, handle: first.handle, info: .noError))
            }
        }
        /// Takes `count` bytes of the gateway's audio off the line (silence where there is none).
        func playOut(_ count: Int) -> (bytes: [UInt8], missing: Int) {
            var out: [UInt8] = []
            out.reserveCapacity(count)
            let fromPrefill = min(prefill, count)
            prefill -= fromPrefill
            out += repeatElement(G711.lineSilence, count: fromPrefill)
            let fromFifo = min(fifo.count - fifoRead, count - fromPrefill)
            out += fifo[fifoRead..<fifoRead + fromFifo]
            fifoRead += fromFifo
            consumed += fromFifo
            if fifoRead > 65536 { fifo.removeFirst(fifoRead); fifoRead = 0 }
            let missing = count - out.count
            out += repeatElement(G711.lineSilence, count: missing)
            return (out, missing)
        }
        func feed(_ lineBytes: [UInt8]) {
            let pcm = G711.pcm(fromLine: lineBytes)
            if rxResampler != nil {
                rxResampler!.push(pcm)
                let out = rxResampler!.pull(max: pcm.count * 2)
                if !out.isEmpty { engine.receive(out) }
            } else {
                engine.receive(pcm)
            }
        }
        func collectEvents() {
            for e in engine.takeEvents() {
                session.events.append(e)
                switch e {
                case .page(_, let page):
                    if let page { session.pages.append(page) } else { session.pagesSent += 1 }
                case .finished(let r): session.result = r
                case .negotiated: break
                }
            }
        }
        /// Waits for the next message (lockstep); false when the patience ran out or the connection closed.
        func await1(_ patience: Duration) async -> Bool {
            switch await inbox.next(timeout: patience) {
            case .message(let m): handle(m); return true
            case .timeout: return false
            case .closed: end = .connectionLost; return false
            }
        }

        while true {
            let lineSeconds = Double(n) * tickSeconds
            session.lineSeconds = lineSeconds
            inbox.drain().forEach(handle)
            if let e = end {
                // Everything the gateway sent before it hung up reaches the machine first (its last frame may be in it).
                if e != .connectionLost {
                    let rest = fifo.count - fifoRead
                    if rest > 0 { feed(playOut(rest).bytes) }
                    confirmPlayed()
                }
                if !engine.isFinished { engine.lineDisconnected() }
                collectEvents()
                session.endedBy = e == .connectionLost ? .connectionLost : .gateway
                return e
            }
            if lineSeconds > remote.maxLineSeconds {
                engine.lineDisconnected()
                collectEvents()
                session.endedBy = .lineTimeLimit
                return .lineTimeLimit
            }

            // 1. The gateway's audio for this tick, to the machine.
            if let patience = clock.patience, !gatewaySilent {
                // Lockstep: wait for the gateway rather than starve its modem (also for its first block).
                let deadline = ContinuousClock.now + patience
                while end == nil && prefill + fifo.count - fifoRead < tick {
                    let left = deadline - ContinuousClock.now
                    let got = left > .zero ? await await1(left) : false
                    if !got {
                        gatewaySilent = end == nil
                        pace = (ContinuousClock.now, n)
                        break
                    }
                }
                if end != nil { continue }
            }
            let played = playOut(tick)
            var gatewayBytes = played.bytes
            let missing = played.missing
            confirmPlayed()
            if missing > 0 && gatewayStarted {
                session.underruns += 1
                session.underrunSamples += missing
            }
            switch fromGateway.apply(&gatewayBytes, lineSeconds: lineSeconds) {
            case .deliver: feed(gatewayBytes)
            case .silence: feed([UInt8](repeating: G711.lineSilence, count: tick))
            case .drop: break
            }

            // 2. The machine's audio for this tick, to the gateway.
            var pcm: [Int16]
            if txResampler != nil {
                let need = txResampler!.inputNeeded(for: tick)
                if need > 0 { txResampler!.push(engine.transmit(count: need)) }
                pcm = txResampler!.pull(max: tick)
                if pcm.count < tick { pcm += repeatElement(0, count: tick - pcm.count) }
            } else {
                pcm = engine.transmit(count: tick)
            }
            var block = G711.lineBytes(pcm)
            var deliver = true
            switch toGateway.apply(&block, lineSeconds: lineSeconds) {
            case .deliver: break
            case .silence: block = [UInt8](repeating: G711.lineSilence, count: tick)
            case .drop:
                deliver = false
                // A gateway paced by DATA_B3_IND sends one block less for it: that gap is the impairment's doing,
                // so the line waits for it as for latency instead of stalling or counting an underrun.
                prefill += tick
            }
            if deliver {
                if unanswered >= 7, let patience = clock.patience {
                    let deadline = ContinuousClock.now + patience
                    while end == nil && unanswered >= 7 {
                        let left = deadline - ContinuousClock.now
                        let got = left > .zero ? await await1(left) : false
                        if !got { break }
                    }
                }
                if unanswered < 7 {
                    indHandle &+= 1
                    unanswered += 1
                    indicate(listen, .dataB3Ind(ncci: ncci, handle: indHandle, flags: 0, data: block))
                    session.indicationsSent += 1
                } else {
                    session.indicationsDropped += 1
                    prefill += tick   // as for a dropped block: the gateway will not answer this one
                }
            }
            collectEvents()
            session.bitsFlipped = toGateway.bitsFlipped + fromGateway.bitsFlipped
            session.blocksLost = toGateway.blocksLost + fromGateway.blocksLost

            // 3. The machine is done: a little more line time for its last frame (DCN), then it hangs up.
            if engine.isFinished {
                if tailTicks == nil { tailTicks = Int(0.3 / tickSeconds) + 1 }
                tailTicks! -= 1
                if tailTicks! <= 0 {
                    session.endedBy = .remote
                    return .remoteDone
                }
            }

            n += 1
            if let speed = clock.speed ?? (gatewaySilent ? silentSpeed : nil) {
                let next = pace.at + .nanoseconds(Int64(Double(n - pace.tick) * tickSeconds / speed * 1e9))
                if next > ContinuousClock.now { try? await Task.sleep(until: next, clock: .continuous) }
            } else if n % 16 == 0 {
                await Task.yield()
            }
        }
    }

    /// Writes received pages as a G4 TIFF next to the others in `directory`; nil when there is nothing to write.
    static func saveTIFF(_ pages: [FaxPage], in directory: String?, name: String) -> String? {
        guard let directory, !pages.isEmpty else { return nil }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent(name)
        do { try TIFFWriter.write(pages, to: path, compression: .g4) } catch { return nil }
        return path
    }
}
