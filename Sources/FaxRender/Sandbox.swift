// Runs converters (Ghostscript, netpbm decoders) on untrusted documents as bounded subprocesses:
// own process group (killed whole on timeout), address-space/CPU/file-size limits through prlimit(1),
// and no network through a fresh network namespace where the kernel lets us make one.
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

enum Sandbox {
    /// The prefix that cuts the network off, found once: `unshare -n` needs CAP_SYS_ADMIN (root),
    /// `unshare -rn` works for other users where unprivileged user namespaces are enabled.
    /// Where neither works (e.g. inside a container without namespaces) the converters still have no
    /// way to reach the network: gs -dSAFER has no socket operators and netpbm decoders open no sockets.
    static let networkIsolation: [String] = {
        guard let unshare = executable("unshare") else { return [] }
        for flags in [["-n"], ["-r", "-n"]] {
            let probe = spawnAndWait([unshare] + flags + ["--", "/bin/true"], stdinPath: nil, stdoutPath: nil,
                                     logPath: "/dev/null", timeoutSeconds: 5, environment: minimalEnvironment(home: "/"))
            if probe.exitCode == 0 { return [unshare] + flags + ["--"] }
        }
        return []
    }()

    static let prlimitPath = executable("prlimit")

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

    /// Runs `tool` with the limits of `options`. Blocking: call it off the cooperative pool.
    static func run(
        _ tool: String, _ arguments: [String], options: RenderOptions, workDir: String,
        stdinPath: String? = nil, stdoutPath: String? = nil
    ) throws(RenderError) -> SandboxResult {
        guard let path = executable(tool) else {
            throw RenderError(.unsupported, "\(tool) is not installed on the gateway")
        }
        var argv: [String] = []
        if let prlimit = prlimitPath {
            let bytes = max(64, options.memoryLimitMB) * 1_048_576
            argv += [prlimit, "--as=\(bytes)", "--cpu=\(max(1, options.timeoutSeconds) + 1)",
                     "--fsize=\(64 * 1_048_576)", "--core=0", "--"]
        }
        argv += networkIsolation
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
