import FaxgateCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// Per-request state: the logged-in user and session once the session middleware found them.
public struct WebContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The valid session of the cookie (maybe only half logged in: see `authState`).
    public var session: WebSession?
    /// The session's user (set together with `session`).
    public var user: WebUser?
    /// The client's address (the peer, or X-Forwarded-For from a trusted proxy).
    public var clientAddress: String = "-"
    /// The TCP peer (the proxy when there is one).
    public var peerAddress: String
    /// "de" or "en" for this request.
    public var language: String = "en"
    /// The token every POST form carries (`csrf` field): the session's, or before login the pre-session cookie's.
    public var csrfToken: String = ""
    /// The request came over HTTPS (our TLS, or a trusted proxy's `X-Forwarded-Proto: https`).
    public var isHTTPS: Bool = false
    /// `web.max_upload_mb` in bytes; the session middleware sets it from the configuration.
    public var uploadLimit: Int = 25 * 1024 * 1024
    /// Hummingbird's body limit for decoding; follows `web.max_upload_mb`.
    public var maxUploadSize: Int { uploadLimit }

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress?.ipAddress ?? "-"
        clientAddress = peerAddress
    }
}

/// The HTTP server of `faxgate serve`: one Hummingbird application, a service in the gateway's ServiceGroup.
public struct WebServer: Service {
    let environment: WebEnvironment
    let settings: WebSettings

    public init(environment: WebEnvironment, settings: WebSettings) {
        self.environment = environment
        self.settings = settings
    }

    /// The routes, each area registering its own (Pages/*.swift). The security middleware comes first so it
    /// wraps every route (Hummingbird applies a router middleware to the routes added after it).
    public func router() -> Router<WebContext> {
        let router = Router(context: WebContext.self)
        router.add(middleware: SecurityHeadersMiddleware(settings: settings))
        router.add(middleware: WebSessionMiddleware(environment: environment, settings: settings))
        Self.registerStaticRoutes(router)
        Self.registerOperationsRoutes(router, environment)
        Self.registerAccountRoutes(router, environment)
        Self.registerUserRoutes(router, environment)
        Self.registerAdminRoutes(router, environment)
        Self.registerSettingsRoutes(router, environment)
        Self.registerPrivacyRoutes(router, environment)
        return router
    }

    /// The Hummingbird application on `web.listen`: HTTPS when a certificate is configured, else plain HTTP
    /// (which `config check` and `run()` allow only on loopback). Tests run it with HummingbirdTesting.
    public func application(router: Router<WebContext>? = nil) throws -> some ApplicationProtocol {
        guard let (host, port) = settings.hostAndPort else { throw StorageError("web.listen \(settings.listen) is not host:port") }
        let server: HTTPServerBuilder
        if let cert = settings.tlsCertificate, let key = settings.tlsKey {
            let chain = try NIOSSLCertificate.fromPEMFile(cert).map { NIOSSLCertificateSource.certificate($0) }
            let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .file(key))
            server = try .tls(.http1(), tlsConfiguration: tls)
        } else {
            server = .http1()
        }
        var app = Application(router: router ?? self.router(), server: server,
                              configuration: .init(address: .hostname(host, port: port), serverName: nil),
                              logger: environment.logger)
        app.addServices(SessionPurger(storage: environment.storage, settings: settings, logger: environment.logger))
        return app
    }

    public func run() async throws {
        // The same rule as `config check`, so a config that skipped the check cannot serve sessions in clear text.
        if !settings.usesTLS && !settings.isLoopback {
            throw StorageError("web.listen \(settings.listen) is not a loopback address: configure web.tls_certificate and web.tls_key")
        }
        try await application().run()
    }
}

/// Deletes expired sessions every few minutes (the middleware also refuses them when they are used).
struct SessionPurger: Service {
    let storage: any Storage
    let settings: WebSettings
    let logger: Logger

    func run() async throws {
        // Cancelled at graceful shutdown; the sleep ends with it.
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let now = Date()
                do {
                    try await storage.purgeSessions(
                        lastSeenBefore: now.addingTimeInterval(-Double(settings.sessionIdleMinutes) * 60),
                        createdBefore: now.addingTimeInterval(-Double(settings.sessionAbsoluteHours) * 3600))
                } catch {
                    logger.warning("cannot purge expired web sessions: \(error)")
                }
                try await Task.sleep(for: .seconds(300))
            }
        }
    }
}
