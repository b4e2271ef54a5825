import FaxgateCore
import FaxRender
import Foundation

/// The send form's number field, read by the rules of mail addressing: only ASCII digits, spaces, `- . / ( )` and
/// a leading `+`, checked on Unicode scalars before anything is trimmed (`NumberPlan`), and the digit-group
/// grammar of the Subject (`FaxAddressing.subjectNumber`): more digit groups after a complete number
/// ("030 1234567 3") are refused, never merged into the number.
public enum WebNumber {
    public enum Problem: Error, Sendable, Equatable, LocalizedReason {
        case number(NumberPlan.Failure)
        case digitsAfterNumber(number: String, following: String)
        /// Not one number (a dash, several numbers …).
        case notOneNumber(String)

        public func text(_ language: String) -> String {
            let de = language != "en"
            let hint = de ? " Schreiben Sie die Nummer am Stück oder als Vorwahl und Rufnummer, z. B. 030 1234567 oder 030-1234567."
                          : " Write the number in one piece or as area code and number, e.g. 030 1234567 or 030-1234567."
            switch self {
            case .number(let failure): return failure.text(language)
            case .digitsAfterNumber(let number, let following):
                return (de ? "auf die Nummer \(number) folgen weitere Ziffern (\(following)); ob sie dazugehören, ist nicht eindeutig, deshalb wurde nichts gesendet."
                           : "more digits (\(following)) follow the number \(number); whether they belong to it is unclear, so nothing was sent.") + hint
            case .notOneNumber(let shown):
                return (de ? "„\(shown)“ ist nicht genau eine Faxnummer." : "'\(shown)' is not exactly one fax number.") + hint
            }
        }
    }

    /// The E.164 number of the field, or why there is none.
    public static func parse(_ written: String, plan: NumberPlan) -> Result<String, Problem> {
        let e164: String
        do { e164 = try plan.e164(written) } catch { return .failure(.number(error)) }
        switch FaxAddressing.subjectNumber(written, plan: plan) {
        case .failure(.digitsAfterNumber(let number, let following)): return .failure(.digitsAfterNumber(number: number, following: following))
        case .failure: return .failure(.notOneNumber(NumberPlan.shown(written)))
        case .success(let found):
            guard found.rest.isEmpty else { return .failure(.notOneNumber(NumberPlan.shown(written))) }
            return .success(e164)
        }
    }
}

/// What an uploaded file is, from its bytes (never its name or the browser's claim).
public enum WebUpload {
    /// The MIME type the processor gets, or nil for anything we do not fax (Office files, archives, binaries).
    public static func contentType(of bytes: [UInt8]) -> String? {
        switch FaxRenderer.detect(mimeType: "application/octet-stream", filename: nil, bytes: bytes) {
        case .pdf?: return "application/pdf"
        case .postScript?: return "application/postscript"
        case .tiff?: return "image/tiff"
        case .image(_, let type)?: return type
        case .text?, .html?, nil: break
        }
        // Text: UTF-8 without NUL or other control characters than tab, line breaks and form feed.
        guard !bytes.isEmpty, String(validating: bytes, as: UTF8.self) != nil,
              !bytes.contains(where: { $0 < 0x20 && ![0x09, 0x0A, 0x0C, 0x0D].contains($0) || $0 == 0x7F }) else { return nil }
        return "text/plain; charset=utf-8"
    }
}

/// A refusal with its details, read as one text in the reader's language.
public struct CombinedReason: LocalizedReason {
    public var reason: any LocalizedReason
    public var details: [any LocalizedReason]
    public init(_ reason: any LocalizedReason, details: [any LocalizedReason]) { self.reason = reason; self.details = details }
    public func text(_ language: String) -> String {
        ([reason.text(language)] + details.map { $0.text(language) }).joined(separator: ": ")
    }
}
