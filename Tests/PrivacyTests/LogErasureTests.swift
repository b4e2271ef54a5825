import FaxgateCore
import Foundation
import TestSupport
import XCTest

final class LogErasureTests: XCTestCase {
    func testErase_removesOnlyTheSubjectsPseudonym_fromEveryLogFile() throws {
        let dir = try TemporaryDirectory("log-erase")
        let p = Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: "49")
        let subject = p.phone("+49 30 5551234"), other = p.phone("030 9998877")
        XCTAssertEqual(p.phone("030/555 12 34"), subject, "any notation of the number has the same pseudonym")
        try "call from \(subject)\ncall from \(other)\n".write(toFile: dir.path + "/faxgate-2026-11-20.log", atomically: true, encoding: .utf8)
        try "mail for \(subject)\n".write(toFile: dir.path + "/faxgate-2026-11-21.log", atomically: true, encoding: .utf8)
        try "nothing here\n".write(toFile: dir.path + "/faxgate-2026-11-22.log", atomically: true, encoding: .utf8)

        XCTAssertEqual(try LogErasure.erase(token: subject, kind: "phone", in: dir.path), 2)
        let all = try FileManager.default.contentsOfDirectory(atPath: dir.path).map {
            try String(contentsOfFile: dir.path + "/" + $0, encoding: .utf8)
        }.joined()
        XCTAssertFalse(all.contains(subject))
        XCTAssertTrue(all.contains(other), "other callers stay followable")
        XCTAssertTrue(all.contains("call from [phone:erased]"))
        XCTAssertTrue(all.contains("nothing here"))
    }
}
