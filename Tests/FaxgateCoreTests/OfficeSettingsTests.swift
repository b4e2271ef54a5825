import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// The office settings' source-of-truth rule, the stored document and the merge into the file.
final class OfficeSettingsTests: XCTestCase {
    // MARK: The three-way rule, every case

    func testNothingStored_importsTheFile() {
        XCTAssertEqual(OfficeSettingsRule.decide(fileHash: "F1", stored: nil), .importFile(initial: true))
    }

    func testFileUnchangedSinceImport_storedWins_evenWithWebEdits() {
        // Web edited (content W ≠ imported F1), file still F1: the web's version applies.
        XCTAssertEqual(OfficeSettingsRule.decide(fileHash: "F1", stored: ("F1", "W")), .useStored)
        // Nobody edited: same.
        XCTAssertEqual(OfficeSettingsRule.decide(fileHash: "F1", stored: ("F1", "F1")), .useStored)
    }

    func testFileChanged_webNot_reimportsTheFile() {
        XCTAssertEqual(OfficeSettingsRule.decide(fileHash: "F2", stored: ("F1", "F1")), .importFile(initial: false))
    }

    func testBothChanged_isAConflict() {
        XCTAssertEqual(OfficeSettingsRule.decide(fileHash: "F2", stored: ("F1", "W")), .conflict)
    }

    func testFileNowEqualsTheStoredDocument_isAdopted_notAConflict() {
        // The admin put `config export` into the file: both "changed", but they agree.
        XCTAssertEqual(OfficeSettingsRule.decide(fileHash: "W", stored: ("F1", "W")), .adoptFile)
    }

    // MARK: Hashes, document, merge

    func testContentHash_ignoresCommentsOrderAndLeftOutDefaults() throws {
        let a = try OfficeSettings.fromFile(sampleText)
        let rewritten = "# a comment\n" + sampleText.replacingOccurrences(of: "    formats: [pdf]\n", with: "")
        let b = try OfficeSettings.fromFile(rewritten)
        XCTAssertEqual(a.contentHash, b.contentHash)
        var c = a
        c.extensions[0].email = ["other@example.com"]
        XCTAssertNotEqual(a.contentHash, c.contentHash)
    }

    func testStoredDocument_roundTrips() throws {
        var office = try OfficeSettings.fromFile(sampleText)
        office.extensions[0].senders.secret = "s3cret"
        office.retentionDays = ["received_faxes": 30]
        office.legalHolds = ["+49301234567"]
        let doc = StoredOfficeDocument(settings: office, importedFileHash: "abc123")
        let back = try StoredOfficeDocument(text: try doc.text())
        XCTAssertEqual(back, doc)
    }

    func testMergedFile_isCheckedByConfigLoader_andGivesTheSameConfiguration() throws {
        let fileConfig = try ConfigLoader.parse(sampleText)
        var office = OfficeSettings(fileConfig)
        // Unchanged settings: the merged file is the same configuration.
        XCTAssertEqual(try ConfigLoader.parse(try office.merged(intoFile: sampleText)), fileConfig)
        // Changed ones land in the right places, infrastructure untouched.
        office.extensions[0].email = ["new@example.com"]
        office.policy.maxJobsPerSenderPerDay = 7
        office.retentionDays = ["voicemails": 10]
        office.legalHolds = ["+49301234567"]
        let merged = try ConfigLoader.parse(try office.merged(intoFile: sampleText))
        XCTAssertEqual(merged.extensions[0].email, ["new@example.com"])
        XCTAssertEqual(merged.outgoing.policy.maxJobsPerSenderPerDay, 7)
        XCTAssertEqual(merged.retention.days, ["voicemails": 10])
        XCTAssertEqual(merged.privacy.legalHolds, ["+49301234567"])
        XCTAssertEqual(merged.smtp, fileConfig.smtp)
        XCTAssertEqual(merged.outgoing.line, fileConfig.outgoing.line)
        XCTAssertEqual(OfficeSettings(merged), office)
    }

    func testInvalidOfficeSettings_failTheConfigCheckRules() throws {
        var office = try OfficeSettings.fromFile(sampleText)
        office.extensions[1].numbers = ["100"]   // overlaps the first extension
        office.extensions[0].formats = ["docx"]
        XCTAssertThrowsError(try ConfigLoader.parse(try office.merged(intoFile: sampleText))) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("extensions[1].numbers"), text)
            XCTAssertTrue(text.contains("extensions[0].formats"), text)
        }
    }

    func testChangeSummary_namesChanges_neverTheSecret() throws {
        let old = try OfficeSettings.fromFile(sampleText)
        var new = old
        new.extensions[0].email = ["new@example.com"]
        new.extensions[0].senders.secret = "topsecret-value"
        new.legalHolds = ["+49301234567"]
        let lines = new.changes(from: old)
        XCTAssertTrue(lines.contains("extension Sales: email sales@example.com → new@example.com"), "\(lines)")
        XCTAssertTrue(lines.contains("extension Sales: senders.secret set"), "\(lines)")
        XCTAssertTrue(lines.contains("legal hold added: +49301234567"), "\(lines)")
        XCTAssertFalse(lines.joined().contains("topsecret"))
        XCTAssertEqual(old.changes(from: old), [])
    }

    let sampleText = """
    spool_directory: /var/spool/faxgate
    smtp:
      host: mail.example.com
      port: 587
      security: starttls
    mail:
      from: "Faxgate <fax@example.com>"
    catch_all: Sales
    extensions:
      - name: Sales
        numbers: ["100"]
        email: sales@example.com
        formats: [pdf]
        station_id: "+49 30 1234100"
      - name: Support
        numbers: ["200-209"]
        email: [support@example.com]
        language: en
    outgoing:
      fax_domains: [fax.example.com]
      line:
        country_code: "49"
        area_code: "30"

    """
}
