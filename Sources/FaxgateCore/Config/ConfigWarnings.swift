import Foundation
import Yams

extension ConfigLoader {
    /// What works but an admin must know about (e.g. `require_authentication: none`), with line numbers.
    /// `config check` prints these; they never stop the gateway.
    public static func warnings(_ config: Configuration, file path: String) -> [ConfigIssue] {
        let text = FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let root = try? Yams.compose(yaml: text)
        return (ConfigValidator.warnOutgoing(config) + ConfigValidator.warnCAPI(config)).map { w in
            let mark = root.flatMap { node(at: w.path, in: $0) }?.mark
            return ConfigIssue(line: mark?.line, column: mark?.column, path: render(w.path), message: w.message)
        }
    }
}
