import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// Issue 11: two `faxgate serve` nodes on one PostgreSQL database, each with its own simulated controller (its
/// own lines). Jobs queued by the CLI go to whichever node claims them first; each is dialled exactly once across
/// both; after one node is SIGKILLed (idle), the survivor dials everything queued afterwards.
final class TwoNodeEndToEndTests: XCTestCase {
    /// Node A's harness keeps its database; node B's config is pointed at A's database (B's own stays empty).
    private func twoNodes() throws -> (GatewayHarness, GatewayHarness) {
        let options = GatewayHarness.Options(storage: .postgres, numberLine: "{country_code: \"49\", area_code: \"30\"}")
        let a = try GatewayHarness(options)
        let b = try GatewayHarness(options)
        guard let dbA = a.postgresDatabase, let dbB = b.postgresDatabase else { throw ToolError(description: "not on PostgreSQL") }
        for (h, id) in [(a, "node-a"), (b, "node-b")] {
            var yaml = try String(contentsOfFile: h.configPath, encoding: .utf8)
            yaml = yaml.replacingOccurrences(of: "database: \(dbB)\n", with: "database: \(dbA)\n")
            // Distinct ids (leases name them); short heartbeats so a test does not wait for the defaults.
            yaml += "\nnode:\n  id: \(id)\n  heartbeat_seconds: 1\n  lease_seconds: 5\n"
            try yaml.write(toFile: h.configPath, atomically: true, encoding: .utf8)
        }
        return (a, b)
    }

    private func send(_ h: GatewayHarness, to number: String, pdf: String) throws {
        let out = try runTool(GatewayHarness.faxgateBinary, ["send", "-c", h.configPath, "--to", number, pdf])
        XCTAssertTrue(out.stdoutText.hasPrefix("queued:"), out.stdoutText)
    }

    /// Called numbers over both simulators, each with how often it was dialled.
    private func dialled(_ nodes: [GatewayHarness]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for h in nodes { for call in h.simulator.outgoingCalls { counts[call.calledNumber, default: 0] += 1 } }
        return counts
    }

    func testTwoNodesOneQueue_eachJobDialledOnce_andTheSurvivorDialsAfterTheOtherIsKilled() async throws {
        _ = try PostgresServer.shared()
        let (a, b) = try twoNodes()
        defer { b.shutdown(); a.shutdown() }
        let work = try TemporaryDirectory("two-nodes")
        let pdf = try MailToFaxEndToEndTests.twoPagePDF(in: work)
        try await a.startGateway()
        try await b.startGateway()

        let first = (0..<4).map { "030 55510\($0)" }
        for n in first { try send(a, to: n, pdf: pdf) }
        _ = try await a.waitForQueue(timeout: 120) { $0.count == first.count && $0.allSatisfy { $0.state == .done } }
        var counts = dialled([a, b])
        XCTAssertEqual(counts.values.reduce(0, +), first.count, "every job dialled, none twice: \(counts)")
        XCTAssertTrue(counts.values.allSatisfy { $0 == 1 }, "\(counts)")
        let byB = b.simulator.outgoingCalls.count
        print("two nodes: node-a dialled \(a.simulator.outgoingCalls.count), node-b \(byB) of \(first.count)")

        // Node B dies while idle; the jobs queued afterwards are all A's to dial (NOTIFY or polling wakes it).
        b.stopGateway(signal: SIGKILL)
        let second = (0..<2).map { "030 55520\($0)" }
        for n in second { try send(a, to: n, pdf: pdf) }
        let jobs = try await a.waitForQueue(timeout: 120) {
            $0.count == first.count + second.count && $0.allSatisfy { $0.state == .done }
        }
        counts = dialled([a, b])
        XCTAssertEqual(counts.values.reduce(0, +), jobs.count, "every job dialled, none twice: \(counts)")
        XCTAssertTrue(counts.values.allSatisfy { $0 == 1 }, "\(counts)")
        XCTAssertEqual(b.simulator.outgoingCalls.count, byB, "the killed node dialled nothing more")
    }
}
