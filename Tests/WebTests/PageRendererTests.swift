@testable import FaxgateWeb
import Mustache
import XCTest

/// Page values may hold optionals (`x.map(...) as Any`) and empty strings (`x ?? ""`); both must render as
/// absent — nothing, and false in sections — without the lookup climbing to a parent's value of the same name.
final class PageRendererTests: XCTestCase {
    func testAbsentAndEmptyValuesRenderAsNothingAndFalse() throws {
        let values: [String: Any] = [
            "period": Optional<String>.none as Any,
            "since": Optional("2026-12-01") as Any,
            "error": "",
            "rows": [["name": "a", "period": Optional<String>.none as Any], ["name": "b", "period": "May"]] as [[String: Any]],
        ]
        let library = try MustacheLibrary(templates: [
            "t": try MustacheTemplate(string: "{{#period}}{{period}}{{/period}}{{^period}}all{{/period}}|{{since}}|[{{#error}}box{{/error}}{{error}}]|{{#rows}}{{name}}:{{#period}}{{period}}{{/period}}{{^period}}all{{/period}} {{/rows}}"),
        ])
        XCTAssertEqual(library.render(values, withTemplate: "t"), "nil|2026-12-01|[box]|a:nil b:May ",
                       "swift-mustache itself: none renders as text, empty strings are true (why the renderer normalizes)")
        XCTAssertEqual(library.render(PageRenderer.withoutAbsentValues(values), withTemplate: "t"), "all|2026-12-01|[]|a:all b:May ")
        // A row's absent value does not take the page's value of the same name.
        let nested: [String: Any] = ["period": "page", "rows": [["period": Optional<String>.none as Any]] as [[String: Any]]]
        let inner = try MustacheLibrary(templates: ["t": try MustacheTemplate(string: "{{#rows}}<{{period}}>{{/rows}}")])
        XCTAssertEqual(inner.render(PageRenderer.withoutAbsentValues(nested), withTemplate: "t"), "<>")
    }
}
