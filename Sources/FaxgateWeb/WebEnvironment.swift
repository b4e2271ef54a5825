import FaxgateCore
import Foundation
import Logging

/// Everything the web pages reach. The web knows no concrete plugin: storage is the `Storage` seam, and what
/// needs the running gateway (queue, transport, outbox, snapshots, privacy commands) comes through the
/// operation protocols below, implemented in FaxgateApp where the plugins are assembled.
public struct WebEnvironment: Sendable {
    public var storage: any Storage
    /// The effective configuration now (file plus office settings from storage); read it per request.
    public var configuration: @Sendable () -> Configuration
    public var jobs: any JobOperations
    public var office: any OfficeSettingsOperations
    public var privacy: any PrivacyOperations
    public var status: any StatusOperations
    /// Admin actions on the running gateway (mail a received fax again, retry now) and the redacted logs.
    public var admin: any AdminOperations
    public var logger: Logger

    public init(storage: any Storage, configuration: @escaping @Sendable () -> Configuration, jobs: any JobOperations,
                office: any OfficeSettingsOperations, privacy: any PrivacyOperations, status: any StatusOperations, logger: Logger,
                admin: any AdminOperations = UnavailableAdminOperations()) {
        self.storage = storage; self.configuration = configuration; self.jobs = jobs; self.office = office
        self.privacy = privacy; self.status = status; self.logger = logger; self.admin = admin
    }
}

/// Who does an action, for the audit trail and for the operations' own checks.
public struct WebActor: Sendable, Equatable {
    public var user: WebUser
    public var clientAddress: String
    public init(user: WebUser, clientAddress: String) { self.user = user; self.clientAddress = clientAddress }
}
