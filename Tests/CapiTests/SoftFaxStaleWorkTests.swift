@testable import CAPITransport
import Foundation
import Testing

/// A process killed mid-call leaves its software-fax work directory (page images) behind; the next start removes
/// it, and only it.
@Suite struct SoftFaxStaleWorkTests {
    @Test func staleCallDirectoriesGoOtherFilesStay() throws {
        let dir = NSTemporaryDirectory() + "faxgate-stale-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/call-Ab12Cd", withIntermediateDirectories: true)
        #expect(fm.createFile(atPath: dir + "/call-Ab12Cd/softfax-rx.tif", contents: Data([0x49, 0x49, 42, 0])))
        #expect(fm.createFile(atPath: dir + "/keep.txt", contents: Data("x".utf8)))
        defer { try? fm.removeItem(atPath: dir) }

        let failed = SoftFaxChannel.removeStaleWork(in: dir)
        #expect(failed.isEmpty)
        #expect(!fm.fileExists(atPath: dir + "/call-Ab12Cd"))
        #expect(fm.fileExists(atPath: dir + "/keep.txt"))
        // A directory that does not exist yet (first start) is no error.
        #expect(SoftFaxChannel.removeStaleWork(in: dir + "/missing").isEmpty)
    }
}
