import FaxgateCore
import Foundation
import Hummingbird

/// /admin/users: the accounts, with the actions of `faxgate user` (same rules: `UserAccountRules`, `Passwords`).
/// A one-time password (new user, reset) is shown once in the POST's answer and stored only as its bcrypt hash.
/// Disabling, resetting the password or the second factor also ends the user's sessions. An admin cannot
/// disable, demote or reset themselves here, and the last enabled admin stays an enabled admin.
struct AdminUserPages: Sendable {
    let env: WebEnvironment

    static let flashes: Set<String> = ["user_disabled", "user_enabled", "totp_reset", "user_updated", "logged_out", "self", "last_admin"]

    func list(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context, request: request)
        let flash = AdminPage.flash(request, context, allowed: Self.flashes)
        return try await page(request, context, notice: flash.notice, error: flash.error)
    }

    /// The list with the add form; `typed` refills the add form after a refusal.
    private func page(_ request: Request, _ context: WebContext, notice: String = "", error: String = "",
                      typed: [String: String] = [:], status: HTTPResponse.Status = .ok) async throws -> Response {
        let users = try await env.storage.users()
        let configured = env.configuration().extensions.map(\.name)
        let me = context.user?.id
        let now = Date()
        let rows: [[String: Any]] = users.map { u in
            [
                "id": u.id ?? 0, "name": u.name, "self": u.id == me,
                "roleText": AdminPage.t(u.role == .admin ? "admin_role_admin" : "admin_role_user", context),
                "isAdmin": u.role == .admin,
                "extensionsText": u.role == .admin ? AdminPage.t("admin_all", context) : (u.extensions.isEmpty ? "–" : u.extensions.joined(separator: ", ")),
                "extensionOptions": configured.map { ["name": $0, "checked": u.extensions.contains($0)] as [String: Any] },
                "totp": AdminPage.t(u.totpSecret != nil ? "admin_yes" : "admin_no", context),
                "disabled": u.disabled,
                "statusText": AdminPage.t(u.disabled ? "admin_users_disabled" : "admin_users_active", context),
                "locked": (u.lockedUntil ?? .distantPast) > now ? AdminPage.time(u.lockedUntil, context.language) : "",
                "mustChange": u.mustChangePassword,
            ]
        }
        return PageRenderer.shared.page("admin-users", [
            "users": rows,
            "extensions": configured.map { ["name": $0, "checked": typed["ext:" + $0] != nil] as [String: Any] },
            "newName": typed["name"] ?? "", "newAdmin": typed["role"] == "admin",
            "notice": notice, "error": error,
        ], request: request, context: context, status: status)
    }

    /// The extensions checked in a form (`ext` fields, one per checkbox), in configuration order.
    private func checkedExtensions(_ request: Request) async throws -> (fields: [String: String], extensions: [String]) {
        let body = String(buffer: try await request.body.collect(upTo: 64 * 1024))
        var fields = formFields(body)
        var checked: [String] = []
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, kv[0] == "ext" else { continue }
            let value = kv[1].replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            if !checked.contains(value) { checked.append(value) }
            fields["ext:" + value] = "1"
        }
        return (fields, checked)
    }

    func add(_ request: Request, _ context: WebContext) async throws -> Response {
        try requireAdmin(context)
        let (form, extensions) = try await checkedExtensions(request)
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces)
        let role: WebUser.Role = form["role"] == "admin" ? .admin : .user
        let configured = env.configuration().extensions.map(\.name)
        func refuse(_ key: String) async throws -> Response {
            try await page(request, context, error: AdminPage.t(key, context), typed: form, status: .unprocessableContent)
        }
        guard UserAccountRules.isValidName(name) else { return try await refuse("admin_users_error_name") }
        let unknown = UserAccountRules.unknownExtensions(extensions, configured: configured)
        guard unknown.isEmpty else { return try await refuse("admin_users_error_extension") }
        guard role == .admin || !extensions.isEmpty else { return try await refuse("admin_users_error_noextension") }
        let password = UserAccountRules.oneTimePassword()
        let user = WebUser(name: name, role: role, extensions: role == .admin ? [] : extensions,
                           passwordHash: try await Passwords.hash(password), mustChangePassword: true)
        do {
            _ = try await env.storage.insertUser(user)
        } catch is DuplicateUserName {
            return try await refuse("admin_users_error_duplicate")
        }
        try await audit(env, context, action: "user.add", target: "user \(name)",
                        detail: "role \(role.rawValue)" + (role == .user ? ", extensions \(extensions.joined(separator: ","))" : ""))
        return secretPage(request, context, name: name, password: password)
    }

    /// The one-time password, once. `no-store` (set by the renderer) keeps it out of caches and the back button.
    private func secretPage(_ request: Request, _ context: WebContext, name: String, password: String) -> Response {
        PageRenderer.shared.page("admin-user-secret", [
            "name": name, "password": password,
            "explain": AdminPage.t("admin_users_onetime_explain", context).replacingOccurrences(of: "%@", with: name),
        ], request: request, context: context)
    }

    func act(_ request: Request, _ context: WebContext) async throws -> Response {
        let admin = try requireAdmin(context)
        let id = try AdminPage.id(context)
        guard var user = try await env.storage.user(id: id) else { throw HTTPError(.notFound) }
        let action = context.parameters.get("action") ?? ""
        let (form, extensions) = try await checkedExtensions(request)
        let isSelf = user.id == admin.id
        let all = try await env.storage.users()
        func back(_ param: String, _ key: String) -> WebRedirect { WebRedirect(to: "/admin/users?\(param)=\(key)") }

        switch action {
        case "disable":
            guard !isSelf else { throw back("error", "self") }
            user.disabled = true
            guard !UserAccountRules.leavesNoActiveAdmin(user, among: all) else { throw back("error", "last_admin") }
            try await env.storage.updateUser(user)
            let ended = try await env.storage.deleteSessions(userID: id)
            try await audit(env, context, action: "user.disable", target: "user \(user.name)", detail: "\(ended) session(s) ended")
            throw back("done", "user_disabled")
        case "enable":
            user.disabled = false
            user.failedLogins = 0
            user.lockedUntil = nil
            try await env.storage.updateUser(user)
            try await audit(env, context, action: "user.enable", target: "user \(user.name)")
            throw back("done", "user_enabled")
        case "reset-password":
            guard !isSelf else { throw back("error", "self") }
            let password = UserAccountRules.oneTimePassword()
            user.passwordHash = try await Passwords.hash(password)
            user.mustChangePassword = true
            user.passwordChangedAt = Date()
            user.failedLogins = 0
            user.lockedUntil = nil
            try await env.storage.updateUser(user)
            let ended = try await env.storage.deleteSessions(userID: id)
            try await audit(env, context, action: "user.reset_password", target: "user \(user.name)",
                            detail: "one-time password issued, \(ended) session(s) ended")
            return secretPage(request, context, name: user.name, password: password)
        case "reset-totp":
            guard !isSelf else { throw back("error", "self") }
            user.totpSecret = nil
            user.totpLastCounter = nil
            user.recoveryCodeHashes = []
            try await env.storage.updateUser(user)
            let ended = try await env.storage.deleteSessions(userID: id)
            try await audit(env, context, action: "user.reset_totp", target: "user \(user.name)", detail: "\(ended) session(s) ended")
            throw back("done", "totp_reset")
        case "update":
            let role: WebUser.Role = form["role"] == "admin" ? .admin : .user
            guard !(isSelf && role != user.role) else { throw back("error", "self") }
            let configured = env.configuration().extensions.map(\.name)
            guard UserAccountRules.unknownExtensions(extensions, configured: configured).isEmpty else {
                return try await page(request, context, error: AdminPage.t("admin_users_error_extension", context), status: .unprocessableContent)
            }
            guard role == .admin || !extensions.isEmpty else {
                return try await page(request, context, error: AdminPage.t("admin_users_error_noextension", context), status: .unprocessableContent)
            }
            let before = "role \(user.role.rawValue), extensions \(user.extensions.joined(separator: ","))"
            user.role = role
            user.extensions = role == .admin ? [] : extensions
            guard !UserAccountRules.leavesNoActiveAdmin(user, among: all) else { throw back("error", "last_admin") }
            try await env.storage.updateUser(user)
            // A changed role takes effect at once: the user's sessions end (an admin made user keeps no admin session).
            let ended = before.hasPrefix("role \(role.rawValue),") ? 0 : try await env.storage.deleteSessions(userID: id)
            try await audit(env, context, action: "user.update", target: "user \(user.name)",
                            detail: "\(before) → role \(role.rawValue), extensions \(user.extensions.joined(separator: ","))"
                                + (ended > 0 ? "; \(ended) session(s) ended" : ""))
            throw back("done", "user_updated")
        case "logout":
            let ended = try await env.storage.deleteSessions(userID: id)
            try await audit(env, context, action: "user.logout_all", target: "user \(user.name)", detail: "\(ended) session(s) ended")
            throw isSelf ? WebRedirect(to: "/login") : back("done", "logged_out")
        default:
            throw HTTPError(.notFound)
        }
    }
}
