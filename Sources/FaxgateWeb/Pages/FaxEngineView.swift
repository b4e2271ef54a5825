import FaxgateCore
import Foundation

/// What the fax engine reported (issue 10), for the detail pages: admin call and job, the user's inbox and
/// sent faxes. Only facts that are known become rows (a controller with fax firmware hides most of them), so
/// those calls look as before. Strings: `user_fax_*` (UserStrings), shared by both areas.
enum FaxEngineView {
    /// Rows of the per-page table shown at most; the list is bounded in storage too.
    static let pageRowLimit = 200

    struct Facts {
        var engine: FaxEngineKind?
        var compression: FaxCompression?
        var ecm: Bool?
        var ecmRetransmittedFrames: Int?
        var failure: T30Failure?
        var direction: CallRecord.Direction
        var pages: [FaxPageStatistics]
    }

    static func facts(_ call: CallRecord) -> Facts {
        Facts(engine: call.engine, compression: call.compression, ecm: call.ecm, ecmRetransmittedFrames: call.ecmRetransmittedFrames,
              failure: call.t30Failure, direction: call.direction, pages: call.pageStatistics)
    }

    static func facts(_ job: FaxJob) -> Facts {
        Facts(engine: job.engine, compression: job.compression, ecm: job.ecm, ecmRetransmittedFrames: job.ecmRetransmittedFrames,
              failure: job.t30Failure, direction: .outgoing, pages: job.pageStatistics)
    }

    static func t(_ key: String, _ language: String) -> String { Strings.text(key, language) }

    static func engineName(_ e: FaxEngineKind, _ language: String) -> String {
        t(e == .software ? "user_fax_engine_software" : "user_fax_engine_controller", language)
    }

    static func compressionName(_ c: FaxCompression) -> String { ReceptionMail.compressionName(c) }

    /// (label, value) rows. `withSupport` adds the engine's code and own words to the failure (admin pages).
    /// `includeECM`: a page without its own ECM row; `includeFailure`: a page whose result line does not tell it yet.
    static func rows(_ f: Facts, language: String, withSupport: Bool, includeECM: Bool = false, includeFailure: Bool = true) -> [(String, String)] {
        var rows: [(String, String)] = []
        if includeECM, let e = f.ecm {
            rows.append((t("user_fax_ecm_used", language), t(e ? "user_fax_yes" : "user_fax_no", language)))
        }
        if let e = f.engine { rows.append((t("user_fax_engine", language), engineName(e, language))) }
        if let c = f.compression { rows.append((t("user_fax_compression", language), compressionName(c))) }
        if let n = f.ecmRetransmittedFrames, f.ecm == true || n > 0 { rows.append((t("user_fax_ecm_resent", language), "\(n)")) }
        if includeFailure, let failure = f.failure {
            var text = failure.reason(f.direction, language: language)
            if withSupport {
                // The engine's words are for support; cleaned of control characters, escaped by the template.
                let words = PartyNumberFormat.cleaned(failure.text)
                text += " (\(failure.kind.rawValue), code \(failure.code)" + (words.isEmpty ? ")" : ": \(words))")
            }
            rows.append((t("user_fax_failure", language), text))
        }
        return rows
    }

    /// The page table's rows.
    static func pageRows(_ pages: [FaxPageStatistics], language: String) -> [[String: Any]] {
        pages.prefix(pageRowLimit).map { p in
            [
                "page": "\(p.page)",
                "rate": p.bitRate.map { "\($0) bit/s" } ?? "–",
                "compression": p.compression.map(compressionName) ?? "–",
                "resolution": p.fine.map { t($0 ? "user_resolution_fine" : "user_resolution_normal", language) } ?? "–",
                "ecm": p.ecm.map { t($0 ? "user_fax_yes" : "user_fax_no", language) } ?? "–",
                "resent": p.ecmRetransmittedFrames.map(String.init) ?? "–",
                "badRows": p.badRows.map(String.init) ?? "–",
            ] as [String: Any]
        }
    }

    /// The values the `fax-page-stats` partial reads.
    static func pageValues(_ f: Facts, language: String) -> [String: Any] {
        ["hasPageStats": !f.pages.isEmpty, "pageStats": pageRows(f.pages, language: language)]
    }

    /// "at most 9600 bit/s, ECM off" in the reader's language, for the admin's job page.
    static func modemLimits(_ m: ModemSettings, language: String) -> String {
        let rate = m.maxBitRate.map { String(format: t("user_fax_limit_rate", language), $0) } ?? t("user_fax_limit_best", language)
        return rate + ", ECM " + t(m.ecm ? "user_fax_on" : "user_fax_off", language)
    }
}
