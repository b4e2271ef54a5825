import Foundation

extension CAPISettings {
    /// The words `fax_engine` and each `fax_engines` value may take. The CAPI plugin interprets them; the core
    /// only checks the spelling so a typo fails at `config check` instead of silently meaning "auto".
    public static let faxEngineChoices = ["controller", "software", "auto"]

    /// The TCP port libcapi20 is pointed at: the configured one, else the driver's usual one. libcapi20 itself
    /// falls back to rcapi's 2662 for every driver, but AVM's CAPI-over-TCP listens on 5031, so a FRITZ!Box
    /// configured with `driver: fritzbox` and no port must not end up on 2662.
    public var effectivePort: Int {
        if let port { return port }
        return driver == "fritzbox" ? 5031 : 2662
    }
}

extension ConfigValidator {
    /// `capi:` — engine words and the controller numbers used as `fax_engines` keys.
    static func validateCAPI(_ c: Configuration) -> [Problem] {
        var problems: [Problem] = []
        let choices = CAPISettings.faxEngineChoices.joined(separator: ", ")
        // Case-insensitive like the plugin that reads the words.
        if !CAPISettings.faxEngineChoices.contains(c.capi.faxEngine.lowercased()) {
            problems.append(Problem(path: [.key("capi"), .key("fax_engine")], message: "must be one of \(choices)"))
        }
        // Sorted so the report is stable (a dictionary has no order); the YAML key is the number as written.
        for (controller, engine) in c.capi.faxEngines.sorted(by: { $0.key < $1.key }) {
            let path: [ConfigLoader.PathElement] = [.key("capi"), .key("fax_engines"), .key(String(controller))]
            if !(1...127).contains(controller) {
                problems.append(Problem(path: path, message: "controller numbers run from 1 to 127"))
            }
            if !CAPISettings.faxEngineChoices.contains(engine.lowercased()) {
                problems.append(Problem(path: path, message: "controller \(controller): must be one of \(choices)"))
            }
        }
        return problems
    }

    /// What works but will not fax: AVM's CAPI over TCP has no T.30 (the box reports none in its profile), so
    /// `controller` for a FRITZ!Box makes every fax call fail at connect time.
    static func warnCAPI(_ c: Configuration) -> [Problem] {
        guard c.capi.driver == "fritzbox" else { return [] }
        var warnings: [Problem] = []
        let message = "WARNING: a FRITZ!Box has no fax firmware (its CAPI profile lacks T.30); use auto or software"
        if c.capi.faxEngine.lowercased() == "controller" {
            warnings.append(Problem(path: [.key("capi"), .key("fax_engine")], message: message))
        }
        for (controller, engine) in c.capi.faxEngines.sorted(by: { $0.key < $1.key }) where engine.lowercased() == "controller" {
            warnings.append(Problem(path: [.key("capi"), .key("fax_engines"), .key(String(controller))], message: message))
        }
        return warnings
    }

    /// `reception.unknown_numbers`: a typo must not silently mean "reject" on a line shared with phones.
    static func validateUnknownNumbers(_ c: Configuration) -> [Problem] {
        ["reject", "ignore"].contains(c.reception.unknownNumbers) ? []
            : [Problem(path: [.key("reception"), .key("unknown_numbers")], message: "must be reject or ignore")]
    }
}
