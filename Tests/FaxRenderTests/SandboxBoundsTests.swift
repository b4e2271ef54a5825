import FaxDocument
import Foundation
import TestSupport
import XCTest

@testable import FaxRender

/// What reaches the gateway's own memory from a decoder is bounded, and TIFF structure is read without libtiff.
final class SandboxBoundsTests: XCTestCase {
    /// A classic little-endian TIFF whose only directory claims `width` × `height` and has no strips at all.
    static func headerOnlyTIFF(width: UInt32, height: UInt32, nextIFD: UInt32 = 0) -> [UInt8] {
        func u16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
        func u32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
        func entry(_ tag: UInt16, _ value: UInt32) -> [UInt8] { u16(tag) + u16(4) + u32(1) + u32(value) }
        return [0x49, 0x49, 0x2A, 0x00] + u32(8) + u16(2) + entry(256, width) + entry(257, height) + u32(nextIFD)
    }

    func testTIFFBombIsRefusedFromItsDirectoryWithoutDecoding() async throws {
        // 60000 × 60000 in 38 bytes: libtiff in-process would have been asked to allocate 14 GB of RGBA.
        let bomb = Self.headerOnlyTIFF(width: 60_000, height: 60_000)
        let error = await expectRenderError(.tooLarge) { _ = try await FaxRenderer.render(.tiff(bomb)) }
        XCTAssertEqual(error?.description, "image of 60000 × 60000 pixels exceeds the limit of 100000000 pixels")
    }

    func testTIFFDirectoryLoopAndPageCountAreBounded() async throws {
        // The directory's "next" offset points back at itself: an endless page list.
        let loop = Self.headerOnlyTIFF(width: 10, height: 10, nextIFD: 8)
        let looped = await expectRenderError(.broken) { _ = try await FaxRenderer.render(.tiff(loop)) }
        XCTAssertTrue(looped?.description.contains("loop") ?? false, "\(String(describing: looped))")

        let dir = try TemporaryDirectory("render-tiff-pages")
        let threePages = try makeFile(threePagePostScript, device: "tiffg4", extra: ["-r50"], name: "three.tif", in: dir)
        let pages = try TIFFStructure.directories(try bytes(threePages), maxPages: 10)
        XCTAssertEqual(pages.count, 3)
        XCTAssertEqual(pages.first?.bitsPerSample, 1)
        XCTAssertEqual(pages.first?.dpi?.x ?? 0, 50, accuracy: 0.01)
        await expectRenderError(.tooManyPages) {
            _ = try await FaxRenderer.render(.tiff(try bytes(threePages)), options: RenderOptions(maxPages: 2))
        }
    }

    func testPNMFromADecoderIsCheckedBeforeItsPixelsAreAllocated() {
        // A decoder (run on hostile input) may claim any size in its output header.
        let huge = Array("P5\n999999999 999999999\n255\n".utf8) + [0, 0, 0]
        XCTAssertNil(PNM.grey(huge, maxPixels: 100_000_000))
        let wide = Array("P6\n100000001 1\n255\n".utf8)
        XCTAssertNil(PNM.grey(wide, maxPixels: 100_000_000))
        let small = Array("P5\n2 2\n255\n".utf8) + [0, 255, 255, 0]
        XCTAssertEqual(PNM.grey(small, maxPixels: 4)?.pixels, [0, 255, 255, 0])
        XCTAssertNil(PNM.grey(small, maxPixels: 3))
    }

    func testDecoderOutputIsCappedByTheFileSizeLimit() throws {
        // The cap given for a decoder's output is enforced by the kernel (RLIMIT_FSIZE), not by trust.
        let work = try WorkDirectory()
        let result = try Sandbox.run("head", ["-c", "100000", "/dev/zero"], options: RenderOptions(), workDir: work.path,
                                     stdoutPath: work.file("out"), outputLimitBytes: 4096)
        XCTAssertEqual(result.signal, SIGXFSZ)
        XCTAssertLessThanOrEqual((try? FileManager.default.attributesOfItem(atPath: work.file("out"))[.size] as? Int) ?? 0, 4096)
    }

    func testSandboxStatusIsProvenFromInside() {
        // Here (root or a user with user namespaces) the probe must have seen its own limits and only `lo`.
        XCTAssertTrue(RenderSandbox.status.isolated, "\(RenderSandbox.status.problems)")
        XCTAssertTrue(Sandbox.status.prefix.contains { $0.hasSuffix("unshare") })
    }
}
