import FaxgateCore
import Foundation

/// Office-level settings the admin edits on the web (extensions, senders, dial policy, retention, holds):
/// validated with the rules of `config check`, stored, applied without a restart, audited.
public protocol OfficeSettingsOperations: Sendable {
}
