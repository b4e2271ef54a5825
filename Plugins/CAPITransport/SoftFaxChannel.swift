import FaxDocument
import FaxgateCore
import Foundation
import SoftFax
import VoiceAudio

/// One software-modem T.30 session on a transparent B-channel: the engine, its transmit pacing and what it
/// reported. Owned by the transport actor (spandsp is not thread-safe); not Sendable on purpose.
final class SoftFaxChannel {
    let plci: UInt32
    let ncci: UInt32
    let calling: Bool
    private let engine: FaxEngine
    /// This call's work files (the engine's TIFFs).
    let sessionDirectory: String
    private(set) var pacer: SoftFaxPacer
    private(set) var negotiated: (remoteIdent: String?, bitRate: Int, ecm: Bool, compression: LineCompression, fine: Bool)?
    private(set) var pageReports: [FaxPageReport] = []
    private(set) var result: FaxEngineResult?
    /// Pages of the document we send (calling side), for "all pages confirmed".
    let pagesToSend: Int
    /// Receiving: SFF bytes written to the spool so far (document header once, then each page).
    private(set) var spoolBytes = 0
    private var lineIsDown = false
    private var bytesSinceTick = 0

    init(plci: UInt32, ncci: UInt32, options: FaxEngineOptions, send pages: [FaxPage]?, workDirectory: String,
         pacer: SoftFaxPacer = SoftFaxPacer()) throws {
        self.plci = plci; self.ncci = ncci; self.calling = options.calling
        self.pacer = pacer
        self.pagesToSend = pages?.count ?? 0
        try? FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true,
                                                 attributes: [.posixPermissions: 0o700])
        // Its own directory per call: the engine's file names are fixed, and two calls at once (two B-channels)
        // must not write into each other's pages. Removed with the channel (received pages are personal data).
        var template = Array((workDirectory + "/call-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw FaxEngineError("cannot create a work directory in \(workDirectory): errno \(errno)")
        }
        sessionDirectory = String(cString: made)
        do {
            engine = try FaxEngine(options: options, send: pages, workDirectory: sessionDirectory)
        } catch {
            try? FileManager.default.removeItem(atPath: sessionDirectory)
            throw error
        }
    }

    /// Removes every `call-*` work directory below `directory` (left by a process that died mid-call); returns
    /// the ones that could not be removed. Only for when no channel exists (before the transport runs).
    static func removeStaleWork(in directory: String) -> [(name: String, error: any Error)] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: directory) else { return [] }   // not made yet: nothing stale
        var failed: [(name: String, error: any Error)] = []
        for name in names where name.hasPrefix("call-") {
            do { try fm.removeItem(atPath: directory + "/" + name) } catch { failed.append((name, error)) }
        }
        return failed
    }

    deinit {
        // The engine still holds its TIFF open (closed when it is freed right after); unlinking first is fine.
        try? FileManager.default.removeItem(atPath: sessionDirectory)
    }

    var isFinished: Bool { result != nil }

    /// A DATA_B3_IND's audio (bit-reversed A-law): fed to the modem, and as much audio produced for the line.
    /// Returns the DATA_B3_REQ blocks to send and what the engine reported.
    func received(_ line: [UInt8]) -> (blocks: [SoftFaxPacer.Block], events: [FaxEngineEvent]) {
        guard !lineIsDown else { return ([], []) }
        bytesSinceTick += line.count
        if result == nil { engine.receive(G711.pcm(fromLine: line)) }
        var blocks: [SoftFaxPacer.Block] = []
        for size in pacer.lineBlockReceived(count: line.count) {
            // After the session the line still gets silence until the call is cleared: a gap would be filler anyway.
            let samples = result == nil ? engine.transmit(count: size) : [Int16](repeating: 0, count: size)
            blocks += pacer.enqueue(G711.lineBytes(samples))
        }
        return (blocks, collect())
    }

    /// True about once per second of received line audio (8000 bytes), for periodic checks.
    func takeSecondTick() -> Bool {
        guard bytesSinceTick >= 8000 else { return false }
        bytesSinceTick = 0
        return true
    }

    /// DATA_B3_CONF: the blocks that now fit the window.
    func confirmed(handle: UInt16) -> [SoftFaxPacer.Block] {
        guard !lineIsDown else { return [] }
        return pacer.confirmed(handle: handle)
    }

    /// The call or its B3 link went away: every block received was already fed (the transport handles
    /// messages in order), so the engine judges the end of the session on complete audio.
    func lineDisconnected() -> [FaxEngineEvent] {
        lineIsDown = true
        pacer.lineDown()
        if result == nil && !engine.isFinished { engine.lineDisconnected() }
        return collect()
    }

    private func collect() -> [FaxEngineEvent] {
        let events = engine.takeEvents()
        for event in events {
            switch event {
            case .negotiated(let ident, let rate, let ecm, let compression, let fine):
                negotiated = (ident, rate, ecm, compression, fine)
            case .page(let report, _):
                pageReports.append(report)
            case .finished(let r):
                result = r
            }
        }
        return events
    }

    /// Receiving: the SFF bytes to append to the spool for this page (the document header before the first),
    /// so the spool's page counter and limits see each page as it arrives.
    func spoolBytes(for page: FaxPage) -> [UInt8] {
        var out = spoolBytes == 0 ? SFFWriter.documentHeader() : []
        out += SFFWriter.pageBytes(page)
        spoolBytes += out.count
        return out
    }

    /// Receiving: the end-of-document record, when any page was written.
    func spoolTrailer() -> [UInt8] { spoolBytes > 0 ? SFFWriter.documentEnd() : [] }

    /// Everything the engine knows, in the core's terms.
    var session: FaxSessionInfo {
        let r = result
        let stats = pageReports.map { p in
            FaxPageStatistics(page: p.page, bitRate: p.bitRate, compression: p.compression.core, fine: p.fine, ecm: p.ecm,
                              ecmRetransmittedFrames: p.ecmRetransmittedFrames, badRows: p.badRows)
        }
        let fine = negotiated?.fine ?? pageReports.last?.fine
        return FaxSessionInfo(
            bitRate: r?.bitRate ?? negotiated?.bitRate ?? pageReports.last?.bitRate, fine: fine,
            pages: r?.pages ?? pageReports.count,
            remoteStationID: (r?.remoteIdent ?? negotiated?.remoteIdent).flatMap { $0.isEmpty ? nil : $0 },
            ecm: r?.ecm ?? negotiated?.ecm, engine: .software, compression: (r?.compression ?? negotiated?.compression)?.core,
            ecmRetransmittedFrames: r?.ecmRetransmittedFrames ?? pageReports.reduce(0) { $0 + $1.ecmRetransmittedFrames },
            pageStatistics: stats, failure: r.flatMap(SoftFaxChannel.failure))
    }

    /// The typed failure for a result that is not a success.
    static func failure(_ r: FaxEngineResult) -> T30Failure? {
        let kind: T30Failure.Kind
        switch r.kind {
        case .success: return nil
        case .trainingFailed: kind = .trainingFailed
        case .noResponse: kind = .noResponse
        case .pageRefused: kind = .pageRefused
        case .incompatible: kind = .incompatible
        case .remoteDisconnected: kind = .remoteDisconnected
        case .local: kind = .local
        case .other: kind = .other
        }
        return T30Failure(kind: kind, code: r.code, text: UntrustedText.clean(r.text), bitRate: r.bitRate)
    }

    static func describe(_ f: T30Failure, sending: Bool, pagesDone: Int, pagesTotal: Int?) -> String {
        SoftFaxFailureText.describe(f, sending: sending, pagesDone: pagesDone, pagesTotal: pagesTotal)
    }
}

/// T.30 failures in words for the call's text (journal, logs, reports): what happened first, the modem's own words after the dash.
public enum SoftFaxFailureText {
    /// A failure in words a user understands, the engine's own words after the dash.
    public static func describe(_ f: T30Failure, sending: Bool, pagesDone: Int, pagesTotal: Int?) -> String {
        // The modem's words may name the rate already.
        let at = f.text.contains("bit/s") ? "" : f.bitRate.map { " at \($0) bit/s" } ?? ""
        var what: String
        switch f.kind {
        case .trainingFailed: what = sending ? "remote refused the page — training failed\(at)" : "training failed\(at)"
        case .noResponse: what = sending ? "no fax machine answered (no T.30 response)" : "the caller sent no fax signals"
        case .pageRefused: what = sending ? "remote refused the page\(at)" : "a page could not be received\(at)"
        case .incompatible: what = "the remote fax machine has no capabilities in common with ours"
        case .remoteDisconnected: what = "the remote ended the fax session early"
        case .local: what = "local fax engine error"
        case .other: what = "fax protocol error"
        }
        if let total = pagesTotal { what += " (\(pagesDone) of \(total) page\(total == 1 ? "" : "s") sent)" }
        else if pagesDone > 0 { what += " (\(pagesDone) page\(pagesDone == 1 ? "" : "s") received)" }
        return f.text.isEmpty ? what : "\(what) — \(f.text)"
    }
}

extension LineCompression {
    var core: FaxCompression {
        switch self {
        case .mh: .mh
        case .mr: .mr
        case .mmr: .mmr
        }
    }
}

extension FaxEngineOptions {
    /// Station ids go into T.30 frames: printable ASCII only, at most 20 characters.
    static func ident(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { (0x20...0x7E).contains($0.value) }).prefix(20))
    }
}
