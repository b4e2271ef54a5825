import FaxgateCore
import Foundation
import Hummingbird

/// Login (password, then TOTP or a recovery code), forced password change, TOTP enrolment, the account page,
/// logout and logout everywhere, the language switch and `/`.
extension WebServer {
    static func registerAccountRoutes(_ router: Router<WebContext>, _ env: WebEnvironment) {
        let pages = AccountPages(env: env)
        router.get("/") { request, context in try pages.home(request, context) }
        router.get("/login") { request, context in try pages.loginForm(request, context) }
        router.post("/login") { request, context in try await pages.login(request, context) }
        router.get("/login/totp") { request, context in try pages.totpForm(request, context) }
        router.post("/login/totp") { request, context in try await pages.verifyTOTP(request, context) }
        router.post("/logout") { request, context in try await pages.logout(request, context) }
        router.get("/account") { request, context in try pages.account(request, context) }
        router.get("/account/password") { request, context in try pages.passwordForm(request, context) }
        router.post("/account/password") { request, context in try await pages.changePassword(request, context) }
        router.get("/account/totp") { request, context in try pages.enrolForm(request, context) }
        router.post("/account/totp") { request, context in try await pages.enrol(request, context) }
        router.post("/account/totp/disable") { request, context in try await pages.disableTOTP(request, context) }
        router.post("/account/language") { request, context in try await pages.setLanguage(request, context) }
        router.post("/account/logout-everywhere") { request, context in try await pages.logoutEverywhere(request, context) }
        router.get("/language/:lang") { request, context in try await pages.switchLanguage(request, context) }
    }
}

struct AccountPages: Sendable {
    let env: WebEnvironment
    var renderer: PageRenderer { .shared }
    var settings: WebSettings { env.configuration().web }

    func text(_ key: String, _ context: WebContext) -> String { Strings.text(key, context.language) }

    /// Where a fully logged-in user goes: the `next` page they wanted, else the admin dashboard or the inbox.
    func landing(_ user: WebUser, next: String?) -> String {
        if let next = localPath(next), next != "/", !next.hasPrefix("/login") { return next }
        return user.role == .admin ? "/admin" : "/inbox"
    }

    /// A redirect that also sets cookies.
    func redirect(_ location: String, cookies: [Cookie] = []) -> Response {
        var response = Response(status: .seeOther, headers: [.location: location])
        for cookie in cookies { response.setCookie(cookie) }
        return response
    }

    func form(_ request: inout Request, _ context: WebContext) async throws -> [String: String] {
        formFields(String(buffer: try await request.collectBody(upTo: context.maxUploadSize)))
    }

    func auditLogin(_ context: WebContext, actor: String, action: String, target: String, detail: String) async {
        do {
            try await env.storage.appendAudit(AuditEntry(actor: actor, clientAddress: context.clientAddress, action: action,
                                                         target: target, detail: detail))
        } catch {
            context.logger.error("cannot write the audit entry \(action): \(error)")
        }
    }

    func lockedMessage(_ until: Date, _ context: WebContext) -> String {
        let format = DateFormatter()
        format.dateFormat = context.language == "de" ? "HH:mm:ss 'Uhr'" : "HH:mm:ss"
        return text("account.login.locked", context).replacingOccurrences(of: "%@", with: format.string(from: until))
    }

    // MARK: Pages

    func home(_ request: Request, _ context: WebContext) throws -> Response {
        let user = try requireUser(context, request: request)
        return redirect(landing(user, next: nil))
    }

    func loginForm(_ request: Request, _ context: WebContext) throws -> Response {
        let next = request.uri.queryParameters.get("next")
        switch context.authState {
        case .complete: return redirect(landing(context.user!, next: next))
        case .needsSecondFactor: return redirect("/login/totp")
        case .needsPasswordChange: return redirect("/account/password")
        case .needsTOTPEnrolment: return redirect("/account/totp")
        case .none: break
        }
        var values: [String: Any] = ["next": localPath(next) ?? ""]
        if request.uri.queryParameters.get("out") != nil { values["notice"] = text("account.login.logged_out", context) }
        return renderer.page("login", values, request: request, context: context)
    }

    /// Password step. The answer for an unknown name, a disabled account and a wrong password is the same
    /// text after the same bcrypt work; a locked name (known or not) says until when. Failures are audited
    /// without the attempted password; an unknown name is not written either (it may be a mistyped password).
    func login(_ request: Request, _ context: WebContext) async throws -> Response {
        var request = request, context = context
        let form = try await form(&request, context)
        let name = (form["name"] ?? "").trimmingCharacters(in: .whitespaces).lowercased()
        let password = form["password"] ?? ""
        let next = localPath(form["next"])
        let settings = self.settings
        let now = Date()

        func failure(_ message: String, status: HTTPResponse.Status = .unauthorized) -> Response {
            renderer.page("login", ["error": message, "name": name, "next": next ?? ""], request: request, context: context, status: status)
        }

        let found = name.count <= 64 && !name.isEmpty ? try await env.storage.user(name: name) : nil
        guard let user = found, !user.disabled else {
            _ = try await Passwords.verify(password, hash: Passwords.dummyHash)
            if let until = await UnknownNameLockouts.shared.lockedUntil(name, now: now) {
                return failure(lockedMessage(until, context), status: .tooManyRequests)
            }
            let lock = await UnknownNameLockouts.shared.failed(name, now: now, settings: settings)
            await auditLogin(context, actor: "-", action: "login.failed", target: found.map { "user \($0.name)" } ?? "unknown name",
                             detail: found == nil ? "no such user" : "account disabled")
            return lock.map { failure(lockedMessage($0, context), status: .tooManyRequests) } ?? failure(text("account.login.failed", context))
        }
        if let until = user.lockedUntil, until > now {
            _ = try await Passwords.verify(password, hash: Passwords.dummyHash)
            await auditLogin(context, actor: "-", action: "login.locked", target: "user \(user.name)",
                             detail: "attempt while locked (not checked)")
            return failure(lockedMessage(until, context), status: .tooManyRequests)
        }
        guard try await Passwords.verify(password, hash: user.passwordHash) else {
            let failed = LoginLockout.failed(user, now: now, settings: settings)
            try await env.storage.updateUser(failed)
            await auditLogin(context, actor: "-", action: "login.failed", target: "user \(user.name)",
                             detail: "wrong password (\(failed.failedLogins) in a row)" + (failed.lockedUntil.map { $0 > now ? "; locked until \($0)" : "" } ?? ""))
            if let until = failed.lockedUntil, until > now { return failure(lockedMessage(until, context), status: .tooManyRequests) }
            return failure(text("account.login.failed", context))
        }
        var current = user
        if current.failedLogins != 0 || current.lockedUntil != nil {
            current.failedLogins = 0
            current.lockedUntil = nil
            try await env.storage.updateUser(current)
        }
        // A new session id now: whatever id the browser had before (maybe planted) is not the logged-in one.
        let cookie = try await WebSessions.start(env, &context, user: current, secondFactorVerified: false, settings: settings)
        await auditLogin(context, actor: current.name, action: "login.password", target: "user \(current.name)",
                         detail: current.totpSecret == nil ? "password accepted" : "password accepted; second factor due")
        return redirect(nextStep(context, next: next), cookies: [cookie])
    }

    /// The page for the session's next login step.
    func nextStep(_ context: WebContext, next: String?) -> String {
        switch context.authState {
        case .none: return "/login"
        case .needsSecondFactor: return "/login/totp" + (next.map { "?next=" + ($0.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "") } ?? "")
        case .needsPasswordChange: return "/account/password"
        case .needsTOTPEnrolment: return "/account/totp"
        case .complete: return landing(context.user!, next: next)
        }
    }

    func totpForm(_ request: Request, _ context: WebContext) throws -> Response {
        guard context.authState == .needsSecondFactor else { return redirect(nextStep(context, next: nil)) }
        return renderer.page("login-totp", ["next": localPath(request.uri.queryParameters.get("next")) ?? ""],
                             request: request, context: context)
    }

    /// Second factor: a TOTP code (±1 step, each step once) or an unused recovery code (then used up).
    /// Wrong codes count as failed logins (lockout); the session id is replaced on success.
    func verifyTOTP(_ request: Request, _ context: WebContext) async throws -> Response {
        var request = request, context = context
        guard context.authState == .needsSecondFactor, let session = context.session,
              var user = try await env.storage.user(id: session.userID), let secret = user.totpSecret else {
            return redirect(nextStep(context, next: nil))
        }
        let form = try await form(&request, context)
        let next = localPath(form["next"])
        let settings = self.settings
        let now = Date()
        if let until = user.lockedUntil, until > now {
            let cookie = try await WebSessions.end(env, &context, settings: settings)
            var response = renderer.page("login", ["error": lockedMessage(until, context)], request: request, context: context,
                                         status: .tooManyRequests)
            response.setCookie(cookie)
            return response
        }
        var how = ""
        if let code = form["code"], !code.isEmpty, let counter = SecondFactor.verify(code: code, secret: secret, lastCounter: user.totpLastCounter, now: now) {
            user.totpLastCounter = counter
            how = "totp"
        } else if let code = form["recovery"], !code.isEmpty,
                  let index = try await SecondFactor.matchRecoveryCode(code, hashes: user.recoveryCodeHashes) {
            user.recoveryCodeHashes.remove(at: index)
            how = "recovery code (\(user.recoveryCodeHashes.count) left)"
        }
        guard !how.isEmpty else {
            let failed = LoginLockout.failed(user, now: now, settings: settings)
            try await env.storage.updateUser(failed)
            await auditLogin(context, actor: user.name, action: "login.totp_failed", target: "user \(user.name)",
                             detail: "wrong or reused code (\(failed.failedLogins) in a row)")
            if let until = failed.lockedUntil, until > now {
                let cookie = try await WebSessions.end(env, &context, settings: settings)
                var response = renderer.page("login", ["error": lockedMessage(until, context)], request: request, context: context,
                                             status: .tooManyRequests)
                response.setCookie(cookie)
                return response
            }
            return renderer.page("login-totp", ["error": text("account.totp.failed", context), "next": next ?? ""],
                                 request: request, context: context, status: .unauthorized)
        }
        user.failedLogins = 0
        user.lockedUntil = nil
        try await env.storage.updateUser(user)
        let cookie = try await WebSessions.start(env, &context, user: user, secondFactorVerified: true, settings: settings)
        await auditLogin(context, actor: user.name, action: "login.second_factor", target: "user \(user.name)", detail: how)
        return redirect(nextStep(context, next: next), cookies: [cookie])
    }

    func logout(_ request: Request, _ context: WebContext) async throws -> Response {
        var context = context
        let name = context.user?.name
        let cookie = try await WebSessions.end(env, &context, settings: settings)
        if let name { await auditLogin(context, actor: name, action: "logout", target: "user \(name)", detail: "") }
        return redirect("/login?out=1", cookies: [cookie])
    }

    func logoutEverywhere(_ request: Request, _ context: WebContext) async throws -> Response {
        var context = context
        let user = try requireUser(context)
        let count = try await env.storage.deleteSessions(userID: user.id!)
        let cookie = try await WebSessions.end(env, &context, settings: settings)
        await auditLogin(context, actor: user.name, action: "logout.everywhere", target: "user \(user.name)", detail: "\(count) sessions ended")
        return redirect("/login?out=1", cookies: [cookie])
    }

    // MARK: Account

    func account(_ request: Request, _ context: WebContext, notice: String? = nil, error: String? = nil,
                 status: HTTPResponse.Status = .ok) throws -> Response {
        let user = try requireUser(context, request: request)
        var values: [String: Any] = [
            "roleText": text(user.role == .admin ? "account.role_admin" : "account.role_user", context),
            "extensions": user.extensions, "hasExtensions": !user.extensions.isEmpty,
            "totpEnabled": user.totpSecret != nil, "mayDisable": user.role != .admin,
            "recoveryLeft": user.recoveryCodeHashes.count,
            "langBrowser": user.language == nil, "langDE": user.language == "de", "langEN": user.language == "en",
        ]
        if let notice { values["notice"] = notice }
        if let error { values["error"] = error }
        return renderer.page("account", values, request: request, context: context, status: status)
    }

    /// The password page: the forced change after a one-time password, or a voluntary one (current password needed).
    func passwordForm(_ request: Request, _ context: WebContext, error: String? = nil, status: HTTPResponse.Status = .ok) throws -> Response {
        let forced = context.authState == .needsPasswordChange
        if !forced { _ = try requireUser(context, request: request) }
        var values: [String: Any] = ["forced": forced]
        if let error { values["error"] = error }
        return renderer.page("account-password", values, request: request, context: context, status: status)
    }

    /// Sets a new password (min 12 characters, not the name), ends every other session of the user and gives
    /// this one a new id.
    func changePassword(_ request: Request, _ context: WebContext) async throws -> Response {
        var request = request, context = context
        let forced = context.authState == .needsPasswordChange
        let user = forced ? context.user! : try requireUser(context)
        let form = try await form(&request, context)
        let new = form["new"] ?? ""
        if !forced {
            guard try await Passwords.verify(form["current"] ?? "", hash: user.passwordHash) else {
                return try passwordForm(request, context, error: text("account.password.wrong_current", context), status: .badRequest)
            }
        }
        if let problem = Passwords.problem(new, name: user.name) {
            return try passwordForm(request, context, error: text(problem, context), status: .badRequest)
        }
        guard new == form["repeat"] else {
            return try passwordForm(request, context, error: text("account.password.mismatch", context), status: .badRequest)
        }
        if try await Passwords.verify(new, hash: user.passwordHash) {
            return try passwordForm(request, context, error: text("account.password.same", context), status: .badRequest)
        }
        var updated = user
        updated.passwordHash = try await Passwords.hash(new)
        updated.mustChangePassword = false
        updated.passwordChangedAt = Date()
        try await env.storage.updateUser(updated)
        let verified = context.session?.secondFactorVerified ?? false
        try await env.storage.deleteSessions(userID: user.id!)
        context.session = nil
        let cookie = try await WebSessions.start(env, &context, user: updated, secondFactorVerified: verified, settings: settings)
        await auditLogin(context, actor: user.name, action: "account.password", target: "user \(user.name)",
                         detail: forced ? "one-time password replaced" : "password changed; other sessions ended")
        return redirect(forced ? nextStep(context, next: nil) : "/account", cookies: [cookie])
    }

    /// TOTP enrolment: a new secret as QR code and text; the form sends it back with a code from the app.
    func enrolForm(_ request: Request, _ context: WebContext, secret: [UInt8]? = nil, error: String? = nil,
                   status: HTTPResponse.Status = .ok) throws -> Response {
        let required = context.authState == .needsTOTPEnrolment
        let user = required ? context.user! : try requireUser(context, request: request)
        if user.totpSecret != nil { return redirect("/account") }
        let secret = secret ?? SecondFactor.newSecret()
        let issuer = "Faxgate"
        let url = SecondFactor.authenticatorURL(secret: secret, account: user.name, issuer: issuer)
        var values: [String: Any] = [
            "required": required, "secret": String(decoding: secret, as: UTF8.self), "secretText": SecondFactor.displaySecret(secret),
            "qr": QRCodeSVG.dataURI(url) ?? "",
        ]
        if let error { values["error"] = error }
        return renderer.page("account-totp", values, request: request, context: context, status: status)
    }

    /// Confirms the enrolment with a code, stores the secret and ten bcrypt-hashed recovery codes, and shows the
    /// codes once. The session counts as second-factor verified (with a new id).
    func enrol(_ request: Request, _ context: WebContext) async throws -> Response {
        var request = request, context = context
        let required = context.authState == .needsTOTPEnrolment
        var user = required ? context.user! : try requireUser(context)
        if user.totpSecret != nil { return redirect("/account") }
        let form = try await form(&request, context)
        let secret = Array((form["secret"] ?? "").utf8)
        guard SecondFactor.isValidSecret(secret) else { return try enrolForm(request, context, error: text("account.totp.failed", context), status: .badRequest) }
        guard let counter = SecondFactor.verify(code: form["code"] ?? "", secret: secret, lastCounter: nil) else {
            return try enrolForm(request, context, secret: secret, error: text("account.totp.failed", context), status: .badRequest)
        }
        let codes = SecondFactor.newRecoveryCodes()
        user.totpSecret = secret
        user.totpLastCounter = counter
        user.recoveryCodeHashes = try await SecondFactor.hashRecoveryCodes(codes)
        try await env.storage.updateUser(user)
        let cookie = try await WebSessions.start(env, &context, user: user, secondFactorVerified: true, settings: settings)
        await auditLogin(context, actor: user.name, action: "account.totp_enrol", target: "user \(user.name)", detail: "TOTP set up, 10 recovery codes")
        var response = renderer.page("account-recovery", ["codes": codes, "continue": nextStep(context, next: nil)], request: request, context: context)
        response.setCookie(cookie)
        return response
    }

    /// Users (not admins) may remove their second factor, with their password.
    func disableTOTP(_ request: Request, _ context: WebContext) async throws -> Response {
        var request = request
        var user = try requireUser(context)
        guard user.role != .admin else { throw HTTPError(.forbidden) }
        let form = try await form(&request, context)
        guard try await Passwords.verify(form["password"] ?? "", hash: user.passwordHash) else {
            return try account(request, context, error: text("account.password.wrong_current", context), status: .badRequest)
        }
        user.totpSecret = nil
        user.totpLastCounter = nil
        user.recoveryCodeHashes = []
        try await env.storage.updateUser(user)
        var context = context
        context.user = user
        await auditLogin(context, actor: user.name, action: "account.totp_remove", target: "user \(user.name)", detail: "")
        return try account(request, context, notice: text("account.totp.removed", context))
    }

    func setLanguage(_ request: Request, _ context: WebContext) async throws -> Response {
        var request = request
        var user = try requireUser(context)
        let form = try await form(&request, context)
        let choice = form["language"].flatMap { ["de", "en"].contains($0) ? $0 : nil }
        user.language = choice
        try await env.storage.updateUser(user)
        let cookie = WebCookies.make(WebCookies.language, choice ?? "", settings: settings, https: context.isHTTPS,
                                     maxAge: choice == nil ? 0 : 365 * 86400)
        return redirect("/account", cookies: [cookie])
    }

    /// The switch in the layout: a cookie for a year, and the stored language of a logged-in user.
    func switchLanguage(_ request: Request, _ context: WebContext) async throws -> Response {
        guard let lang = context.parameters.get("lang"), ["de", "en"].contains(lang) else { throw HTTPError(.notFound) }
        if context.authState == .complete, var user = context.user, user.language != lang {
            user.language = lang
            try await env.storage.updateUser(user)
        }
        let cookie = WebCookies.make(WebCookies.language, lang, settings: settings, https: context.isHTTPS, maxAge: 365 * 86400)
        return redirect(localPath(request.uri.queryParameters.get("back")) ?? "/", cookies: [cookie])
    }
}
