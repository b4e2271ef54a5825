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

/// `gdpr erase` while `serve` writes: the daemon's DailyLogFiles keeps appending from another thread (its own
/// open file, as in the daemon) while erasure rewrites the same day's file again and again.
final class LogErasureWhileWritingTests: XCTestCase {
    func testErase_whileTheDaemonAppends_losesNoLine_andDuplicatesNone() throws {
        let dir = try TemporaryDirectory("log-erase-live")
        let p = Pseudonymizer(key: Pseudonymizer.randomKey(), countryCode: "49")
        let subject = p.phone("+49 30 5551234"), other = p.phone("+49 30 9998877")
        let files = DailyLogFiles(directory: dir.path)
        let total = 4000
        let done = DispatchSemaphore(value: 0)
        let writer = Thread {
            for i in 0..<total {
                // Every third line is about the subject; all lines are numbered so each can be found once.
                files.write("line \(i) end call from \(i % 3 == 0 ? subject : other)\n")
            }
            done.signal()
        }
        writer.start()
        var erasures = 0
        while done.wait(timeout: .now()) == .timedOut {
            erasures += try LogErasure.erase(token: subject, kind: "phone", in: dir.path)
        }
        XCTAssertGreaterThan(erasures, 3, "erasure must have run while lines were written")
        try LogErasure.erase(token: subject, kind: "phone", in: dir.path)
        // The daemon's next line after the last erase still lands in the file that is there.
        files.write("after erase\n")

        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        XCTAssertEqual(names.count, 1, "\(names)")
        let text = try String(contentsOfFile: dir.path + "/" + names[0], encoding: .utf8)
        var seen = [Int](repeating: 0, count: total)
        for line in text.split(separator: "\n") where line.hasPrefix("line ") {
            XCTAssertTrue(line.hasSuffix(" end call from [phone:erased]") || line.hasSuffix(" end call from \(other)"), String(line))
            if let n = Int(line.split(separator: " ")[1]) { seen[n] += 1 }
        }
        XCTAssertEqual(seen.indices.filter { seen[$0] != 1 }.prefix(10), [], "lines lost or doubled (first ten shown)")
        XCTAssertFalse(text.contains(subject))
        XCTAssertTrue(text.hasSuffix("after erase\n"))
        var st = stat()
        XCTAssertEqual(stat(dir.path + "/" + names[0], &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
    }
}
