// Runs converters (Ghostscript, netpbm decoders) on untrusted documents as bounded subprocesses:
// own process group (killed whole on timeout), address-space/CPU/file-size limits through prlimit(1),
// and no network through a fresh network namespace. Fails closed: where either cannot be applied, nothing
// is rendered unless the admin chose `outgoing.render_sandbox: allow_unsandboxed`.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct SandboxResult: Sendable {
    /// Exit code, or nil when a signal ended the process.
    var exitCode: Int32?
    var signal: Int32?
    var timedOut: Bool
    /// stderr (and stdout unless redirected), at most the first 64 KiB.
    var log: String
}

/// Whether converters may run when the sandbox cannot be made (`outgoing.render_sandbox`).
public enum SandboxPolicy: String, Sendable, Equatable, Codable, CaseIterable {
    /// Refuse to render (the safe default): untrusted documents never meet an unbounded, networked converter.
    case required
    /// The admin's explicit choice to render anyway, with whatever isolation is left (logged as a warning).
    case allowUnsandboxed = "allow_unsandboxed"
}

/// What the sandbox can do on this host, as probed from inside it.
public struct SandboxStatus: Sendable, Equatable {
    /// The command prefix that applies limits and cuts the network off; only meaningful when `isolated`.
    var prefix: [String]
    /// Both the limits and the network namespace were seen in force by a probe process.
    public var isolated: Bool { problems.isEmpty }
    /// Why not, one sentence each, for the log, `config check` and the admin.
    public var problems: [String]
}

public enum RenderSandbox {
    /// Probed once per process: the answer does not change while the daemon runs (its unit is fixed).
    public static var status: SandboxStatus { Sandbox.status }

    /// The error a render fails with when the sandbox is required and missing.
    static func refusal(_ status: SandboxStatus) -> RenderError {
        RenderError(.sandboxUnavailable,
                    "the gateway cannot convert documents safely right now (its converter sandbox is not available); the administrator has been told",
                    german: "das Gateway kann Dokumente gerade nicht sicher umwandeln (die abgeschottete Umgebung für die Umwandlung fehlt); der Administrator ist informiert")
    }
}

enum Sandbox {
    static let status: SandboxStatus = probe()

    /// Finds a prefix that bounds resources (prlimit) and cuts the network off (a fresh network namespace),
    /// and proves both from inside: the probe process reads its own limits and network devices.
    /// `unshare -rn` (user + network namespace) works for an unprivileged service user where user namespaces
    /// are allowed (the unit says `RestrictNamespaces=user net`); plain `unshare -n` needs CAP_SYS_ADMIN (root).
    static func probe() -> SandboxStatus {
        var problems: [String] = []
        guard let prlimit = prlimitPath else {
            return SandboxStatus(prefix: [], problems: ["prlimit (util-linux) is not installed, so converters would run without memory and CPU limits"])
        }
        guard let unshare = executable("unshare") else {
            return SandboxStatus(prefix: [], problems: ["unshare (util-linux) is not installed, so converters would run with network access"])
        }
        guard let cat = executable("cat"), let work = try? WorkDirectory() else {
            return SandboxStatus(prefix: [], problems: ["cannot run the sandbox probe (no cat or no scratch directory)"])
        }
        let limitBytes = 256 * 1_048_576
        for flags in [["-r", "-n"], ["-n"]] {
            let prefix = limitPrefix(prlimit, bytes: limitBytes, cpuSeconds: 5) + [unshare] + flags + ["--"]
            let result = spawnAndWait(prefix + [cat, "/proc/self/limits", "/proc/net/dev"], stdinPath: nil,
                                      stdoutPath: work.file("probe.out"), logPath: work.file("probe.err"),
                                      timeoutSeconds: 10, environment: minimalEnvironment(home: work.path))
            let out = readPrefix(work.file("probe.out"), limit: 65_536)
            guard result.exitCode == 0 else {
                problems.append("`unshare \(flags.joined(separator: " "))` failed: \(readPrefix(work.file("probe.err"), limit: 300).trimmingCharacters(in: .whitespacesAndNewlines))")
                continue
            }
            let limited = out.split(separator: "\n").contains { $0.hasPrefix("Max address space") && $0.contains(" \(limitBytes) ") }
            let interfaces = out.split(separator: "\n").compactMap { line -> String? in
                guard let colon = line.firstIndex(of: ":"), !line.hasPrefix("Max"), !line.contains("|") else { return nil }
                return line[..<colon].trimmingCharacters(in: .whitespaces)
            }
            guard limited else { problems.append("prlimit did not apply the address-space limit"); continue }
            guard interfaces == ["lo"] else {
                problems.append("`unshare \(flags.joined(separator: " "))` left network interfaces visible: \(interfaces.joined(separator: ", "))")
                continue
            }
            return SandboxStatus(prefix: [unshare] + flags + ["--"], problems: [])
        }
        if geteuid() != 0 {
            problems.append("as an unprivileged user the sandbox needs user namespaces: allow them (sysctl user.max_user_namespaces > 0; in the systemd unit RestrictNamespaces=user net, no PrivateUsers=)")
        }
        return SandboxStatus(prefix: [], problems: problems)
    }

    static let prlimitPath = executable("prlimit")

    static func limitPrefix(_ prlimit: String, bytes: Int, cpuSeconds: Int, fileBytes: Int = 64 * 1_048_576) -> [String] {
        [prlimit, "--as=\(bytes)", "--cpu=\(cpuSeconds)", "--fsize=\(fileBytes)", "--core=0", "--"]
    }

    static func executable(_ name: String) -> String? {
        for dir in ["/usr/bin", "/bin", "/usr/local/bin", "/usr/sbin", "/sbin"] {
            let path = "\(dir)/\(name)"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    static func minimalEnvironment(home: String) -> [String] {
        // Nothing from the gateway's environment (credentials, proxies) reaches a converter.
        ["PATH=/usr/bin:/bin", "LC_ALL=C", "HOME=\(home)", "TMPDIR=\(home)"]
    }

    /// Runs `tool` with the limits of `options`, in the sandbox. Without one, refuses (policy `required`)
    /// or runs with whatever is left (`allow_unsandboxed`). Blocking: call it off the cooperative pool.
    static func run(
        _ tool: String, _ arguments: [String], options: RenderOptions, workDir: String,
        stdinPath: String? = nil, stdoutPath: String? = nil, outputLimitBytes: Int? = nil
    ) throws(RenderError) -> SandboxResult {
        let status = status
        if !status.isolated && options.sandbox == .required { throw RenderSandbox.refusal(status) }
        guard let path = executable(tool) else {
            throw RenderError(.unsupported, "\(tool) is not installed on the gateway")
        }
        var argv: [String] = []
        if let prlimit = prlimitPath {
            argv += limitPrefix(prlimit, bytes: max(64, options.memoryLimitMB) * 1_048_576, cpuSeconds: max(1, options.timeoutSeconds) + 1,
                                fileBytes: outputLimitBytes ?? 64 * 1_048_576)
        }
        argv += status.prefix
        argv += [path] + arguments
        return spawnAndWait(argv, stdinPath: stdinPath, stdoutPath: stdoutPath, logPath: workDir + "/.log",
                            timeoutSeconds: options.timeoutSeconds, environment: minimalEnvironment(home: workDir))
    }

    private final class WaitState: @unchecked Sendable {
        let lock = NSLock()
        var exited = false
        var timedOut = false
    }

    static func spawnAndWait(
        _ argv: [String], stdinPath: String?, stdoutPath: String?, logPath: String,
        timeoutSeconds: Int, environment: [String]
    ) -> SandboxResult {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath ?? "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        if let stdoutPath {
            posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Own process group, so a timeout kills everything the converter started; default signal
        // dispositions and an empty mask, because the gateway ignores SIGPIPE and children inherit that.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGXCPU, SIGXFSZ] { sigaddset(&defaults, sig) }
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer {
            cArgs.forEach { free($0) }
            cEnv.forEach { free($0) }
        }
        var pid: pid_t = 0
        let spawnStatus = posix_spawn(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
        guard spawnStatus == 0 else {
            return SandboxResult(exitCode: 127, signal: nil, timedOut: false,
                                 log: "cannot start \(argv[0]): \(String(cString: strerror(spawnStatus)))")
        }

        let state = WaitState()
        let group = pid
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(max(1, timeoutSeconds))) {
            state.lock.lock()
            defer { state.lock.unlock() }
            if !state.exited {
                state.timedOut = true
                kill(-group, SIGKILL)
            }
        }
        // Wait without reaping first: while the leader is a zombie its process-group id cannot be reused,
        // so the timer above can never hit a stranger's group.
        var info = siginfo_t()
        while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) == -1 && errno == EINTR {}
        state.lock.lock()
        state.exited = true
        let timedOut = state.timedOut
        state.lock.unlock()
        kill(-group, SIGKILL)  // stragglers the converter may have left in its group
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}

        let log = readPrefix(logPath, limit: 65_536)
        let termSignal = status & 0x7F
        if termSignal == 0 {
            return SandboxResult(exitCode: (status >> 8) & 0xFF, signal: nil, timedOut: timedOut, log: log)
        }
        return SandboxResult(exitCode: nil, signal: termSignal, timedOut: timedOut, log: log)
    }

    static func readPrefix(_ path: String, limit: Int) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: limit)) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// A private scratch directory for one conversion, removed afterwards.
final class WorkDirectory: @unchecked Sendable {
    let path: String

    init() throws(RenderError) {
        let base = FileManager.default.temporaryDirectory.path
        var template = Array("\(base)/faxrender-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw RenderError(.broken, "cannot create a scratch directory in \(base)")
        }
        path = String(cString: made)
    }

    func file(_ name: String) -> String { "\(path)/\(name)" }

    func write(_ name: String, _ bytes: [UInt8]) throws(RenderError) -> String {
        let target = file(name)
        guard FileManager.default.createFile(atPath: target, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw RenderError(.broken, "cannot write a scratch file in \(path)")
        }
        return target
    }

    func read(_ name: String) throws(RenderError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: file(name)) else {
            throw RenderError(.broken, "the converter wrote no \(name)")
        }
        return [UInt8](data)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs blocking work (subprocess waits, libtiff, pixel loops) on its own thread: the cooperative
/// pool has very few threads and must not be stalled by a conversion.
func offPool<T: Sendable>(_ body: @escaping @Sendable () throws(RenderError) -> T) async throws(RenderError) -> T {
    let result: Result<T, RenderError> = await withCheckedContinuation { continuation in
        let thread = Thread {
            continuation.resume(returning: Result { () throws(RenderError) -> T in try body() })
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
    return try result.get()
}
