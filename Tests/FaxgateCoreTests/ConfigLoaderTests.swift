import FaxgateCore
import Foundation
import TestSupport
import XCTest

final class ConfigLoaderTests: XCTestCase {
    func testSampleConfig_inContrib_isValid() throws {
        let config = try ConfigLoader.load(path: packageRoot.appendingPathComponent("contrib/faxgate.yaml").path)
        XCTAssertEqual(config.extensions.map(\.name), ["Reception", "Accounting"])
        XCTAssertEqual(config.extensions[1].email, ["accounting@example.com", "boss@example.com"])
        XCTAssertEqual(config.smtp.security, "starttls")
        XCTAssertEqual(config.log.redaction, ["phone", "email"])
    }

    func testUnknownKey_isReportedWithItsLine() {
        let yaml = minimal.replacingOccurrences(of: "  port: 587\n", with: "  port: 587\n  pasword: x\n")
        XCTAssertThrowsError(try ConfigLoader.parse(yaml)) { error in
            let issues = (error as! ConfigError).issues
            XCTAssertEqual(issues.count, 1, "\(issues)")
            XCTAssertEqual(issues.first?.line, 6)
            XCTAssertEqual(issues.first?.path, "smtp.pasword")
            XCTAssertTrue(issues.first!.message.contains("unknown key"))
        }
    }

    func testTypeMismatch_pointsAtTheValue() {
        let yaml = minimal.replacingOccurrences(of: "port: 587", with: "port: submission")
        XCTAssertThrowsError(try ConfigLoader.parse(yaml)) { error in
            let issue = (error as! ConfigError).issues.first!
            XCTAssertEqual(issue.line, 5)
            XCTAssertEqual(issue.path, "smtp.port")
            XCTAssertTrue(issue.message.contains("whole number"), issue.message)
        }
    }

    func testMissingKey_namesTheSection() {
        let yaml = minimal.replacingOccurrences(of: "  host: mail.example.com\n", with: "")
        XCTAssertThrowsError(try ConfigLoader.parse(yaml)) { error in
            let issue = (error as! ConfigError).issues.first!
            XCTAssertEqual(issue.line, 4)
            XCTAssertTrue(issue.message.contains("'host'"), issue.message)
        }
    }

    func testYamlSyntaxError_hasLineAndColumn() {
        let yaml = minimal.replacingOccurrences(of: "  security: starttls", with: "  security: [starttls")
        XCTAssertThrowsError(try ConfigLoader.parse(yaml)) { error in
            let issue = (error as! ConfigError).issues.first!
            XCTAssertNotNil(issue.line)
            XCTAssertTrue(issue.message.hasPrefix("YAML syntax"), issue.message)
        }
    }

    func testSemanticErrors_areAllReportedWithLines() {
        let yaml = minimal + """
          - name: Second
            numbers: ["105-110", "12a", "200-100"]
            email: [nobody]
            language: fr
            station_id: "this is far too long for a fax id"
        catch_all: Nobody
        """
        XCTAssertThrowsError(try ConfigLoader.parse(yaml)) { error in
            let issues = (error as! ConfigError).issues
            let byPath = Dictionary(issues.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
            XCTAssertEqual(byPath["extensions[1].numbers[0]"]?.line, 17, "\(issues)")
            XCTAssertTrue(byPath["extensions[1].numbers[0]"]!.message.contains("overlaps 100-109"))
            XCTAssertEqual(byPath["extensions[1].numbers[1]"]?.line, 17)
            XCTAssertNotNil(byPath["extensions[1].numbers[2]"])
            XCTAssertEqual(byPath["extensions[1].email[0]"]?.line, 18)
            XCTAssertEqual(byPath["extensions[1].language"]?.line, 19)
            XCTAssertEqual(byPath["extensions[1].station_id"]?.line, 20)
            XCTAssertEqual(byPath["catch_all"]?.line, 21)
        }
    }

    func testPlainSMTP_toRemoteHost_isRefused() {
        let yaml = minimal.replacingOccurrences(of: "security: starttls", with: "security: none")
        XCTAssertThrowsError(try ConfigLoader.parse(yaml)) { error in
            XCTAssertEqual((error as! ConfigError).issues.first?.path, "smtp.security")
        }
    }

    let minimal = """
    spool_directory: /var/spool/faxgate
    smtp:
      # comment line
      host: mail.example.com
      port: 587
      security: starttls
    mail:
      from: "Fax <fax@example.com>"
    capi:
      driver: rcapi
      host: 127.0.0.1
    extensions:
      - name: Front
        numbers: ["100-109"]
        email: [front@example.com]

    """
}
