import Crypto
import FaxgateCore
import Foundation
import Hummingbird

/// The cookies of the web pages and the one builder that sets their flags.
public enum WebCookies {
    /// The session id (random, 32 bytes, base64url); storage keeps only its SHA-256.
    public static let session = "fg_session"
    /// Before login: a random token the login form echoes in its `csrf` field (double submit).
    public static let preSession = "fg_pre"
    /// The language switch ("de"/"en").
    public static let language = "lang"

    /// Whether cookies carry `Secure`: always, except plain HTTP on a loopback listen address without a
    /// trusted proxy saying the client used HTTPS.
    public static func secure(settings: WebSettings, https: Bool) -> Bool {
        https || settings.usesTLS || !settings.isLoopback
    }

    /// A cookie with the flags every Faxgate cookie has: `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure`
    /// as `secure(settings:https:)` says. `maxAge` nil = a browser-session cookie; 0 = delete it.
    public static func make(_ name: String, _ value: String, settings: WebSettings, https: Bool, maxAge: Int? = nil) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: secure(settings: settings, https: https),
               httpOnly: true, sameSite: .strict)
    }
}

/// Creating, rotating and ending sessions. A new id is made at every login step (password, second factor),
/// so an id an attacker planted before login is never the one that is logged in (no fixation).
public enum WebSessions {
    /// 32 random bytes from the system's CSPRNG, base64url without padding (43 characters).
    public static func randomToken(bytes: Int = 32) -> String {
        var rng = SystemRandomNumberGenerator()
        let raw = (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &rng) }
        return Data(raw).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// What storage keeps of a session id: its SHA-256, hex.
    public static func hash(_ id: String) -> String {
        SHA256.hash(data: Data(id.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Starts a new session for `user` (ending the request's current one, if any) and returns the cookie to set.
    /// `secondFactorVerified`: the TOTP code (or a recovery code) was accepted, or the session completes a step
    /// that needs none.
    public static func start(_ env: WebEnvironment, _ context: inout WebContext, user: WebUser, secondFactorVerified: Bool,
                             settings: WebSettings) async throws -> Cookie {
        guard let userID = user.id else { throw StorageError("user \(user.name) has no id") }
        if let old = context.session { try await env.storage.deleteSession(idHash: old.idHash) }
        let id = randomToken()
        let now = Date()
        let session = WebSession(idHash: hash(id), userID: userID, createdAt: now, lastSeenAt: now,
                                 secondFactorVerified: secondFactorVerified, csrfToken: randomToken(), clientAddress: context.clientAddress)
        try await env.storage.insertSession(session)
        context.session = session
        context.user = user
        context.csrfToken = session.csrfToken
        return WebCookies.make(WebCookies.session, id, settings: settings, https: context.isHTTPS)
    }

    /// Ends the request's session (logout) and returns the cookie that deletes it in the browser.
    public static func end(_ env: WebEnvironment, _ context: inout WebContext, settings: WebSettings) async throws -> Cookie {
        if let old = context.session { try await env.storage.deleteSession(idHash: old.idHash) }
        context.session = nil
        context.user = nil
        return WebCookies.make(WebCookies.session, "", settings: settings, https: context.isHTTPS, maxAge: 0)
    }

    /// Constant-time comparison of two tokens (CSRF, TOTP codes): the time does not depend on where they differ.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var diff = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return diff == 0 && !x.isEmpty
    }
}
