import ArgumentParser
import CapiSimulator
import Foundation

/// Demo controller: waits for a gateway on the rcapi port, then places the given fax calls.
@main
struct CapiSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capisim", abstract: "CAPI 2.0 controller simulator (rcapi over TCP) that places incoming fax calls.")

    @Option(help: "TCP port on 127.0.0.1 (below 32768).") var port: UInt16 = 2662
    @Option(help: "Number of controllers.") var controllers: Int = 1
    @Option(name: .customLong("call"), help: "FROM:TO:FILE.sff — an incoming fax call (repeatable).") var calls: [String] = []
    @Option(help: "Remote station id reported in the NCPI.") var stationID: String = "+49 30 1234567"
    @Option(help: "Bit rate reported in the NCPI.") var rate: UInt16 = 14400
    @Flag(help: "Report normal (98 lpi) resolution instead of fine.") var normalResolution = false
    @Option(help: "Seconds to wait for a gateway's LISTEN_REQ.") var waitListen: Int = 30
    @Flag(help: "Keep serving after the calls until interrupted.") var keepRunning = false
    @Flag(help: "Print every message exchanged.") var verbose = false

    func validate() throws {
        guard port > 0 && port < 32768 else { throw ValidationError("--port must be 1…32767 (libcapi20 stores it in a signed short)") }
        for c in calls where c.split(separator: ":", maxSplits: 2).count != 3 {
            throw ValidationError("--call \(c): expected FROM:TO:FILE")
        }
    }

    func run() async throws {
        let sim = CapiSimulator(port: port, controllers: controllers)
        try sim.start()
        print("capisim: listening on 127.0.0.1:\(sim.port)")
        var failures = 0
        if !calls.isEmpty {
            print("capisim: waiting up to \(waitListen) s for a gateway to LISTEN")
            try await sim.waitForListen(timeout: .seconds(waitListen))
            print("capisim: gateway is listening")
        }
        for spec in calls {
            let parts = spec.split(separator: ":", maxSplits: 2).map(String.init)
            let document = try [UInt8](Data(contentsOf: URL(fileURLWithPath: parts[2])))
            let call = SimulatedFaxCall(from: parts[0], to: parts[1], document: document, rate: rate,
                                        fine: !normalResolution, remoteStationID: stationID)
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
        if verbose { sim.messages.forEach { print("  \($0)") } }
        if keepRunning {
            print("capisim: running; press Ctrl-C to stop")
            while true { try await Task.sleep(for: .seconds(3600)) }
        }
        sim.stop()
        if failures > 0 { throw ExitCode(1) }
    }
}
