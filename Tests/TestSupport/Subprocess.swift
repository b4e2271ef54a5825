import Foundation

/// Result of running an external tool (Ghostscript, sfftobmp, pdftoppm, test servers …).
public struct ToolResult: Sendable {
    public var status: Int32
    public var stdout: Data
    public var stderr: Data
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    public var stderrText: String { String(decoding: stderr, as: UTF8.self) }
}

public struct ToolError: Error, CustomStringConvertible {
    public var description: String
    public init(description: String) { self.description = description }
}

/// Runs `executable` (absolute path or a name looked up in PATH) and waits for it.
/// Output is collected through files, not pipes, so a daemon that keeps a descriptor open cannot stall us.
@discardableResult
public func runTool(
    _ executable: String, _ arguments: [String], stdin: Data? = nil,
    environment: [String: String]? = nil, currentDirectory: URL? = nil, check: Bool = true
) throws -> ToolResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: try resolveExecutable(executable))
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let currentDirectory { process.currentDirectoryURL = currentDirectory }
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("tool-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: scratch) }
    let outURL = scratch.appendingPathComponent("out"), errURL = scratch.appendingPathComponent("err")
    FileManager.default.createFile(atPath: outURL.path, contents: nil)
    FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let out = try FileHandle(forWritingTo: outURL), err = try FileHandle(forWritingTo: errURL)
    process.standardOutput = out
    process.standardError = err
    if let stdin {
        let inURL = scratch.appendingPathComponent("in")
        try stdin.write(to: inURL)
        process.standardInput = try FileHandle(forReadingFrom: inURL)
    } else {
        process.standardInput = FileHandle.nullDevice
    }
    try process.run()
    process.waitUntilExit()
    try out.close(); try err.close()
    let result = ToolResult(
        status: process.terminationStatus, stdout: try Data(contentsOf: outURL), stderr: try Data(contentsOf: errURL))
    if check && result.status != 0 {
        throw ToolError(description: "\(executable) \(arguments.joined(separator: " ")) exited \(result.status): \(result.stderrText.prefix(2000))")
    }
    return result
}

public func resolveExecutable(_ name: String) throws -> String {
    if name.hasPrefix("/") { return name }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    // swift test may hand the runner a trimmed PATH; the Debian locations are always worth a look.
    for dir in path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
        let candidate = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw ToolError(description: "\(name) not found in PATH; run contrib/install-deps.sh")
}

/// A directory removed when the value is dropped (unless FAXGATE_KEEP_TEST_DIRS is set, for post-mortems).
public final class TemporaryDirectory: @unchecked Sendable {
    public let url: URL
    public var path: String { url.path }
    public init(_ label: String = "faxgate-test") throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit {
        if ProcessInfo.processInfo.environment["FAXGATE_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(at: url)
        }
    }
}

/// Root of the package checkout, found from this source file's location.
public let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
