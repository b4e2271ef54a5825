import ArgumentParser
import FaxgateCore
import Foundation

/// `faxgate intake`: the mail-intake ledger with what became of each refusal reply, and the count of refusals
/// nobody was told about (backscatter protection) — the admin's counter.
struct IntakeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intake", abstract: "List received fax orders, newest first, with the decision and whether the sender was answered.")
    @OptionGroup var options: ConfigOption
    @Option(name: .shortAndLong) var limit = 50
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        let config = try options.loadOrExit()
        let storage = try PluginRegistry.storage(config, readOnly: true)
        let intakes = try await storage.recentIntakes(limit: limit)
        if json { return try TextOutput.printJSONLines(intakes) }
        var rows = [["ID", "STATE", "REPLY", "ALERT", "RECEIVED", "SENDER", "DETAIL"]]
        for r in intakes {
            rows.append(["\(r.id ?? 0)", r.state.rawValue, r.reply?.rawValue ?? "-", r.adminAlert ? "mta" : "-",
                         JournalTable.time(r.receivedAt), r.replyAddress ?? "-", String((r.detail ?? "").prefix(100))])
        }
        print(TextOutput.table(rows))
        let day = Date().addingTimeInterval(-86400)
        let recent = intakes.filter { ($0.decidedAt ?? $0.receivedAt) >= day }
        print("\nlast 24 h (of the \(intakes.count) listed): not answered \(recent.filter { $0.reply == .suppressed }.count), "
              + "reply limit \(recent.filter { $0.reply == .rateLimited }.count), MTA alerts \(recent.filter(\.adminAlert).count)")
    }
}
