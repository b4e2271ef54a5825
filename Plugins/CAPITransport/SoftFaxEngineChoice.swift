import CapiProtocol
import FaxgateCore

/// Who runs T.30 for a controller, as configured (`capi.fax_engine`, `capi.fax_engines`).
public enum CAPIFaxEngineSetting: String, Sendable, Equatable, CaseIterable {
    /// Software when the controller's profile shows no T.30 firmware (a FRITZ!Box, a passive card), else the controller.
    case auto
    /// The controller's fax firmware: B protocols 4/4/4, SFF over DATA_B3.
    case controller
    /// Our spandsp modem over a transparent B-channel: B protocols 1/1/0, A-law audio over DATA_B3.
    case software

    /// The config word; nil for anything else (config validation reports it, the plugin then falls back to auto).
    public init?(configValue: String) {
        self.init(rawValue: configValue.lowercased())
    }
}

/// The engine decision per controller: a pure function of the settings and the registered profile.
public struct FaxEngineResolution: Sendable, Equatable {
    public var engine: FaxEngineKind
    /// Why, in words for the log ("configured", "profile has T.30", …).
    public var why: String

    public static func resolve(_ setting: CAPIFaxEngineSetting, profile: CapiProfile?) -> FaxEngineResolution {
        switch setting {
        case .controller: return .init(engine: .controller, why: "configured controller")
        case .software: return .init(engine: .software, why: "configured software")
        case .auto:
            guard let profile else {
                // No profile (a driver that reports none): keep what always worked with such links.
                return .init(engine: .controller, why: "auto, no profile reported: controller")
            }
            return profile.supportsT30
                ? .init(engine: .controller, why: "auto, profile has T.30")
                : .init(engine: .software, why: "auto, profile has no T.30 (B1 0x\(String(profile.b1Support, radix: 16)) "
                        + "B2 0x\(String(profile.b2Support, radix: 16)) B3 0x\(String(profile.b3Support, radix: 16)))")
        }
    }
}

extension CAPITransportSettings {
    /// The configured setting for one controller (its override, else the default).
    public func faxEngineSetting(for controller: Int) -> CAPIFaxEngineSetting {
        faxEngines[controller] ?? faxEngine
    }

    /// Engine per controller for the given controllers and profiles.
    public func resolveFaxEngines(controllers: [Int], profiles: [Int: CapiProfile]) -> [Int: FaxEngineResolution] {
        var result: [Int: FaxEngineResolution] = [:]
        for c in Set(controllers).union(profiles.keys) {
            result[c] = FaxEngineResolution.resolve(faxEngineSetting(for: c), profile: profiles[c])
        }
        return result
    }
}
