import FaxgateCore
import Foundation
import Hummingbird
import Mustache

/// Server-rendered pages: swift-mustache templates from `Templates/` (HTML-escaped by default; never use
/// `{{{ }}}`), every page a child of `layout.mustache`. Each page gets, besides its own values:
/// `t` (the strings of the request's language, `Strings/*.swift`), `lang`, `csrf` (the session's token for
/// every form), `user` (name, isAdmin) and `path`.
public struct PageRenderer: Sendable {
    let library: MustacheLibrary

    public init() async throws {
        guard let dir = Bundle.module.path(forResource: "Templates", ofType: nil) else {
            throw StorageError("FaxgateWeb templates are missing from the bundle")
        }
        library = try await MustacheLibrary(directory: dir)
    }

    /// The renderer over the bundled templates, loaded once on first use. Page handlers call
    /// `PageRenderer.shared.page(...)`. A template that does not parse stops the process at the first page
    /// (WebTests render every template, so that never ships).
    public static let shared: PageRenderer = {
        do { return try PageRenderer(loadingSynchronously: ()) } catch { fatalError("FaxgateWeb templates: \(error)") }
    }()

    /// The bundle's `Templates` folder.
    public static var templateDirectory: String? { Bundle.module.path(forResource: "Templates", ofType: nil) }

    init(loadingSynchronously: Void) throws {
        guard let dir = Self.templateDirectory else {
            throw StorageError("FaxgateWeb templates are missing from the bundle")
        }
        var library = MustacheLibrary()
        for file in try FileManager.default.contentsOfDirectory(atPath: dir).sorted() where file.hasSuffix(".mustache") {
            let text = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
            do {
                library.register(try MustacheTemplate(string: text), named: String(file.dropLast(".mustache".count)))
            } catch {
                throw StorageError("template \(file) does not parse: \(error)")
            }
        }
        self.library = library
    }

    /// The page `template` as an HTML response. `values` are the page's own; the common ones are added here.
    /// An absent or empty value: renders as nothing and counts as false in `{{#x}}` / `{{^x}}`. swift-mustache
    /// would otherwise render an `Optional.none` stored in `Any` as the text "nil" and take both it and an empty
    /// string as true (an empty error box); dropping the key instead would let the lookup climb to a parent's
    /// value of the same name.
    struct Blank: MustacheCustomRenderable {
        var renderText: String { "" }
        var isNull: Bool { true }
    }

    /// `values` with every `Optional` unwrapped and every absent or empty one replaced by `Blank`.
    static func withoutAbsentValues(_ values: [String: Any]) -> [String: Any] {
        func normalized(_ value: Any) -> Any {
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .optional {
                guard let inner = mirror.children.first?.value else { return Blank() }
                return normalized(inner)
            }
            if let text = value as? String, text.isEmpty { return Blank() }
            if let dictionary = value as? [String: Any] { return dictionary.mapValues(normalized) }
            if let array = value as? [[String: Any]] { return array.map { $0.mapValues(normalized) } }
            return value
        }
        return values.mapValues(normalized)
    }

    public func page(_ template: String, _ values: [String: Any], request: Request, context: WebContext,
                     status: HTTPResponse.Status = .ok) -> Response {
        var all = Self.withoutAbsentValues(values)
        all["t"] = Strings.nestedTable(context.language)
        all["lang"] = context.language
        all["otherLang"] = context.language == "de" ? "en" : "de"
        all["csrf"] = context.csrfToken
        all["path"] = request.uri.path
        if let user = context.user {
            // The nav shows pages only to a fully logged-in user (not while the second factor or TOTP enrolment is due).
            let complete = context.authState == .complete
            all["user"] = ["name": user.name, "isAdmin": complete && user.role == .admin, "loggedIn": complete] as [String: Any]
        }
        var html = library.render(all, withTemplate: template) ?? "template \(template) failed to render"
        // Bidi embeddings/overrides/isolates from stored data (a station id, a Subject, a file name) would reorder
        // what the page shows ("invoice\u{202E}fdp.exe" reads as "invoiceexe.pdf"); no template or string uses them.
        if html.unicodeScalars.contains(where: Self.isBidiControl) {
            html = String(String.UnicodeScalarView(html.unicodeScalars.filter { !Self.isBidiControl($0) }))
        }
        var response = Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: html)))
        response.headers[.cacheControl] = "no-store"
        return response
    }

    static func isBidiControl(_ s: Unicode.Scalar) -> Bool { (0x202A...0x202E).contains(s.value) || (0x2066...0x2069).contains(s.value) }
}

/// Times and durations as every page shows them, in the page's language.
enum PageFormat {
    /// `dd.MM.yyyy HH:mm[:ss]` in German, `yyyy-MM-dd HH:mm[:ss]` in English; "–" when there is no time.
    static func time(_ date: Date?, _ language: String, seconds: Bool) -> String {
        guard let date else { return "–" }
        let f = DateFormatter()
        f.locale = Locale(identifier: language == "de" ? "de_DE" : "en_GB")
        f.dateFormat = (language == "de" ? "dd.MM.yyyy HH:mm" : "yyyy-MM-dd HH:mm") + (seconds ? ":ss" : "")
        return f.string(from: date)
    }

    /// `m:ss`; "–" when unknown.
    static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds >= 0 else { return "–" }
        let s = Int(seconds.rounded())
        return String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// The two languages of every text on the pages. Each area keeps its strings in its own file
/// (`Strings/<Area>Strings.swift`) as `[key: (de, en)]`; keys are unique across areas (prefix them with the area).
public enum Strings {
    static let areas: [[String: (de: String, en: String)]] = [
        CommonStrings.all, AccountStrings.all, UserStrings.all, AdminStrings.all, SettingsStrings.all,
        PrivacyStrings.all, OperationsStrings.all,
    ]

    /// All strings in `language` ("de" or "en"), for the `t` value of a page.
    public static func table(_ language: String) -> [String: String] {
        var out: [String: String] = [:]
        for area in areas {
            for (key, pair) in area { out[key] = language == "de" ? pair.de : pair.en }
        }
        return out
    }

    /// The strings as nested dictionaries by the dots of their keys, because mustache resolves `{{t.user.received.title}}`
    /// by walking `t` → `user` → `received` → `title` (a flat key with dots is never found). So no key may be
    /// a prefix of another ("a.b" and "a.b.c"); WebTests check that.
    public static func nestedTable(_ language: String) -> [String: Any] {
        final class Node { var children: [String: Node] = [:]; var text: String? }
        let root = Node()
        for (key, text) in table(language) {
            var node = root
            for part in key.split(separator: ".").map(String.init) {
                if let next = node.children[part] { node = next } else { let next = Node(); node.children[part] = next; node = next }
            }
            node.text = text
        }
        func value(_ node: Node) -> Any {
            if node.children.isEmpty { return node.text ?? "" }
            return node.children.mapValues(value)
        }
        return (value(root) as? [String: Any]) ?? [:]
    }

    /// One string in `language`; the key itself when missing (a test checks none is missing).
    public static func text(_ key: String, _ language: String) -> String {
        for area in areas { if let pair = area[key] { return language == "de" ? pair.de : pair.en } }
        return key
    }
}
