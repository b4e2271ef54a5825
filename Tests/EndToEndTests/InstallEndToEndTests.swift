import CapiSimulator
import FaxgateCore
import Foundation
import TestSupport
import XCTest

/// The README's "Running it for real" and the converter sandbox under the shipped systemd unit, without
/// systemd: contrib/install.sh into a temporary root, then the unit's own ExecStartPre/ExecStart lines run
/// as its User= with its restrictions (setpriv + a seccomp filter built like systemd's, Tests/Scripts/unit_exec.py).
/// The unit is parsed, not copied, so these tests break when it drifts.
final class InstallEndToEndTests: XCTestCase {
    static let unitExec = packageRoot.appendingPathComponent("Tests/Scripts/unit_exec.py").path
    static let unit = packageRoot.appendingPathComponent("contrib/faxgate.service").path

    /// The [Service] values of a unit file, every occurrence of a key in order.
    static func serviceSettings(_ path: String) throws -> [String: [String]] {
        var settings: [String: [String]] = [:]
        var inService = false
        for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.hasPrefix("[") { inService = line == "[Service]"; continue }
            guard inService, !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            settings[String(line[..<eq]), default: []].append(String(line[line.index(after: eq)...]))
        }
        return settings
    }

    /// A copy of the unit every user can read (the test's temp dirs are private), optionally with keys replaced.
    static func readableUnit(in dir: TemporaryDirectory, from source: String = unit) throws -> String {
        let path = dir.path + "/faxgate.service"
        try FileManager.default.copyItem(atPath: source, toPath: path)
        try runTool("chmod", ["0755", dir.path])
        try runTool("chmod", ["0644", path])
        return path
    }

    static func ensureServiceUser(_ unit: String) throws -> String {
        let user = try XCTUnwrap(serviceSettings(unit)["User"]?.last)
        try runTool("sh", ["-c", "id \(user) >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin \(user)"])
        return user
    }

    /// Runs `command` as the unit would: its user, capabilities, no_new_privs and seccomp restrictions.
    static func asUnit(_ unit: String, set overrides: [String] = [], _ command: [String], check: Bool = false) throws -> ToolResult {
        try runTool(MailServers.python3, [unitExec, unit] + overrides.flatMap { ["--set", $0] } + ["--"] + command, check: check)
    }

    /// A minimal loadable config with mail → fax addressing, so `config check` and `render` judge the sandbox.
    static func renderConfig(in dir: TemporaryDirectory, user: String, extra: String = "") throws -> String {
        let spool = dir.path + "/spool"
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        try runTool("chown", ["\(user):", spool])
        let path = dir.path + "/faxgate.yaml"
        try """
        spool_directory: \(spool)
        capi: {driver: rcapi, host: 127.0.0.1, port: 2662}
        smtp: {host: localhost, port: 25, security: none}
        mail: {from: "Faxgate <fax@example.test>"}
        extensions:
          - name: Empfang
            numbers: ["100"]
            email: [fax@example.test]
            senders: {allow: [alice@example.test], require_authentication: none, calling_number: "100"}
        outgoing:
          fax_domains: [fax.example.test]
          line: {country_code: "49", area_code: "30"}
          render_timeout_seconds: 20
          render_memory_mb: 300
        \(extra)
        """.write(toFile: path, atomically: true, encoding: .utf8)
        try runTool("chmod", ["0644", path])
        return path
    }

    static func twoPagePDF(in dir: TemporaryDirectory) throws -> String {
        try "%!PS\n/Helvetica findfont 30 scalefont setfont 72 700 moveto (Seite eins) show showpage 72 700 moveto (Seite zwei) show showpage\n"
            .write(toFile: dir.path + "/doc.ps", atomically: true, encoding: .utf8)
        try runTool("gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=pdfwrite", "-sPAPERSIZE=a4", "-sOutputFile=\(dir.path)/doc.pdf", dir.path + "/doc.ps"])
        try runTool("chmod", ["0644", dir.path + "/doc.pdf"])
        return dir.path + "/doc.pdf"
    }

    /// Pages of a PDF our PDFWriter wrote (its page tree says the count).
    static func pdfPageCount(_ path: String) throws -> Int {
        let text = String(decoding: try Data(contentsOf: URL(fileURLWithPath: path)), as: UTF8.self)
        guard let range = text.range(of: "/Type /Pages /Count ") else { return -1 }
        return Int(text[range.upperBound...].prefix { $0.isNumber }) ?? -1
    }

    // MARK: (a) + (b): the sandbox works for the service user under the unit, and it has no network

    func testRenderAsTheServiceUserUnderTheUnitsRestrictions_worksAndTheConverterHasNoNetwork() async throws {
        let dir = try TemporaryDirectory("unit-render")
        let unit = try Self.readableUnit(in: dir)
        let user = try Self.ensureServiceUser(unit)
        let config = try Self.renderConfig(in: dir, user: user)
        let pdf = try Self.twoPagePDF(in: dir)
        let outDir = dir.path + "/out"
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        try runTool("chown", ["\(user):", outDir])

        let check = try Self.asUnit(unit, [GatewayHarness.faxgateBinary, "config", "check", "-c", config])
        XCTAssertEqual(check.status, 0, check.stderrText)
        XCTAssertFalse(check.stderrText.contains("render_sandbox"), check.stderrText)

        let render = try Self.asUnit(unit, [GatewayHarness.faxgateBinary, "render", "-c", config, pdf, "-o", outDir + "/pages.pdf"])
        XCTAssertEqual(render.status, 0, render.stderrText)
        XCTAssertEqual(try Self.pdfPageCount(outDir + "/pages.pdf"), 2)

        // An endless PostScript program keeps Ghostscript running long enough to look at it from outside:
        // the real converter process, started by faxgate as the service user under the unit's filter.
        let endless = dir.path + "/endless.ps"
        try "%!PS\n{ 1 pop } loop\n".write(toFile: endless, atomically: true, encoding: .utf8)
        try runTool("chmod", ["0644", endless])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: MailServers.python3)
        p.arguments = [Self.unitExec, unit, "--", GatewayHarness.faxgateBinary, "render", "-c", config, endless, "-o", outDir + "/never.pdf"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        var converter: Int32?
        let deadline = Date().addingTimeInterval(15)
        while converter == nil && Date() < deadline {
            converter = Self.descendant(of: p.processIdentifier, named: "gs")
            if converter == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        let gs = try XCTUnwrap(converter, "no Ghostscript process below faxgate render")
        defer { kill(gs, SIGKILL) }
        let ours = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        let theirs = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(gs)/ns/net")
        XCTAssertNotEqual(ours, theirs, "the converter must not share the host's network namespace")
        let devices = try String(contentsOfFile: "/proc/\(gs)/net/dev", encoding: .utf8).split(separator: "\n").dropFirst(2)
            .compactMap { $0.split(separator: ":").first?.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(devices, ["lo"], "only a (downed) loopback inside the sandbox")
        let limits = try String(contentsOfFile: "/proc/\(gs)/limits", encoding: .utf8)
        XCTAssertTrue(limits.contains("Max address space         \(300 * 1_048_576)"), limits)
        let status = try String(contentsOfFile: "/proc/\(gs)/status", encoding: .utf8)
        let uid = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("Uid:") })
        let serviceUID = try runTool("id", ["-u", user]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(uid.split(separator: "\t").dropFirst().first.map(String.init), serviceUID, "the converter runs as the service user: \(uid)")
        XCTAssertTrue(status.contains("NoNewPrivs:\t1"), status)
        XCTAssertTrue(status.contains("Seccomp:\t2"), "the unit's filter is inherited by the converter")
    }

    /// A process below `root` (any depth) whose command is `name`.
    static func descendant(of root: Int32, named name: String) -> Int32? {
        var parent: [Int32: Int32] = [:], comm: [Int32: String] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { continue }
            comm[pid] = String(stat[stat.index(after: open)..<close])
            parent[pid] = stat[stat.index(close, offsetBy: 2)...].split(separator: " ").dropFirst().first.flatMap { Int32($0) }
        }
        for (pid, command) in comm where command == name {
            var p: Int32? = pid
            while let current = p, current > 1 {
                if current == root { return pid }
                p = parent[current]
            }
        }
        return nil
    }

    // MARK: (c): where the sandbox cannot be made, nothing is rendered

    func testUnitThatForbidsUserNamespaces_rendersNothing_andConfigCheckSaysWhy() throws {
        let dir = try TemporaryDirectory("unit-nosandbox")
        let unit = try Self.readableUnit(in: dir)
        let user = try Self.ensureServiceUser(unit)
        let config = try Self.renderConfig(in: dir, user: user)
        let pdf = try Self.twoPagePDF(in: dir)
        let outDir = dir.path + "/out"
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        try runTool("chown", ["\(user):", outDir])
        // The unit as it was shipped before: every namespace forbidden, so `unshare` fails for its user.
        let forbid = ["RestrictNamespaces=yes"]

        let check = try Self.asUnit(unit, set: forbid, [GatewayHarness.faxgateBinary, "config", "check", "-c", config])
        XCTAssertEqual(check.status, 78, "config check must fail: \(check.stdoutText) \(check.stderrText)")
        XCTAssertTrue(check.stderrText.contains("outgoing.render_sandbox"), check.stderrText)
        XCTAssertTrue(check.stderrText.contains("user namespaces"), check.stderrText)

        let render = try Self.asUnit(unit, set: forbid, [GatewayHarness.faxgateBinary, "render", "-c", config, pdf, "-o", outDir + "/pages.pdf"])
        XCTAssertEqual(render.status, 69, "refused, not rendered without the sandbox: \(render.stderrText)")
        XCTAssertTrue(render.stderrText.contains("cannot convert documents safely"), render.stderrText)
        XCTAssertFalse(FileManager.default.fileExists(atPath: outDir + "/pages.pdf"))
        // TIFF too: it is decoded in the sandbox (tifftopnm), never by libtiff inside the gateway.
        try runTool("gs", ["-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffg4", "-r100", "-sOutputFile=\(dir.path)/doc.tif", dir.path + "/doc.ps"])
        try runTool("chmod", ["0644", dir.path + "/doc.tif"])
        let tiff = try Self.asUnit(unit, set: forbid, [GatewayHarness.faxgateBinary, "render", "-c", config, dir.path + "/doc.tif", "-o", outDir + "/tiff.pdf"])
        XCTAssertEqual(tiff.status, 69, "TIFF refused without the sandbox: \(tiff.stderrText)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: outDir + "/tiff.pdf"))

        // The admin's explicit opt-out: rendered, and config check still warns.
        let allowing = try Self.renderConfig(in: dir, user: user, extra: "  render_sandbox: allow_unsandboxed")
        let warned = try Self.asUnit(unit, set: forbid, [GatewayHarness.faxgateBinary, "config", "check", "-c", allowing])
        XCTAssertEqual(warned.status, 0, warned.stderrText)
        XCTAssertTrue(warned.stderrText.contains("warning: outgoing.render_sandbox: allow_unsandboxed"), warned.stderrText)
        let unsandboxed = try Self.asUnit(unit, set: forbid, [GatewayHarness.faxgateBinary, "render", "-c", allowing, pdf, "-o", outDir + "/pages.pdf"])
        XCTAssertEqual(unsandboxed.status, 0, unsandboxed.stderrText)
    }

    /// The daemon itself under a unit that forbids user namespaces: the mail is refused with a reply that
    /// says why (in the extension's language), the log says why, and nothing is dialled.
    func testMailToFaxUnderAUnitWithoutUserNamespaces_isRefusedWithAReply_andNothingIsDialled() async throws {
        let unitUser = try Self.ensureServiceUser(Self.unit)
        let h = try GatewayHarness(.init(mailToFax: true, runAsUser: unitUser, unitOverrides: ["RestrictNamespaces=yes"]))
        defer { h.shutdown() }
        let work = try TemporaryDirectory("unit-refusal")
        let pdf = try Self.twoPagePDF(in: work)
        try await h.startGateway()
        let spec = work.path + "/mail.json"
        try JSONSerialization.data(withJSONObject: [
            "from": "Alice <alice@example.test>", "to": ["0301234567@fax.example.test"], "subject": "Befund", "headers": [String: String](),
            "attachments": [["path": pdf, "type": "application/pdf", "filename": "Befund.pdf"]],
        ] as [String: Any]).write(to: URL(fileURLWithPath: spec))
        try runTool(MailServers.python3, [packageRoot.appendingPathComponent("Tests/Scripts/make_mail.py").path, spec, spec + ".eml"])
        try h.submit([UInt8](try Data(contentsOf: URL(fileURLWithPath: spec + ".eml"))))

        let replies = try h.mail.fetch(user: "alice@example.test", expect: 1, timeoutSeconds: 60).map { try ParsedMail($0, in: work) }
        let reply = try XCTUnwrap(replies.first, h.gatewayLog())
        XCTAssertTrue(reply.headers["Subject"]?.hasPrefix("Fax nicht gesendet") ?? false, "\(reply.headers)")
        XCTAssertTrue(reply.body.contains("nicht sicher umwandeln"), reply.body)
        XCTAssertTrue(h.gatewayLog().contains("render sandbox unavailable"), h.gatewayLog())
        XCTAssertTrue(h.simulator.outgoingCalls.isEmpty, "nothing may be dialled")
    }

    // MARK: README → install.sh → the unit's ExecStartPre and ExecStart as its user

    func testReadmeInstall_thenTheUnitsCommandsAsItsUser_startReceiveAndRender() async throws {
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let section = try XCTUnwrap(readme.components(separatedBy: "## Running it for real").dropFirst().first?.components(separatedBy: "\n## ").first)
        XCTAssertTrue(section.contains("sudo contrib/install.sh"), "the README installs with the script this test runs")

        let root = try TemporaryDirectory("install-root")
        try runTool("chmod", ["0755", root.path])
        let env = ["DESTDIR": root.path, "FAXGATE_BINARY": GatewayHarness.faxgateBinary, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
        let script = packageRoot.appendingPathComponent("contrib/install.sh").path
        try runTool("sh", [script], environment: env)
        let installedUnit = root.path + "/etc/systemd/system/faxgate.service"
        let settings = try Self.serviceSettings(installedUnit)
        let user = try XCTUnwrap(settings["User"]?.last)

        func mode(_ path: String) throws -> String {
            try runTool("stat", ["-c", "%U:%G %a", root.path + path]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        XCTAssertEqual(try mode("/etc/faxgate"), "root:\(user) 750")
        XCTAssertEqual(try mode("/etc/faxgate/faxgate.yaml"), "root:\(user) 640")
        XCTAssertEqual(try mode("/var/spool/faxgate"), "\(user):\(user) 700")
        XCTAssertEqual(try mode("/usr/local/bin/faxgate"), "root:root 755")
        // The shipped config, untouched, is readable by the service user (it was not before: root 0640 in root 0750).
        let readable = try Self.asUnit(installedUnit, ["cat", root.path + "/etc/faxgate/faxgate.yaml"])
        XCTAssertEqual(readable.status, 0, readable.stderrText)

        // The admin's part: the real servers' settings and the password file, as the README says.
        let h = try GatewayHarness(.init(mailToFax: true))
        defer { h.shutdown() }
        var yaml = try String(contentsOfFile: h.configPath, encoding: .utf8)
        yaml = yaml.replacingOccurrences(of: h.spool, with: "/var/spool/faxgate")
            .replacingOccurrences(of: h.dir.path + "/smtp-password", with: "/etc/faxgate/smtp-password")
            .replacingOccurrences(of: "/var/spool/faxgate", with: root.path + "/var/spool/faxgate")
            .replacingOccurrences(of: "/etc/faxgate/", with: root.path + "/etc/faxgate/")
        let installedConfig = root.path + "/etc/faxgate/faxgate.yaml"
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: installedConfig))
        try handle.truncate(atOffset: 0)
        try handle.write(contentsOf: Data(yaml.utf8))
        try handle.close()
        try runTool("install", ["-m", "0640", "-o", "root", "-g", user, h.dir.path + "/smtp-password", root.path + "/etc/faxgate/smtp-password"])
        try runTool("chmod", ["0755", h.dir.path])  // the harness's CA file lives there
        // Idempotent: a second run keeps the admin's config and fixes nothing that is right.
        try runTool("sh", [script], environment: env)
        XCTAssertEqual(try String(contentsOfFile: installedConfig, encoding: .utf8), yaml)
        XCTAssertEqual(try mode("/etc/faxgate/smtp-password"), "root:\(user) 640")

        // The unit's command lines, with absolute paths moved below the install root.
        func command(_ key: String) throws -> [String] {
            try XCTUnwrap(settings[key]?.last).split(separator: " ").map { $0.hasPrefix("/") ? root.path + $0 : String($0) }
        }
        let pre = try Self.asUnit(installedUnit, try command("ExecStartPre"))
        XCTAssertEqual(pre.status, 0, "ExecStartPre: \(pre.stdoutText) \(pre.stderrText)")

        let log = root.path + "/serve.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        let logHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: MailServers.python3)
        p.arguments = [Self.unitExec, installedUnit, "--"] + (try command("ExecStart"))
        p.standardOutput = logHandle
        p.standardError = logHandle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer {
            kill(p.processIdentifier, SIGTERM)
            p.waitUntilExit()
        }
        func serveLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        do { try await h.simulator.waitForListen(timeout: .seconds(30)) } catch {
            XCTFail("the daemon did not start: \(error)\n\(serveLog())")
            return
        }
        // exec all the way down: the pid is the daemon's, running as the unit's user under its filter.
        let status = try String(contentsOfFile: "/proc/\(p.processIdentifier)/status", encoding: .utf8)
        let serviceUID = try runTool("id", ["-u", user]).stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(status.contains("Uid:\t\(serviceUID)\t"), status)
        XCTAssertTrue(status.contains("Seccomp:\t2"), status)
        XCTAssertTrue(status.contains("CapBnd:\t0000000000000000"), status)

        // Fax in: spooled in the installed spool and mailed.
        let work = try TemporaryDirectory("install-work")
        let source = try FaxReceptionEndToEndTests.sourceDocument(in: work, fine: true)
        let call = try await h.simulator.placeFaxCall(SimulatedFaxCall(from: "+49301112223", to: "100", document: source.sff))
        XCTAssertTrue(call.accepted, serveLog())
        XCTAssertEqual(try h.mail.fetch(user: h.mail.user, expect: 1, timeoutSeconds: 30).count, 1, serveLog())
        let spooled = try FileManager.default.subpathsOfDirectory(atPath: root.path + "/var/spool/faxgate")
        XCTAssertTrue(spooled.contains { $0.hasSuffix(".sff") }, "\(spooled)")

        // Mail → fax: the PDF is rendered in the sandbox by the daemon under the unit and dialled.
        h.simulator.setOutgoingBehaviour(for: "0301234567", [.answer(remoteStationID: "+49 30 1234567", rate: 14400, fine: nil, pagesConfirmed: nil)])
        let pdf = try Self.twoPagePDF(in: work)
        let spec = work.path + "/mail.json"
        try JSONSerialization.data(withJSONObject: [
            "from": "Alice <alice@example.test>", "to": ["0301234567@fax.example.test"], "subject": "Befund", "headers": [String: String](),
            "attachments": [["path": pdf, "type": "application/pdf", "filename": "Befund.pdf"]],
        ] as [String: Any]).write(to: URL(fileURLWithPath: spec))
        try runTool(MailServers.python3, [packageRoot.appendingPathComponent("Tests/Scripts/make_mail.py").path, spec, spec + ".eml"])
        try h.submit([UInt8](try Data(contentsOf: URL(fileURLWithPath: spec + ".eml"))))
        let deadline = Date().addingTimeInterval(60)
        while h.simulator.outgoingCalls.first?.document.isEmpty ?? true && Date() < deadline { try await Task.sleep(for: .milliseconds(200)) }
        let sent = try XCTUnwrap(h.simulator.outgoingCalls.first, "nothing dialled:\n\(serveLog())")
        XCTAssertEqual(sent.calledNumber, "0301234567")
        XCTAssertFalse(sent.document.isEmpty)
        XCTAssertFalse(serveLog().contains("render sandbox unavailable"), serveLog())

        // Cheap extra: systemd's own parser accepts the unit (where this systemd-analyze can check offline).
        if let analyze = try? resolveExecutable("systemd-analyze") {
            let verify = try runTool(analyze, ["verify", "--man=no", Self.unit], check: false)
            let complaints = (verify.stdoutText + verify.stderrText).split(separator: "\n")
                .filter { !$0.contains("is not executable") && !$0.contains("No such file") && !$0.contains("System has not been booted")
                    && !$0.contains("Failed to connect") && !$0.contains("Failed to prepare") && !$0.contains("Unit dialout") }
            XCTAssertTrue(complaints.allSatisfy { !$0.contains("Unknown key") && !$0.contains("Invalid") && !$0.contains("Failed to parse") },
                          complaints.joined(separator: "\n"))
        }
    }
}
