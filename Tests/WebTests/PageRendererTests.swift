@testable import FaxgateWeb
import Mustache
import XCTest

/// Page values may hold optionals (`x.map(...) as Any`); an absent one must render as absent, not as "nil".
final class PageRendererTests: XCTestCase {
    func testAbsentOptionalsAreDroppedBeforeRendering() throws {
        let values: [String: Any] = [
            "period": Optional<String>.none as Any,
            "since": Optional("2026-12-01") as Any,
            "rows": [["name": "a", "period": Optional<String>.none as Any]] as [[String: Any]],
        ]
        let library = try MustacheLibrary(templates: [
            "t": try MustacheTemplate(string: "{{#period}}{{period}}{{/period}}{{^period}}all{{/period}}|{{since}}|{{#rows}}{{name}}:{{#period}}{{period}}{{/period}}{{^period}}all{{/period}}{{/rows}}"),
        ])
        XCTAssertEqual(library.render(values, withTemplate: "t"), "nil|2026-12-01|a:nil",
                       "swift-mustache itself renders optionals in Any as text (why the renderer unwraps them)")
        XCTAssertEqual(library.render(PageRenderer.withoutAbsentValues(values), withTemplate: "t"), "all|2026-12-01|a:all")
    }
}
