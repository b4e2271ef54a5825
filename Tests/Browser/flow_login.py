"""Flow: log in through /login. An account with a one-time password (from `faxgate user add`) is taken through
what the pages ask on first login (new password, TOTP enrolment with the secret shown next to the QR code,
recovery codes); then it logs out and in again with password + TOTP code, as an admin does every day.
Prints {"user", "password", "totp_secret", "enrolled", "relogin_with_totp", "landing"}; the session is saved
to --state for the next flows."""
import re
import time

import fgbrowser as fg


def body(b):
    a = b.args
    out = {"user": a.user}
    password = a.password
    b.go("/login")
    if b.path() != "/login":
        raise fg.StepFailed(f"/login redirected to {b.path()}")
    b.shoot("login")
    login_form = b.form_with("password")
    b.fill("username", a.user, login_form)
    b.fill("password", password, login_form)
    b.submit(login_form)

    secret = a.totp_secret
    # First login: whatever the pages ask for, in the order they ask it (each step is one form).
    for _ in range(6):
        p = b.path()
        if b.has_field("new_password"):
            b.shoot("password-change", both=False)
            password = a.new_password
            f = b.form_with("new_password")
            if b.has_field("current_password"):
                b.fill("current_password", a.password, f)
            b.fill("new_password", password, f)
            for confirm in ("new_password_confirm", "confirm_password", "new_password2"):
                if b.has_field(confirm):
                    b.fill(confirm, password, f)
            b.submit(f)
            out["password_changed"] = True
            continue
        if b.has_field("code") and ("enrol" in p or "enroll" in p or "setup" in p or b.all_css("#totp-secret, img[src*='qr'], img.qr, svg")):
            # Enrolment: the secret is printed next to the QR code for people who cannot scan.
            shown = b.by_css("#totp-secret, [data-totp-secret], code.secret", required=False)
            text = shown.text if shown is not None else b.text()
            m = re.search(r"\b([A-Z2-7]{16,})\b", text.replace(" ", ""))
            if not m:
                raise fg.StepFailed("TOTP enrolment page shows no base32 secret")
            secret = m.group(1)
            out["qr_image"] = bool(b.all_css("img[src*='qr'], img.qr, #totp-qr, svg"))
            b.shoot("totp-enrol", both=False)
            f = b.form_with("code")
            b.fill("code", fg.totp_code(secret), f)
            b.submit(f)
            out["enrolled"] = True
            continue
        if b.has_field("code"):
            # Second factor at login.
            if not secret:
                raise fg.StepFailed("the page asks for a TOTP code but no secret is known")
            b.shoot("login-totp")
            f = b.form_with("code")
            b.fill("code", fg.totp_code(secret), f)
            b.submit(f)
            out["totp_at_login"] = True
            continue
        if "recovery" in p or b.all_css("#recovery-codes, .recovery-codes"):
            codes = b.all_css("#recovery-codes li, .recovery-codes li, #recovery-codes code")
            out["recovery_codes"] = len(codes)
            b.shoot("recovery-codes", both=False)
            links = [l for l in b.all_css("a[href]") if fg.urllib.parse.urlparse(l.get_attribute("href")).path in ("/", "/inbox", "/admin", "/account")]
            forms = [f for f in b.all_css("main form") if "logout" not in (f.get_attribute("action") or "")]
            if forms:
                b.submit(forms[0])
            elif links:
                b.go(links[0].get_attribute("href"))
            else:
                b.go("/")
            continue
        break
    out["landing"] = b.path()
    if b.path() == "/login":
        raise fg.StepFailed("still on /login after the login steps: " + b.text()[:300])
    b.shoot("landing")

    if a.relogin and secret:
        # The daily login: password, then a code. The enrolment used this time step's code, and a code is
        # accepted once; the next step's code is inside the ±1 window, so no waiting.
        logout = b.form_with(action="/logout")
        b.submit(logout)
        if b.path() != "/login":
            b.go("/login")
        f = b.form_with("password")
        b.fill("username", a.user, f)
        b.fill("password", password, f)
        b.submit(f)
        if not b.has_field("code"):
            raise fg.StepFailed(f"admin login asked for no TOTP code (on {b.path()})")
        b.shoot("login-totp")
        f = b.form_with("code")
        b.fill("code", fg.totp_code(secret, time.time() + 30), f)
        b.submit(f)
        if b.path() == "/login" or b.has_field("code"):
            raise fg.StepFailed("login with password + TOTP failed: " + b.text()[:300])
        out["relogin_with_totp"] = True
        out["landing"] = b.path()
    out["password"] = password
    out["totp_secret"] = secret
    b.save()
    return out


fg.run("login", body, {
    "--user": {"required": True},
    "--password": {"required": True},
    "--new-password": {"default": "Browser-Test-Passwort-2026!"},
    "--totp-secret": {"default": None},
    "--relogin": {"action": "store_true"},
})
