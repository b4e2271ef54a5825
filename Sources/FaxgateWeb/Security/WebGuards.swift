import FaxgateCore
import Foundation
import Hummingbird

// The checks every page handler makes. Each throws an error Hummingbird turns into the right answer
// (a redirect, 403 or 404), so a handler reads:
//
//     let user = try requireUser(context)
//     guard let call = try await env.storage.call(id: id) else { throw HTTPError(.notFound) }
//     try mayAccess(context, extensionName: call.extensionName)

/// How far the request's session got through the login.
public enum WebAuthState: Sendable, Equatable {
    /// No valid session cookie.
    case none
    /// Password accepted; the user has TOTP and has not given a code yet (`/login/totp`).
    case needsSecondFactor
    /// Logged in with a one-time password: must choose a new one first (`/account/password`).
    case needsPasswordChange
    /// An admin without TOTP: must enrol first and can do nothing else (`/account/totp`).
    case needsTOTPEnrolment
    /// Fully logged in.
    case complete
}

extension WebContext {
    /// Where this request's session stands (see `WebAuthState`).
    public var authState: WebAuthState {
        guard let session, let user else { return .none }
        if user.totpSecret != nil && !session.secondFactorVerified { return .needsSecondFactor }
        if user.mustChangePassword { return .needsPasswordChange }
        if user.role == .admin && user.totpSecret == nil { return .needsTOTPEnrolment }
        return .complete
    }

    /// The actor of an action, for operations and the audit trail. Nil before login.
    public var actor: WebActor? { user.map { WebActor(user: $0, clientAddress: clientAddress) } }
}

/// A redirect thrown from a handler (303 See Other, so a POST is followed by a GET).
public struct WebRedirect: HTTPResponseError {
    public var location: String
    public var status: HTTPResponse.Status { .seeOther }
    public init(to location: String) { self.location = location }
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }
}

/// The fully logged-in user of the request. Without a session it redirects to `/login` (remembering a GET's
/// path); half logged in, to the step still missing (second factor, new password, admin TOTP enrolment).
/// Every page and document handler calls this (or `requireAdmin`) first.
public func requireUser(_ context: WebContext, request: Request? = nil) throws -> WebUser {
    switch context.authState {
    case .none:
        if let request, request.method == .get, let back = localPath(request.uri.description), back != "/" {
            throw WebRedirect(to: "/login?next=" + (back.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        }
        throw WebRedirect(to: "/login")
    case .needsSecondFactor: throw WebRedirect(to: "/login/totp")
    case .needsPasswordChange: throw WebRedirect(to: "/account/password")
    case .needsTOTPEnrolment: throw WebRedirect(to: "/account/totp")
    case .complete: return context.user!
    }
}

/// The logged-in admin of the request: role admin AND the session's second factor verified. Anyone else
/// logged in gets 403; no session redirects to `/login` (as `requireUser`). Every admin page and action calls it.
@discardableResult
public func requireAdmin(_ context: WebContext, request: Request? = nil) throws -> WebUser {
    let user = try requireUser(context, request: request)
    guard user.role == .admin, user.totpSecret != nil, context.session?.secondFactorVerified == true else {
        throw HTTPError(.forbidden, message: "admins only")
    }
    return user
}

/// Refuses (404, as if it did not exist: ids are not capabilities) an item of `extensionName` that the logged-in
/// user may not see. Admins see everything; an item without an extension only admins. Call it for every call,
/// job, document and voicemail a URL names, after `requireUser`.
public func mayAccess(_ context: WebContext, extensionName: String?) throws {
    let user = try requireUser(context)
    guard user.maySee(extensionName: extensionName) else { throw HTTPError(.notFound) }
}

/// Writes one audit entry: the logged-in user (or "-"), the client address, `action` (a stable key such as
/// `job.cancel`), `target` (`job 12`) and `detail` (what changed, in words; never a password, secret or
/// passphrase). Every admin action calls it; a failure to write it fails the request.
public func audit(_ env: WebEnvironment, _ context: WebContext, action: String, target: String, detail: String = "") async throws {
    try await env.storage.appendAudit(AuditEntry(
        actor: context.user?.name ?? "-", clientAddress: context.clientAddress, action: action, target: target, detail: detail))
}

/// `path` when it is a path on this site ("/…", not "//host" or a scheme): the only redirect targets taken from
/// a request (no open redirect). No control characters or white space either: browsers drop a tab or line break
/// inside a URL, so "/<TAB>/evil.example" would become "//evil.example".
public func localPath(_ path: String?) -> String? {
    guard let path, path.hasPrefix("/"), !path.hasPrefix("//"), !path.hasPrefix("/\\"),
          !path.contains(where: { $0 == "\\" || $0.isWhitespace || $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F } })
    else { return nil }
    return path
}
