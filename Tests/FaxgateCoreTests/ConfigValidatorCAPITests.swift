import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// `capi.fax_engine` / `capi.fax_engines` and the FRITZ!Box port default, through the real YAML loader so
/// the reported lines are the ones `config check` prints.
final class ConfigValidatorCAPITests: XCTestCase {
    func testEngineWords_areAccepted_andCarriedPerController() throws {
        let config = try ConfigLoader.parse(yaml(capi: """
              fax_engine: software
              fax_engines:
                1: controller
                2: auto
            """))
        XCTAssertEqual(config.capi.faxEngine, "software")
        XCTAssertEqual(config.capi.faxEngines, [1: "controller", 2: "auto"])
    }

    func testEngine_defaultsToAuto() throws {
        let config = try ConfigLoader.parse(yaml(capi: ""))
        XCTAssertEqual(config.capi.faxEngine, "auto")
        XCTAssertEqual(config.capi.faxEngines, [:])
    }

    func testUnknownEngineWord_isReportedWithItsLine() {
        XCTAssertThrowsError(try ConfigLoader.parse(yaml(capi: "  fax_engine: spandsp\n"))) { error in
            let issues = (error as! ConfigError).issues
            XCTAssertEqual(issues.count, 1, "\(issues)")
            XCTAssertEqual(issues.first?.path, "capi.fax_engine")
            XCTAssertEqual(issues.first?.line, 15)
            XCTAssertTrue(issues.first!.message.contains("controller, software, auto"), issues.first!.message)
        }
    }

    func testPerControllerEngine_badWordAndBadNumber_eachOnItsLine() {
        let capi = """
              fax_engines:
                1: software
                2: hardware
                0: controller
            """
        XCTAssertThrowsError(try ConfigLoader.parse(yaml(capi: capi))) { error in
            let issues = (error as! ConfigError).issues
            let byPath = Dictionary(issues.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(issues.count, 2, "\(issues)")
            XCTAssertEqual(byPath["capi.fax_engines.2"]?.line, 17, "\(issues)")
            XCTAssertTrue(byPath["capi.fax_engines.2"]!.message.contains("must be one of"))
            XCTAssertEqual(byPath["capi.fax_engines.0"]?.line, 18, "\(issues)")
            XCTAssertTrue(byPath["capi.fax_engines.0"]!.message.contains("1 to 127"))
        }
    }

    func testPerControllerEngine_keyThatIsNoNumber_isRefused() {
        XCTAssertThrowsError(try ConfigLoader.parse(yaml(capi: "  fax_engines:\n    fritz: software\n"))) { error in
            let issues = (error as! ConfigError).issues
            XCTAssertFalse(issues.isEmpty)
            XCTAssertTrue(issues.allSatisfy { $0.path.hasPrefix("capi.fax_engines") }, "\(issues)")
        }
    }

    func testFritzbox_withoutPort_means5031_andAnExplicitPortWins() throws {
        let fritz = try ConfigLoader.parse(yaml(driver: "fritzbox", capi: ""))
        XCTAssertNil(fritz.capi.port)
        XCTAssertEqual(fritz.capi.effectivePort, 5031)
        let explicit = try ConfigLoader.parse(yaml(driver: "fritzbox", capi: "  port: 5032\n"))
        XCTAssertEqual(explicit.capi.effectivePort, 5032)
        let rcapi = try ConfigLoader.parse(yaml(driver: "rcapi", capi: ""))
        XCTAssertEqual(rcapi.capi.effectivePort, 2662)
    }

    func testFritzboxWithControllerEngine_isAWarningWithItsLine_notAnError() throws {
        let yaml = yaml(driver: "fritzbox", capi: "  fax_engine: controller\n")
        let config = try ConfigLoader.parse(yaml)
        let dir = try TemporaryDirectory("capi-warn")
        let path = dir.path + "/faxgate.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let warnings = ConfigLoader.warnings(config, file: path)
        let warning = try XCTUnwrap(warnings.first { $0.path == "capi.fax_engine" }, "\(warnings)")
        XCTAssertEqual(warning.line, 15)
        XCTAssertTrue(warning.message.contains("FRITZ!Box"), warning.message)
        // The same words on rcapi (a card that may well have fax firmware) are no warning.
        let rcapi = try ConfigLoader.parse(self.yaml(capi: "  fax_engine: controller\n"))
        XCTAssertFalse(ConfigLoader.warnings(rcapi, file: path).contains { $0.path.hasPrefix("capi") })
    }

    /// The `capi:` block ends the document head so test lines are stable: line 15 is the first extra line.
    private func yaml(driver: String = "rcapi", capi: String) -> String {
        """
        spool_directory: /var/spool/faxgate
        smtp:
          host: mail.example.com
          port: 587
          security: starttls
        mail:
          from: "Fax <fax@example.com>"
        extensions:
          - name: Front
            numbers: ["100-109"]
            email: [front@example.com]
        capi:
          driver: \(driver)
          host: 192.0.2.10

        """.replacingOccurrences(of: "  host: 192.0.2.10\n", with: "  host: 192.0.2.10\n" + capi)
    }
}
