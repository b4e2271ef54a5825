import Foundation
import Synchronization

/// The effective configuration of the running gateway: the file's infrastructure plus the office settings
/// from storage (`OfficeSettings`). Components that honour web edits without a restart read `current` per
/// call or per mail instead of keeping a copy; a web save replaces it with `update(_:)` after validation.
public final class LiveConfiguration: Sendable {
    private let state: Mutex<Configuration>

    public init(_ configuration: Configuration) { state = Mutex(configuration) }

    public var current: Configuration { state.withLock { $0 } }

    public func update(_ configuration: Configuration) { state.withLock { $0 = configuration } }
}
