// The software fax modem: T.30 over 8 kHz linear audio through spandsp's fax_state_t.
//
// Transport-agnostic on purpose: it takes and gives frames of 16-bit samples (usually 160 = 20 ms), and the
// number of samples is its only clock. CAPI's transparent B-channel, a SIP/RTP leg or a test's virtual line
// all drive it the same way. Not thread-safe (neither is spandsp): one owner (an actor or one thread) per engine.
import CSpandsp
import FaxDocument

/// Modem families spandsp 0.0.6 can be limited to; it cannot cap the rate finer than that.
public enum FaxModem: Int, Sendable, CaseIterable, Comparable {
    case v27ter = 4800
    case v29 = 9600
    case v17 = 14400
    public var maxBitRate: Int { rawValue }
    public static func < (a: FaxModem, b: FaxModem) -> Bool { a.rawValue < b.rawValue }
    /// The fastest family whose top rate does not exceed `bitRate` (nil = all).
    public static func families(upTo bitRate: Int?) -> Set<FaxModem> {
        guard let bitRate else { return Set(allCases) }
        let allowed = allCases.filter { $0.rawValue <= bitRate }
        return Set(allowed.isEmpty ? [.v27ter] : allowed)
    }
}

/// T.4/T.6 compression on the line.
public enum LineCompression: String, Sendable, CaseIterable {
    case mh, mr, mmr
}

public struct FaxEngineOptions: Sendable, Equatable {
    /// We placed the call: send CNG, act as the calling terminal.
    public var calling: Bool
    /// Our station id (TSI when sending, CSID when receiving), printable ASCII, ≤ 20 characters.
    public var localIdent: String
    /// Text for the header line spandsp prints on each sent page (nil = none).
    public var pageHeader: String?
    /// Offer/accept error correction mode.
    public var ecm: Bool
    /// Modem families to offer.
    public var modems: Set<FaxModem>
    /// Compressions to offer (the receiver's choice among the common ones).
    public var compressions: Set<LineCompression>
    /// Receiving: accept fine resolution.
    public var acceptFine: Bool
    /// Receiving: a longer page aborts the session (a remote can send rows forever; ~3 A4 pages at fine).
    public var maxPageRows: Int = 7000
    /// Receiving: more pages than this end the session after the last allowed page.
    public var maxPages: Int = 200
    /// A session in which nothing moves (no frame from the remote, no received rows, nothing sent) for this
    /// long ends with noResponse: noise on a dead line holds spandsp's carrier detector up and stops its T.30
    /// timers. Generous while image data may be arriving (an ECM block at 2400 bit/s takes 3.6 minutes);
    /// at most 60 s while a T.30 frame is due.
    public var maxIdleSeconds: Int = 300

    public init(calling: Bool, localIdent: String, pageHeader: String? = nil, ecm: Bool = true,
                modems: Set<FaxModem> = Set(FaxModem.allCases), compressions: Set<LineCompression> = Set(LineCompression.allCases),
                acceptFine: Bool = true) {
        self.calling = calling; self.localIdent = localIdent; self.pageHeader = pageHeader; self.ecm = ecm
        self.modems = modems; self.compressions = compressions; self.acceptFine = acceptFine
    }
}

/// What one page looked like on the line.
public struct FaxPageReport: Sendable, Equatable {
    /// 1-based.
    public var page: Int
    public var bitRate: Int
    public var compression: LineCompression
    public var fine: Bool
    public var ecm: Bool
    /// ECM frames the receiver asked for again while this page was sent.
    public var ecmRetransmittedFrames: Int
    /// Rows damaged beyond repair (non-ECM reception).
    public var badRows: Int
    public var width: Int
    public var length: Int
    public init(page: Int, bitRate: Int, compression: LineCompression, fine: Bool, ecm: Bool, ecmRetransmittedFrames: Int,
                badRows: Int, width: Int, length: Int) {
        self.page = page; self.bitRate = bitRate; self.compression = compression; self.fine = fine; self.ecm = ecm
        self.ecmRetransmittedFrames = ecmRetransmittedFrames; self.badRows = badRows; self.width = width; self.length = length
    }
}

/// How a T.30 session ended.
public struct FaxEngineResult: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        case success
        case trainingFailed, noResponse, pageRefused, incompatible, remoteDisconnected, local, other
    }
    public var kind: Kind
    /// spandsp's T30_ERR_* code (0 = OK).
    public var code: Int
    /// spandsp's words for the code (t30_completion_code_to_str), with the rate when it matters.
    public var text: String
    /// Pages completely transferred.
    public var pages: Int
    public var remoteIdent: String?
    public var bitRate: Int?
    public var ecm: Bool?
    public var compression: LineCompression?
    public var ecmRetransmittedFrames: Int
    public var succeeded: Bool { kind == .success }
    public init(kind: Kind, code: Int, text: String, pages: Int, remoteIdent: String?, bitRate: Int?, ecm: Bool?,
                compression: LineCompression?, ecmRetransmittedFrames: Int) {
        self.kind = kind; self.code = code; self.text = text; self.pages = pages; self.remoteIdent = remoteIdent
        self.bitRate = bitRate; self.ecm = ecm; self.compression = compression; self.ecmRetransmittedFrames = ecmRetransmittedFrames
    }
}

/// Everything the engine tells its owner, in order.
public enum FaxEngineEvent: Sendable, Equatable {
    /// Phase B done: capabilities exchanged, training succeeded; the remote's ident when it gave one (cleaned:
    /// printable ASCII, at most 20 characters, still the remote's claim).
    case negotiated(remoteIdent: String?, bitRate: Int, ecm: Bool, compression: LineCompression, fine: Bool)
    /// Phase D: a page went across (sent and confirmed, or received). Receiving: `page` holds its pixels.
    case page(FaxPageReport, FaxPage?)
    /// Phase E: the session is over. Nothing follows.
    case finished(FaxEngineResult)
}

public struct FaxEngineError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One T.30 session (one call). Create it when the audio path is up; feed every received frame to
/// `receive`, ask `transmit` for exactly as many samples as the line takes; collect `takeEvents()`.
public final class FaxEngine {
    private let options: FaxEngineOptions
    private let fax: OpaquePointer
    private let t30: OpaquePointer
    private let sending: Bool
    /// spandsp writes received pages here; we read each one back at phase D.
    private let rxPath: String
    private let txPath: String?
    private var events: [FaxEngineEvent] = []
    private var finished = false
    private var received = 0
    private var negotiatedSent = false
    private var pagesReported = 0
    private var remoteIdent: String?
    private var lastStats = t30_stats_t()
    /// Set from inside a callback; acted upon after spandsp returns (terminating inside a callback is not re-entrant).
    private var pendingAbort: (kind: FaxEngineResult.Kind, text: String)?
    private var abortReason: (kind: FaxEngineResult.Kind, text: String)?
    /// ECM frames sent again: spandsp counts per page (reset when a page starts), and calls phase D after every
    /// partial page, so: completed pages' final counts plus the page in progress.
    private var ecmRetriesCompleted = 0
    private var ecmRetriesInProgress = 0
    /// Valid T.30 frames heard from the remote: none at all means nobody (no fax) answered.
    private var framesReceived = 0
    /// Samples since the session last moved: a frame from the remote, received rows, or our own signal.
    private var idleSamples = 0
    private var lastRows: Int32 = 0
    private var scratch: [Int16] = []
    private var imageMayFollow = false
    private var refusedPage = false
    private var trainingFailedAt: Int?
    /// Rate of the last DCS (sent or received): a training was attempted at it.
    private var trainingRate: Int?
    private var negotiatedCompression: LineCompression?

    /// Sending: the pages to send. Receiving: nil. `workDirectory` must exist; the engine keeps its TIFF files
    /// there (softfax-tx.tif: the pages as sent to spandsp; softfax-rx.tif: what spandsp received) and the
    /// owner removes them after the session.
    public init(options: FaxEngineOptions, send pages: [FaxPage]?, workDirectory: String) throws(FaxEngineError) {
        self.options = options
        sending = pages != nil
        rxPath = workDirectory + "/softfax-rx.tif"
        if let pages {
            guard !pages.isEmpty else { throw FaxEngineError("no pages to send") }
            let path = workDirectory + "/softfax-tx.tif"
            do { try TIFFWriter.write(pages, to: path, compression: .g3) } catch { throw FaxEngineError("cannot write \(path): \(error)") }
            txPath = path
        } else {
            txPath = nil
        }
        guard let fax = fax_init(nil, options.calling ? 1 : 0) else { throw FaxEngineError("fax_init failed") }
        guard let t30 = fax_get_t30_state(fax) else { fax_free(fax); throw FaxEngineError("no T.30 state") }
        self.fax = fax
        self.t30 = t30
        span_log_set_level(fax_get_logging_state(fax), Int32(SPAN_LOG_NONE))
        span_log_set_level(t30_get_logging_state(t30), Int32(SPAN_LOG_NONE))
        // Silence while the modem has nothing to say keeps our output exactly `count` samples long.
        fax_set_transmit_on_idle(fax, 1)

        _ = t30_set_tx_ident(t30, FaxEngine.clean(options.localIdent, limit: 20))
        if let header = options.pageHeader { _ = t30_set_tx_page_header_info(t30, FaxEngine.clean(header, limit: 50)) }
        _ = t30_set_ecm_capability(t30, options.ecm ? 1 : 0)
        var modems: Int32 = 0
        if options.modems.contains(.v27ter) { modems |= Int32(T30_SUPPORT_V27TER) }
        if options.modems.contains(.v29) { modems |= Int32(T30_SUPPORT_V29) }
        if options.modems.contains(.v17) { modems |= Int32(T30_SUPPORT_V17) }
        if modems == 0 { modems = Int32(T30_SUPPORT_V27TER) }
        _ = t30_set_supported_modems(t30, modems)
        // MH is mandatory in T.4; MR/MMR only as offered (MMR needs ECM, spandsp knows that).
        var compressions = Int32(T30_SUPPORT_T4_1D_COMPRESSION)
        if options.compressions.contains(.mr) { compressions |= Int32(T30_SUPPORT_T4_2D_COMPRESSION) }
        if options.compressions.contains(.mmr) { compressions |= Int32(T30_SUPPORT_T6_COMPRESSION) }
        _ = t30_set_supported_compressions(t30, compressions)
        // A sender must be able to send its fine pages; acceptFine only limits what we announce as receiver.
        var resolutions = Int32(T30_SUPPORT_STANDARD_RESOLUTION)
        if sending || options.acceptFine { resolutions |= Int32(T30_SUPPORT_FINE_RESOLUTION) }
        _ = t30_set_supported_resolutions(t30, resolutions)
        let sizes = T30_SUPPORT_215MM_WIDTH | T30_SUPPORT_255MM_WIDTH | T30_SUPPORT_303MM_WIDTH
            | T30_SUPPORT_UNLIMITED_LENGTH | T30_SUPPORT_A4_LENGTH | T30_SUPPORT_B4_LENGTH
            | T30_SUPPORT_US_LETTER_LENGTH | T30_SUPPORT_US_LEGAL_LENGTH
        _ = t30_set_supported_image_sizes(t30, Int32(sizes))
        if let txPath {
            t30_set_tx_file(t30, txPath, -1, -1)
        } else {
            try? FileManagerLite.remove(rxPath)
            t30_set_rx_file(t30, rxPath, -1)
        }

        let context = Unmanaged.passUnretained(self).toOpaque()
        t30_set_phase_b_handler(t30, { _, user, _ in
            guard let user else { return 0 }
            Unmanaged<FaxEngine>.fromOpaque(user).takeUnretainedValue().phaseB()
            return 0
        }, context)
        t30_set_phase_d_handler(t30, { _, user, fcf in
            guard let user else { return 0 }
            Unmanaged<FaxEngine>.fromOpaque(user).takeUnretainedValue().phaseD(postPage: Int(fcf))
            return 0
        }, context)
        t30_set_phase_e_handler(t30, { _, user, code in
            guard let user else { return }
            Unmanaged<FaxEngine>.fromOpaque(user).takeUnretainedValue().phaseE(code: Int(code))
        }, context)
        t30_set_real_time_frame_handler(t30, { _, user, direction, msg, len in
            // Binary HDLC frame: pointer plus length, never a C string.
            guard let user, let msg, len >= 3 else { return }
            Unmanaged<FaxEngine>.fromOpaque(user).takeUnretainedValue().frame(incoming: direction != 0, fcf: msg[2] & 0xFE)
        }, context)
    }

    deinit {
        fax_free(fax)
    }

    /// Audio from the remote (linear 16-bit, 8 kHz).
    public func receive(_ samples: UnsafeBufferPointer<Int16>) {
        guard let base = samples.baseAddress, !samples.isEmpty else { return }
        received += samples.count
        idleSamples += samples.count
        // fax_rx works in place (DC removal), so it gets a copy, never the caller's memory.
        if scratch.count < samples.count { scratch = [Int16](repeating: 0, count: samples.count) }
        scratch.withUnsafeMutableBufferPointer { copy in
            copy.baseAddress!.update(from: base, count: samples.count)
            _ = fax_rx(fax, copy.baseAddress!, Int32(samples.count))
        }
        afterReceive()
    }
    public func receive(_ samples: [Int16]) { samples.withUnsafeBufferPointer { receive($0) } }

    /// `count` samples of the remote's audio are known to be lost (a packet that never came): spandsp keeps its
    /// receive modem going without them instead of hearing a gap of silence.
    public func receiveLost(count: Int) {
        guard count > 0 else { return }
        received += count
        idleSamples += count
        _ = fax_rx_fillin(fax, Int32(count))
        afterReceive()
    }

    private func afterReceive() {
        if !finished {
            var stats = t30_stats_t()
            t30_get_transfer_statistics(t30, &stats)
            if !sending && stats.length != lastRows {
                lastRows = stats.length
                idleSamples = 0
            }
            // A remote can keep the image carrier up forever: watch the page grow while it arrives.
            if !sending && Int(stats.length) > options.maxPageRows && pendingAbort == nil {
                pendingAbort = (.pageRefused, FaxEngine.overlong(pagesReported + 1, options.maxPageRows))
            }
            // spandsp gave up (T1 expired …) but cannot send its DCN while noise holds the V.21 carrier detector
            // up, so phase E would never come: end it ourselves once nothing moved for a while.
            if stats.current_status != 0 && idleSamples > 10 * 8000 && pendingAbort == nil {
                t30_terminate(t30)
            } else if pendingAbort == nil {
                let limit = imageMayFollow ? options.maxIdleSeconds : min(60, options.maxIdleSeconds)
                if idleSamples > limit * 8000 { pendingAbort = (.noResponse, "no T.30 progress for \(limit) s") }
            }
        }
        applyPendingAbort()
    }

    /// Audio towards the remote: always exactly `count` samples (silence when the modem has nothing to say).
    public func transmit(count: Int) -> [Int16] {
        guard count > 0 else { return [] }
        var out = [Int16](repeating: 0, count: count)
        if abortReason == nil {
            out.withUnsafeMutableBufferPointer { buffer in
                var done = 0
                while done < count {
                    let n = Int(fax_tx(fax, buffer.baseAddress! + done, Int32(count - done)))
                    if n <= 0 { break }
                    done += n
                }
            }
            if out.contains(where: { $0 != 0 }) { idleSamples = 0 }
        }
        applyPendingAbort()
        return out
    }

    /// The call went away under the engine (hang-up, line lost): ends the session now; `.finished` follows.
    public func lineDisconnected() {
        guard !finished else { return }
        t30_terminate(t30)
        if !finished { phaseE(code: Int(T30_ERR_CALLDROPPED)) }
    }

    /// Events since the last call, oldest first.
    public func takeEvents() -> [FaxEngineEvent] {
        defer { events.removeAll() }
        return events
    }

    /// True once `.finished` was produced.
    public var isFinished: Bool { finished }

    /// Samples received so far (the engine's clock).
    public var samplesReceived: Int { received }

    // MARK: - spandsp callbacks

    private func stats() -> t30_stats_t {
        var stats = t30_stats_t()
        t30_get_transfer_statistics(t30, &stats)
        return stats
    }

    private func phaseB() {
        // The receiver's phase B comes with the DCS, after spandsp took its rate.
        if !sending { trainingRate = Int(stats().bit_rate) }
        if remoteIdent == nil, let raw = t30_get_rx_ident(t30) {
            // spandsp keeps the ident in a fixed 21-byte buffer, NUL-terminated; still bound the read.
            var bytes: [UInt8] = []
            var p = UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self)
            while bytes.count < 21, p.pointee != 0 { bytes.append(p.pointee); p += 1 }
            let text = FaxEngine.clean(String(decoding: bytes, as: UTF8.self), limit: 20)
            remoteIdent = text.isEmpty ? nil : text
        }
    }

    /// Training succeeded when CFR goes across (sent by the receiver, received by the sender): that is the
    /// negotiated rate. Phase B alone is too early on the sending side (DCS may still fall back).
    private func frame(incoming: Bool, fcf: UInt8) {
        if incoming { framesReceived += 1; idleSamples = 0 }
        // Receiving: after these answers the remote may send image data for minutes (an ECM block at 2400 bit/s)
        // with no frame we could see; after anything else a frame is due within seconds.
        let imageAnswers: [Int] = [T30_CFR, T30_MCF, T30_PPR, T30_RTP, T30_CTR]
        imageMayFollow = !sending && !incoming && imageAnswers.contains(Int(fcf))
        // FTT (failure to train), heard by the sender or said by the receiver: remember the rate it failed at,
        // before spandsp falls back to the next one.
        if Int(fcf) == T30_FTT && incoming == sending && !negotiatedSent {
            trainingFailedAt = Int(stats().bit_rate)
        }
        // The sender's DCS starts a training attempt at the rate it names.
        if sending && !incoming && Int(fcf) == T30_DCS { trainingRate = Int(stats().bit_rate) }
        if fcf == UInt8(T30_CFR) && incoming == sending { emitNegotiated() }
    }

    private func emitNegotiated() {
        guard !negotiatedSent else { return }
        negotiatedSent = true
        phaseB()
        let s = stats()
        lastStats = s
        let compression = FaxEngine.compression(s.encoding) ?? .mh
        negotiatedCompression = FaxEngine.compression(s.encoding)
        events.append(.negotiated(remoteIdent: remoteIdent, bitRate: Int(s.bit_rate), ecm: s.error_correcting_mode != 0,
                                  compression: compression, fine: s.y_resolution >= 5000))
    }

    /// `postPage`: the post-page command spandsp saw (MPS, EOM, EOP …) when it called phase D.
    private func phaseD(atEnd: Bool = false, postPage: Int? = nil) {
        let s = stats()
        lastStats = s
        let done = Int(sending ? s.pages_tx : s.pages_rx)
        if done > pagesReported {
            ecmRetriesCompleted += Int(s.error_correcting_mode_retries)
            ecmRetriesInProgress = 0
        } else if !atEnd {
            // At the end the counter may still hold the last completed page's count.
            ecmRetriesInProgress = Int(s.error_correcting_mode_retries)
        }
        if done > pagesReported { emitNegotiated() }
        while pagesReported < done && !refusedPage {
            var page: FaxPage?
            if !sending {
                // With ECM a whole partial page is decoded at once, past the row watch in `receive`; at the end
                // spandsp's counters are gone, so the file's own page length is checked as well.
                if Int(s.length) > options.maxPageRows {
                    refuse(.pageRefused, FaxEngine.overlong(pagesReported + 1, options.maxPageRows))
                    break
                }
                do { page = try FaxEngine.readPage(rxPath, index: pagesReported, maxRows: options.maxPageRows) } catch {
                    switch error {
                    case .tooLong: refuse(.pageRefused, FaxEngine.overlong(pagesReported + 1, options.maxPageRows))
                    case .unreadable(let why): refuse(.local, "page \(pagesReported + 1) unreadable: \(why)")
                    }
                    break
                }
            }
            pagesReported += 1
            let report = FaxPageReport(page: pagesReported, bitRate: Int(s.bit_rate), compression: FaxEngine.compression(s.encoding) ?? .mh,
                                       fine: s.y_resolution >= 5000, ecm: s.error_correcting_mode != 0,
                                       ecmRetransmittedFrames: Int(s.error_correcting_mode_retries), badRows: Int(s.bad_rows),
                                       width: page?.width ?? Int(s.width), length: page?.height ?? Int(s.length))
            events.append(.page(report, page))
        }
        // More pages announced (MPS/EOM) after the last one we take: end the session now.
        let morePages = postPage.map { $0 & 0xFE != T30_EOP && $0 & 0xFE != T30_PRI_EOP } ?? false
        if !sending && morePages && pagesReported >= options.maxPages && pendingAbort == nil {
            pendingAbort = (.pageRefused, "more than \(options.maxPages) page\(options.maxPages == 1 ? "" : "s"); reception ended")
        }
    }

    /// A received page we do not take: no page event, and the session ends (after spandsp returns).
    private func refuse(_ kind: FaxEngineResult.Kind, _ text: String) {
        refusedPage = true
        if pendingAbort == nil && abortReason == nil { pendingAbort = (kind, text) }
    }

    private func applyPendingAbort() {
        guard let abort = pendingAbort, !finished else { return }
        pendingAbort = nil
        abortReason = abort
        t30_terminate(t30)
        if !finished { phaseE(code: Int(T30_ERR_CALLDROPPED)) }
    }

    private func phaseE(code: Int) {
        guard !finished else { return }
        // Pages spandsp completed in the same breath as the end (EOP) are reported before `.finished`.
        phaseD(atEnd: true)
        // A refusal found only now (the last page) still decides the result.
        if abortReason == nil, let pending = pendingAbort { abortReason = pending; pendingAbort = nil }
        finished = true
        let s = lastStats
        var kind = FaxEngine.kind(code)
        var text = FaxEngine.describe(code)
        if code == T30_ERR_RETRYDCN {
            // spandsp gives up "after permitted retries" in several places; what was retried tells what failed.
            kind = negotiatedSent ? .pageRefused : (framesReceived > 0 && sending ? .trainingFailed : .noResponse)
        }
        // Nothing intelligible ever came from the remote: whatever spandsp's last state, nobody answered.
        if framesReceived == 0 && kind != .success && kind != .local { kind = .noResponse }
        // The session ended after a training attempt (DCS) and before any succeeded (CFR), however spandsp names it
        // (FTT then DCN, a hang-up, "unexpected message" after a lost FTT): for a retry policy a training failure.
        if let rate = trainingFailedAt ?? trainingRate, !negotiatedSent, kind != .success, kind != .local, kind != .incompatible {
            kind = .trainingFailed
            text += ": training failed at \(rate) bit/s"
        } else if kind == .trainingFailed {
            text += ": training failed at \(s.bit_rate) bit/s"
        }
        if let abortReason { kind = abortReason.kind; text = abortReason.text }
        events.append(.finished(FaxEngineResult(
            kind: kind, code: code, text: text, pages: pagesReported, remoteIdent: remoteIdent,
            bitRate: negotiatedSent ? Int(s.bit_rate) : (kind == .trainingFailed ? trainingFailedAt ?? trainingRate ?? Int(s.bit_rate) : nil),
            ecm: negotiatedSent ? s.error_correcting_mode != 0 : nil, compression: negotiatedCompression,
            ecmRetransmittedFrames: ecmRetriesCompleted + ecmRetriesInProgress)))
    }

    // MARK: - helpers

    static func describe(_ code: Int) -> String {
        guard let text = t30_completion_code_to_str(Int32(code)) else { return "T.30 status \(code)" }
        return String(cString: text)
    }

    static func compression(_ encoding: Int32) -> LineCompression? {
        switch encoding {
        case Int32(T4_COMPRESSION_ITU_T4_1D.rawValue): .mh
        case Int32(T4_COMPRESSION_ITU_T4_2D.rawValue): .mr
        case Int32(T4_COMPRESSION_ITU_T6.rawValue): .mmr
        default: nil
        }
    }

    /// T30_ERR_* → what a retry policy and a journal need to know.
    static func kind(_ code: Int) -> FaxEngineResult.Kind {
        switch code {
        case T30_ERR_OK: .success
        case T30_ERR_CANNOT_TRAIN, T30_ERR_TX_BADDCS, T30_ERR_TX_PHBDEAD, T30_ERR_RX_NOFAX:
            .trainingFailed
        case T30_ERR_CEDTONE, T30_ERR_T0_EXPIRED, T30_ERR_T1_EXPIRED, T30_ERR_T3_EXPIRED,
             T30_ERR_TX_PHDDEAD, T30_ERR_RX_T2EXPDCN, T30_ERR_RX_T2EXPD, T30_ERR_RX_T2EXPFAX,
             T30_ERR_RX_T2EXPMPS, T30_ERR_RX_T2EXPRR, T30_ERR_RX_T2EXP:
            .noResponse
        case T30_ERR_RETRYDCN, T30_ERR_TX_T5EXP, T30_ERR_TX_ECMPHD, T30_ERR_RX_ECMPHD:
            .pageRefused
        case T30_ERR_INCOMPATIBLE, T30_ERR_RX_INCAPABLE, T30_ERR_TX_INCAPABLE,
             T30_ERR_NORESSUPPORT, T30_ERR_NOSIZESUPPORT, T30_ERR_NOPOLL:
            .incompatible
        case T30_ERR_TX_BADPG, T30_ERR_TX_GOTDCN, T30_ERR_RX_NOCARRIER, T30_ERR_RX_DCNWHY,
             T30_ERR_RX_DCNDATA, T30_ERR_RX_DCNFAX, T30_ERR_RX_DCNPHD, T30_ERR_RX_DCNRRD,
             T30_ERR_RX_DCNNORTN, T30_ERR_CALLDROPPED:
            .remoteDisconnected
        case T30_ERR_FILEERROR, T30_ERR_NOPAGE, T30_ERR_BADTIFF, T30_ERR_BADPAGE,
             T30_ERR_BADTAG, T30_ERR_BADTIFFHDR, T30_ERR_NOMEM:
            .local
        default: .other
        }
    }

    static func overlong(_ page: Int, _ rows: Int) -> String {
        "page \(page) longer than \(rows) rows; reception aborted"
    }

    /// Printable ASCII only, trimmed, capped: idents end up in mails, logs and web pages.
    static func clean(_ text: String, limit: Int) -> String {
        var out = ""
        for scalar in text.unicodeScalars where scalar.value >= 0x20 && scalar.value < 0x7F {
            out.unicodeScalars.append(scalar)
            if out.unicodeScalars.count >= limit * 4 { break }
        }
        let trimmed = out.trimmingSpaces()
        return String(trimmed.prefix(limit))
    }
}

/// Detects a fax calling tone (CNG, 1100 Hz) or answer tone (CED/ANSam, 2100 Hz) in linear audio, for a
/// voice call that may turn into a fax when the controller does not report the tone itself.
public final class ConnectToneDetector {
    public enum Tone: Sendable, Equatable { case cng, ced }
    private let tone: Tone
    private let type: Int32
    private let state: OpaquePointer
    private var heard = false
    /// Set by spandsp's callback while it processes a block.
    private var reported = false
    /// The last 400 ms of audio, to check a CNG report against (see `steadyCNG`).
    private var recent = [Int16](repeating: 0, count: 3200)
    private var recentEnd = 0

    public init(_ tone: Tone) {
        self.tone = tone
        // CED: spandsp's detector for 2100 Hz (with or without ANSam modulation) or the V.21 preamble that follows it.
        type = Int32(tone == .cng ? MODEM_CONNECT_TONES_FAX_CNG : MODEM_CONNECT_TONES_FAX_CED_OR_PREAMBLE)
        state = modem_connect_tones_rx_init(nil, type, nil, nil)!
        restart()
    }

    deinit { modem_connect_tones_rx_free(state) }

    /// (Re)initialises spandsp's detector in place, reporting through a callback: polling its state after a long
    /// block would miss a tone that started and ended inside it.
    private func restart() {
        _ = modem_connect_tones_rx_init(state, type, { user, code, _, _ in
            guard let user, code > 0 else { return }
            Unmanaged<ConnectToneDetector>.fromOpaque(user).takeUnretainedValue().reported = true
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    /// Feeds audio; true once the tone has been heard (stays true).
    public func feed(_ samples: UnsafeBufferPointer<Int16>) -> Bool {
        guard !heard, let base = samples.baseAddress, !samples.isEmpty else { return heard }
        // 20 ms at a time, so a report can be checked against the audio that caused it.
        var start = 0
        while start < samples.count && !heard {
            let n = min(160, samples.count - start)
            for i in 0..<n {
                recent[recentEnd] = base[start + i]
                recentEnd = (recentEnd + 1) % recent.count
            }
            _ = modem_connect_tones_rx(state, base + start, Int32(n))
            if reported {
                reported = false
                if tone == .ced || steadyCNG() { heard = true } else { restart() }
            }
            start += n
        }
        return heard
    }
    public func feed(_ samples: [Int16]) -> Bool { samples.withUnsafeBufferPointer { feed($0) } }

    /// spandsp's CNG detector also fires on a whistle wavering around 1100 Hz. A fax machine's CNG is steady
    /// (T.30: 1100 ± 38 Hz), so: in at least 3/4 of the audible 10 ms pieces of the last 400 ms, most of the
    /// energy must lie within about ±50 Hz of 1100 Hz (Goertzel on 80 samples: 1100 Hz is bin 11 exactly).
    private func steadyCNG() -> Bool {
        let n = 80
        let coefficient = 2 * cos(2 * Double.pi * 11 / Double(n))
        var audible = 0, steady = 0
        for block in 0..<(recent.count / n) {
            var s1 = 0.0, s2 = 0.0, energy = 0.0
            for i in 0..<n {
                let x = Double(recent[(recentEnd + block * n + i) % recent.count])
                energy += x * x
                let s0 = x + coefficient * s1 - s2
                s2 = s1
                s1 = s0
            }
            // Below about -45 dBm0: a pause, not part of the tone.
            guard energy / Double(n) >= 100 * 100 else { continue }
            audible += 1
            let power = s1 * s1 + s2 * s2 - coefficient * s1 * s2
            if 2 * power / (Double(n) * energy) >= 0.4 { steady += 1 }
        }
        return audible >= 10 && steady * 4 >= audible * 3
    }
}
