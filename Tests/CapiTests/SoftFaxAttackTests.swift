// The software fax channel (engine + pacing on a transparent B-channel) against a hostile or broken other side,
// hand-driven without I/O: a remote spandsp fax machine in virtual time, a controller that never confirms,
// blocks of sizes no sane controller sends, two calls at once.
@testable import CAPITransport
import FaxDocument
import FaxgateCore
import Foundation
import SoftFax
import TestSupport
import Testing
import VoiceAudio

@Suite struct SoftFaxAttackTests {
    func receiving(_ plci: UInt32, in dir: String) throws -> SoftFaxChannel {
        try SoftFaxChannel(plci: plci, ncci: plci | 0x10000, options: FaxEngineOptions(calling: false, localIdent: "+49 40 1"),
                           send: nil, workDirectory: dir)
    }

    /// Open descriptors of this process that point into `directory` (deleted files included): other tests
    /// running at the same time open their own files, so only ours are counted.
    static func openFileDescriptors(into directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd)).flatMap { $0.hasPrefix(directory) ? $0 : nil }
        }
    }

    /// One call: a remote sending fax machine and our receiving channel, joined by the B-channel's A-law; the
    /// controller confirms every block at once.
    final class Call {
        let remote: FaxEngine
        let channel: SoftFaxChannel
        var events: [FaxEngineEvent] = []
        init(remote: FaxEngine, channel: SoftFaxChannel) { self.remote = remote; self.channel = channel }
        var done: Bool { channel.isFinished && remote.isFinished }
        func step() {
            let line = remote.transmit(count: 160).map(G711.lineByte)
            let (blocks, evs) = channel.received(line)
            events += evs
            var pending = blocks
            while !pending.isEmpty {
                let b = pending.removeFirst()
                remote.receive(b.data.map(G711.lineSample))
                pending += channel.confirmed(handle: b.handle)
            }
        }
    }

    /// Two calls at once on one transport (a BRI has two B-channels; the transport gives every channel the same
    /// work directory): each receives exactly its own caller's pages, and nothing of either stays on disk.
    @Test func twoSimultaneousReceptionsKeepTheirPagesApart() throws {
        let dir = try TemporaryDirectory("softfax-attack")
        let work = dir.path + "/softfax"
        let docA = [softFaxTestPage(seed: 101, height: 400), softFaxTestPage(seed: 102, height: 120)]
        let docB = [softFaxTestPage(seed: 201, height: 120), softFaxTestPage(seed: 202, height: 400)]
        var calls: [Call] = []
        for (i, doc) in [docA, docB].enumerated() {
            let remoteDir = dir.path + "/remote\(i)"
            try FileManager.default.createDirectory(atPath: remoteDir, withIntermediateDirectories: true)
            let remote = try FaxEngine(options: FaxEngineOptions(calling: true, localIdent: "remote \(i)"), send: doc,
                                       workDirectory: remoteDir)
            calls.append(Call(remote: remote, channel: try receiving(UInt32(0x101 + i), in: work)))
        }
        // The second caller starts 4 s later, so the two sessions write their pages interleaved.
        var steps = 0
        while !calls.allSatisfy(\.done) && steps < 50 * 120 {
            for (i, c) in calls.enumerated() where i == 0 || steps >= 200 { c.step() }
            steps += 1
        }
        for (i, (c, doc)) in zip(calls, [docA, docB]).enumerated() {
            let pages = c.events.compactMap { if case .page(_, let p?) = $0 { p } else { nil } }
            #expect(c.channel.result?.kind == .success, "call \(i): \(c.channel.result?.text ?? "no result")")
            #expect(pages.count == 2, "call \(i)")
            let own = pages == doc   // compared outside #expect: it would print every pixel
            #expect(own, "call \(i) received pixels that are not its caller's")
        }
        calls.removeAll()
        let left = (try? FileManager.default.subpathsOfDirectory(atPath: work)) ?? []
        #expect(left == [], "work files left behind: \(left)")
    }

    /// 50 channels started and dropped at different points: no file descriptor and no work file survives them.
    @Test func fiftyChannelsLeaveNoFilesOrDescriptors() throws {
        let dir = try TemporaryDirectory("softfax-attack")
        let work = dir.path + "/softfax"
        var sawOpen = false
        for n in 0..<50 {
            let remoteDir = dir.path + "/remote\(n)"
            try FileManager.default.createDirectory(atPath: remoteDir, withIntermediateDirectories: true)
            let remote = try FaxEngine(options: FaxEngineOptions(calling: true, localIdent: "r"),
                                       send: [softFaxTestPage(seed: UInt64(n), height: 60)], workDirectory: remoteDir)
            let call = Call(remote: remote, channel: try receiving(UInt32(0x200 + n), in: work))
            // Half run to the end, half are cut mid-session (line lost), at different points.
            let limit = n % 2 == 0 ? 50 * 120 : 50 * (2 + n % 12)
            var steps = 0
            while !call.done && steps < limit { call.step(); steps += 1 }
            if !(try Self.openFileDescriptors(into: work)).isEmpty { sawOpen = true }
            if !call.channel.isFinished { _ = call.channel.lineDisconnected() }
            #expect(call.channel.isFinished)
            try? FileManager.default.removeItem(atPath: remoteDir)
        }
        let left = (try? FileManager.default.subpathsOfDirectory(atPath: work)) ?? []
        #expect(left == [], "work files left behind: \(left.prefix(5))")
        #expect(sawOpen, "the probe saw spandsp's files open while calls ran")
        #expect(try Self.openFileDescriptors(into: dir.path) == [])
    }

    /// A controller that stops confirming: never more than 7 DATA_B3_REQ in flight, and what waits is bounded.
    @Test func aControllerThatNeverConfirmsCannotGrowTheQueue() throws {
        let dir = try TemporaryDirectory("softfax-attack")
        let channel = try receiving(0x301, in: dir.path)
        var handles = Set<UInt16>()
        for i in 0..<5000 {
            let (blocks, _) = channel.received([UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 160))
            for b in blocks { #expect(handles.insert(b.handle).inserted, "handle reused while unconfirmed") }
            #expect(handles.count <= 7)
        }
        #expect(channel.pacer.unconfirmed.count <= 7)
        #expect(channel.pacer.queued.count <= channel.pacer.maxQueued)
        #expect(channel.pacer.maxUnconfirmed == 7)
        // Confirming one frees exactly one slot.
        #expect(channel.confirmed(handle: handles.first!).count == 1)
        #expect(channel.confirmed(handle: 0xFFFF).isEmpty, "a handle we never used frees nothing")
    }

    /// Blocks no controller should send — 1 byte, 4000 bytes, random bytes — and blocks after the line went down:
    /// every DATA_B3_REQ stays within the registered maxBDataLen (2048), and after the end nothing goes out.
    @Test func oddBlocksStayWithinTheControllersLimits() throws {
        let dir = try TemporaryDirectory("softfax-attack")
        let channel = try receiving(0x401, in: dir.path)
        var rng = SeededRandom(seed: 9)
        var sentBytes = 0, receivedBytes = 0
        for size in [1, 4000, 7, 2048, 2049, 160, 6000, 3] {
            let data = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            receivedBytes += size
            let (blocks, _) = channel.received(data)
            var pending = blocks
            while !pending.isEmpty {
                let b = pending.removeFirst()
                #expect(b.data.count <= 2048, "DATA_B3_REQ of \(b.data.count) bytes")
                #expect(!b.data.isEmpty)
                sentBytes += b.data.count
                pending += channel.confirmed(handle: b.handle)
            }
        }
        // As much audio goes out as came in (plus the primer): the line clock holds for odd sizes too.
        #expect(sentBytes == receivedBytes + channel.pacer.primeBlocks * channel.pacer.primeBytes)
        let end = channel.lineDisconnected()
        #expect(end.contains { if case .finished = $0 { true } else { false } })
        let after = channel.received([UInt8](repeating: 0x55, count: 160))
        #expect(after.blocks.isEmpty && after.events.isEmpty)
        #expect(channel.confirmed(handle: 1).isEmpty)
    }

    /// The remote's ident as the core keeps it (journal, mails, pages): no controls, no bidi overrides, no NUL.
    @Test func remoteIdentIsCleanInTheSessionInfo() {
        let info = FaxSessionInfo(remoteStationID: "\u{202E}evil\u{0}\u{1B}[2J\u{200F}\r\n" + String(repeating: "9", count: 40))
        let stored = info.remoteStationID ?? ""
        #expect(!stored.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F || (0x202A...0x202E).contains($0.value) || $0.value == 0x200F },
                "\(stored.debugDescription)")
        #expect(stored.contains("evil"))
    }
}
