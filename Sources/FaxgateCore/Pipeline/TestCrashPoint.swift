import Foundation

/// FAULT INJECTION FOR TESTS ONLY — off unless the environment variable `FAXGATE_TEST_CRASH_AFTER` names a step.
///
/// The power-loss tests (Tests/EndToEndTests/PowerLossTests.swift) must stop the daemon exactly at the moment it
/// has acted outside the database (IMAP MOVE done, SMTP server said 250, a fax call finished) and before it
/// recorded that; a SIGKILL from outside cannot hit those microseconds. With e.g.
/// `FAXGATE_TEST_CRASH_AFTER=imap-move` the process kills itself with SIGKILL right after that step — no
/// cleanup, no flush, just like a power cut as far as the process is concerned. Nothing else reads the variable;
/// without it `reached` is a no-op. Steps: `imap-move`, `smtp-accepted`, `dial`, `mail-queued`,
/// `on-the-line` (an outgoing job claimed and about to be dialled).
public enum TestCrashPoint {
    static let armed: String? = ProcessInfo.processInfo.environment["FAXGATE_TEST_CRASH_AFTER"]

    public static func reached(_ step: String) {
        guard let armed, armed == step else { return }
        // stderr is unbuffered: the test can see which step killed the process.
        FileHandle.standardError.write(Data("FAXGATE_TEST_CRASH_AFTER=\(step): killing the process now\n".utf8))
        kill(getpid(), SIGKILL)
    }
}
