import ArgumentParser
import CapiSimulator
import FaxDocument
import Foundation
import SoftFax
import Synchronization

/// Demo controller: waits for a gateway on the rcapi port, then places the given fax calls.
@main
struct CapiSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capisim", abstract: "CAPI 2.0 controller simulator (rcapi over TCP) that places incoming fax calls and answers outgoing ones.",
        discussion: """
        Outgoing calls from the gateway are answered as fax by default. --answer NUMBER:B1,B2,… scripts the calls to \
        NUMBER, one behaviour per call, the last one repeating: answer, busy, noanswer, notfax, reject[=0xCODE] \
        (default 0x3481), abort=K (remote abort after page K), softfax (a spandsp fax machine on a transparent line \
        receives; pages go to --receive-dir), softfax-fail (same, but training fails). Example: \
        --answer 0301234567:busy,busy,answer

        --profile transparent makes the controller one without fax firmware (as a FRITZ!Box): B 4/4/4 is refused \
        with 0x3001, and a gateway must run its own fax modem. --soft-call FROM:TO:FILE (TIFF or SFF) places a \
        call from a spandsp fax machine that sends FILE as audio on a 1/1/0 line.
        """)

    @Option(help: "TCP port on 127.0.0.1 (below 32768).") var port: UInt16 = 2662
    @Option(help: "Number of controllers.") var controllers: Int = 1
    @Option(name: .customLong("call"), help: "FROM:TO:FILE.sff — an incoming fax call (repeatable).") var calls: [String] = []
    @Option(help: "Remote station id reported in the NCPI.") var stationID: String = "+49 30 1234567"
    @Option(help: "Bit rate reported in the NCPI.") var rate: UInt16 = 14400
    @Flag(help: "Report normal (98 lpi) resolution instead of fine.") var normalResolution = false
    @Option(help: "Type of the calling number in CONNECT_IND: unknown, international, national, subscriber.")
    var callingType: String = "unknown"
    @Option(help: "Presentation of the calling number: allowed, restricted (CLIR), unavailable.")
    var presentation: String = "allowed"
    @Option(help: "Seconds to wait for a gateway's LISTEN_REQ.") var waitListen: Int = 30
    @Flag(help: "Keep serving after the calls until interrupted.") var keepRunning = false
    @Flag(help: "Print every message exchanged.") var verbose = false
    @Option(name: .customLong("answer"), help: "NUMBER[:BEHAVIOUR,…] — how outgoing calls to NUMBER are answered (repeatable).")
    var answers: [String] = []
    @Option(help: "Write the document of every outgoing call to this directory (<n>-<number>.sff).") var saveReceived: String?
    @Option(help: "Controller profile: faxAndVoice (fax firmware, B 4/4/4) or transparent (no T.30, like a FRITZ!Box).")
    var profile: String = "faxAndVoice"
    @Option(help: "Wire protocol: rcapi or fritzbox (AVM CAPI over TCP).") var wire: String = "rcapi"
    @Option(name: .customLong("soft-call"), help: "FROM:TO:FILE (.tif/.tiff or .sff) — an incoming call from a software fax machine (repeatable).")
    var softCalls: [String] = []
    @Option(help: "Directory for the TIFFs the software fax machine receives (--answer NUMBER:softfax).") var receiveDir: String?
    @Option(help: "Software fax line speed (times real time); 0 = lockstep with the gateway (as fast as it answers).")
    var lineSpeed: Double = 1
    @Flag(help: "Software fax machine: no error correction mode.") var noECM = false
    @Option(help: "Software fax machine: fastest modem, 14400 (V.17), 9600 (V.29) or 4800 (V.27ter).") var maxRate: Int = 14400
    @Option(help: "Software fax line: probability of each A-law bit flipping.") var bitErrorRate: Double = 0
    @Option(help: "Software fax line: probability of a 20 ms block being lost.") var blockLoss: Double = 0
    @Flag(help: "Software fax line: lost blocks become silence instead of vanishing.") var lossAsSilence = false
    @Option(help: "Software fax line: the machine's clock drift in ppm.") var driftPPM: Double = 0
    @Option(help: "Seed for the line impairments.") var seed: UInt64 = 1

    /// Q.931 octet 3 (ISDN numbering plan) and 3a values for the calling party number.
    static let typeOctets: [String: UInt8] = ["unknown": 0x00, "international": 0x11, "national": 0x21, "subscriber": 0x41]
    static let presentationOctets: [String: UInt8] = ["allowed": 0x80, "restricted": 0xA0, "unavailable": 0xC0]

    static func behaviours(_ spec: String) throws -> (String, [OutgoingBehaviour]) {
        let parts = spec.split(separator: ":", maxSplits: 1).map(String.init)
        guard let number = parts.first, !number.isEmpty else { throw ValidationError("--answer \(spec): missing number") }
        let list = parts.count > 1 ? parts[1].split(separator: ",").map(String.init) : ["answer"]
        return (number, try list.map { word in
            let kv = word.lowercased().split(separator: "=", maxSplits: 1).map(String.init)
            let value = kv.count > 1 ? kv[1] : nil
            switch kv[0] {
            case "answer": return .answer()
            case "busy": return .busy
            case "noanswer", "no-answer": return .noAnswer
            case "notfax", "not-a-fax": return .notAFax
            case "reject":
                let hex = value.map { $0.hasPrefix("0x") ? String($0.dropFirst(2)) : $0 } ?? "3481"
                guard let code = UInt16(hex, radix: 16) else { throw ValidationError("--answer \(spec): bad reject code \(value ?? "")") }
                return .rejectNumber(code)
            case "softfax", "softfax-fail": return .answerSoftFax(SoftFaxAnswer(failTraining: kv[0] == "softfax-fail"))
            case "abort":
                guard let k = value.flatMap({ Int($0) }), k >= 0 else { throw ValidationError("--answer \(spec): abort=K needs a page number") }
                return .abortAfterPage(k)
            default: throw ValidationError("--answer \(spec): unknown behaviour \(word)")
            }
        })
    }

    func validate() throws {
        guard port > 0 && port < 32768 else { throw ValidationError("--port must be 1…32767 (libcapi20 stores it in a signed short)") }
        for c in calls where c.split(separator: ":", maxSplits: 2).count != 3 {
            throw ValidationError("--call \(c): expected FROM:TO:FILE")
        }
        for a in answers { _ = try Self.behaviours(a) }
        guard Self.typeOctets[callingType] != nil else { throw ValidationError("--calling-type: unknown, international, national or subscriber") }
        guard Self.presentationOctets[presentation] != nil else { throw ValidationError("--presentation: allowed, restricted or unavailable") }
        guard controllerProfile != nil else { throw ValidationError("--profile: faxAndVoice or transparent") }
        guard CapiWire(rawValue: wire) != nil else { throw ValidationError("--wire: rcapi or fritzbox") }
        for c in softCalls where c.split(separator: ":", maxSplits: 2).count != 3 {
            throw ValidationError("--soft-call \(c): expected FROM:TO:FILE")
        }
        guard [14400, 9600, 4800].contains(maxRate) else { throw ValidationError("--max-rate: 14400, 9600 or 4800") }
        guard lineSpeed >= 0 else { throw ValidationError("--line-speed must be ≥ 0") }
    }

    var controllerProfile: ControllerProfile? {
        ControllerProfile.allCases.first { $0.rawValue.lowercased() == profile.lowercased() }
    }

    /// The software fax machine's settings from the command line.
    func softFaxRemote(ident: String) -> SoftFaxRemote {
        SoftFaxRemote(
            ident: ident, ecm: !noECM, modems: FaxModem.families(upTo: maxRate),
            clock: lineSpeed == 0 ? .lockstep() : .realTime(speed: lineSpeed),
            impairment: LineImpairment(seed: seed, bitErrorRate: bitErrorRate, blockLossRate: blockLoss,
                                       lostBlocksBecomeSilence: lossAsSilence, clockDriftPPM: driftPPM),
            saveDirectory: receiveDir)
    }

    /// Pages of a TIFF or SFF file.
    static func pages(of path: String) throws -> [FaxPage] {
        let lower = path.lowercased()
        if lower.hasSuffix(".sff") {
            return try SFFReader.read([UInt8](Data(contentsOf: URL(fileURLWithPath: path)))).pages
        }
        return try TIFFReader.read(path: path)
    }

    func run() async throws {
        let sim = CapiSimulator(port: port, controllers: controllers, wire: CapiWire(rawValue: wire) ?? .rcapi,
                                profile: controllerProfile ?? .faxAndVoice)
        try sim.start()
        print("capisim: listening on 127.0.0.1:\(sim.port) (\(sim.wire.rawValue), profile \(sim.controllerProfile.rawValue))")
        for a in answers {
            var (number, list) = try Self.behaviours(a)
            // The software fax machine takes the line settings from the command line.
            list = list.map { b in
                guard case .answerSoftFax(let answer) = b else { return b }
                return .answerSoftFax(SoftFaxAnswer(remote: softFaxRemote(ident: "+49 30 7654321"), failTraining: answer.failTraining))
            }
            sim.setOutgoingBehaviour(for: number, list)
            print("capisim: calls to \(number): \(list.map(\.description).joined(separator: ", ")) (last repeats)")
        }
        if let dir = saveReceived {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        fflush(nil)
        let saveDir = saveReceived
        let counter = Counter()
        sim.onOutgoingCallEnded { call in
            let n = counter.next()
            var line = "capisim: outgoing call \(n) \(call.callingNumber ?? "-")\(call.callingNumberRestricted ? " (CLIR)" : "") -> \(call.calledNumber): \(call.behaviour); station id \"\(call.faxConfiguration?.stationID ?? "")\", headline \"\(call.faxConfiguration?.headline ?? "")\"; \(call.document.count) bytes in \(call.blocks) blocks (window \(call.maxOutstanding)); pages \(call.pagesReported ?? 0), Reason_B3 0x\(String(call.reasonB3 ?? 0, radix: 16)), Reason 0x\(String(call.reason ?? 0, radix: 16))"
            if let refused = call.refusedInfo { line += "; B protocol refused with 0x\(String(refused, radix: 16))" }
            if let soft = call.softFax {
                line += "; software fax: \(soft.result.map { "\($0.kind.rawValue) (\($0.text)), \($0.bitRate ?? 0) bit/s" } ?? "no result"), \(soft.pages.count) pages received, \(String(format: "%.1f", soft.lineSeconds)) s of line, \(soft.underruns) underruns"
                if let tiff = soft.tiffPath { line += "; saved \(tiff)" }
            }
            if !call.violations.isEmpty { line += "; VIOLATIONS: " + call.violations.joined(separator: "; ") }
            if let saveDir, !call.document.isEmpty {
                let safe = String(call.calledNumber.filter { $0.isNumber || $0 == "+" }.prefix(32))
                let path = "\(saveDir)/\(n)-\(safe.isEmpty ? "unknown" : safe).sff"
                do { try Data(call.document).write(to: URL(fileURLWithPath: path)); line += "; saved \(path)" }
                catch { line += "; cannot save \(path): \(error)" }
            }
            print(line)
            fflush(nil)   // reported from a simulator thread as the call ends: visible at once in pipes and logs
        }
        var failures = 0
        if !calls.isEmpty || !softCalls.isEmpty {
            print("capisim: waiting up to \(waitListen) s for a gateway to LISTEN")
            try await sim.waitForListen(timeout: .seconds(waitListen))
            print("capisim: gateway is listening")
        }
        for spec in calls {
            let parts = spec.split(separator: ":", maxSplits: 2).map(String.init)
            let document = try [UInt8](Data(contentsOf: URL(fileURLWithPath: parts[2])))
            var call = SimulatedFaxCall(from: parts[0], to: parts[1], document: document, rate: rate,
                                        fine: !normalResolution, remoteStationID: stationID)
            call.callingTypeAndPlan = Self.typeOctets[callingType] ?? 0
            call.callingPresentation = Self.presentationOctets[presentation]
            do {
                let r = try await sim.placeFaxCall(call)
                if r.accepted {
                    print("capisim: call \(parts[0]) -> \(parts[1]) accepted (B protocol \(r.bProtocol.map { "\($0.b1)/\($0.b2)/\($0.b3)" } ?? "default"), alerted: \(r.alerted)); sent \(r.bytesSent) bytes in \(r.blocksSent) blocks; Reason_B3 0x\(String(r.reasonB3 ?? 0, radix: 16)), Reason 0x\(String(r.reason ?? 0, radix: 16))")
                } else {
                    print("capisim: call \(parts[0]) -> \(parts[1]) rejected with code 0x\(String(r.rejectCode, radix: 16))")
                    failures += 1
                }
            } catch {
                print("capisim: call \(parts[0]) -> \(parts[1]) failed: \(error)")
                failures += 1
            }
        }
        for spec in softCalls {
            let parts = spec.split(separator: ":", maxSplits: 2).map(String.init)
            do {
                let pages = try Self.pages(of: parts[2])
                var call = SimulatedSoftFaxCall(from: parts[0], to: parts[1], pages: pages, remote: softFaxRemote(ident: stationID))
                call.callingTypeAndPlan = Self.typeOctets[callingType] ?? 0
                call.callingPresentation = Self.presentationOctets[presentation]
                let r = try await sim.placeSoftFaxCall(call)
                let bp = r.bProtocol.map { "\($0.b1)/\($0.b2)/\($0.b3)" } ?? "default"
                if let refused = r.refusedInfo {
                    print("capisim: soft fax \(parts[0]) -> \(parts[1]): B protocol \(bp) refused with 0x\(String(refused, radix: 16))")
                    failures += 1
                } else if !r.accepted {
                    print("capisim: soft fax \(parts[0]) -> \(parts[1]) rejected with code 0x\(String(r.rejectCode, radix: 16))")
                    failures += 1
                } else if let s = r.session {
                    let result = s.result.map { "\($0.kind.rawValue) (\($0.text)), \($0.bitRate ?? 0) bit/s, ECM \($0.ecm == true ? "on" : "off")" } ?? "no result"
                    print("capisim: soft fax \(parts[0]) -> \(parts[1]) (B protocol \(bp)): \(result); \(s.pagesSent)/\(pages.count) pages sent in \(String(format: "%.1f", s.lineSeconds)) s of line; \(s.underruns) underruns; ended by \(s.endedBy.rawValue)")
                    if s.result?.succeeded != true { failures += 1 }
                } else {
                    print("capisim: soft fax \(parts[0]) -> \(parts[1]) (B protocol \(bp)): \(r.problem ?? "no line")")
                    failures += 1
                }
            } catch {
                print("capisim: soft fax \(parts[0]) -> \(parts[1]) failed: \(error)")
                failures += 1
            }
        }
        if verbose { sim.messages.forEach { print("  \($0)") } }
        if keepRunning || (calls.isEmpty && softCalls.isEmpty && (!answers.isEmpty || saveReceived != nil)) {
            print("capisim: running; press Ctrl-C to stop")
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        sim.stop()
        if failures > 0 { throw ExitCode(1) }
    }
}

/// Numbers the outgoing calls in the order they end (the callback runs on simulator threads).
final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}
