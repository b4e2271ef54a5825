import FaxgateCore
import Foundation
import XCTest

/// `reception.unknown_numbers`: reject (default, as before the key existed) or ignore (a line shared with phones).
final class UnknownNumbersConfigTests: XCTestCase {
    private func yaml(_ reception: String) -> String {
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
          driver: fritzbox
          host: 192.0.2.10
        reception:
        \(reception)
        """
    }

    func testDefault_rejects() throws {
        let config = try ConfigLoader.parse(yaml("  max_pages: 10"))
        XCTAssertTrue(config.reception.rejectsUnknownNumbers)
    }

    func testIgnore_isCarried() throws {
        let config = try ConfigLoader.parse(yaml("  unknown_numbers: ignore"))
        XCTAssertFalse(config.reception.rejectsUnknownNumbers)
    }

    func testTypo_isReportedWithItsLine() {
        XCTAssertThrowsError(try ConfigLoader.parse(yaml("  unknown_numbers: ignroe"))) { error in
            let issues = (error as! ConfigError).issues
            XCTAssertEqual(issues.map(\.path), ["reception.unknown_numbers"], "\(issues)")
            XCTAssertEqual(issues.first?.line, 16)
        }
    }
}
