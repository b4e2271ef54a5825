"""Flow: log in through /login (Sources/FaxgateWeb/Templates/login*.mustache, account-*.mustache).
An account with a one-time password from `faxgate user add` is taken through what the first login asks:
a new password (/account/password), for an admin the TOTP enrolment (/account/totp: the secret is printed
next to the QR code) and the recovery codes shown once. With --relogin it then logs out and in again with
password + TOTP code, as an admin does every day. The session is saved to --state for the next flows.
Prints {"user", "password", "totp_secret", "steps", "relogin_with_totp", "landing", ...}."""
import re
import time

import fgbrowser as fg


def login_form(b, user, password):
    if b.path() != "/login":
        b.go("/login")
    f = b.by_css("#login-form")
    b.fill("name", user, f)
    b.fill("password", password, f)
    b.submit(f)


def body(b):
    a = b.args
    out = {"user": a.user, "steps": []}
    password = a.password
    b.go("/login")
    if b.path() != "/login":
        raise fg.StepFailed(f"/login answered {b.path()}")
    b.shoot("login")
    login_form(b, a.user, password)

    secret = a.totp_secret
    # First login: each page the server sends us to, in its order, until we land.
    for _ in range(6):
        p = b.path()
        out["steps"].append(p)
        if p == "/login":
            err = b.by_css("#login-error", required=False)
            raise fg.StepFailed("login refused: " + (err.text if err else b.text()[:300]))
        if p == "/account/password" and b.all_css("#password-form"):
            b.shoot("password-forced")
            password = a.new_password
            f = b.by_css("#password-form")
            if b.all_css("#current"):
                b.fill("current", a.password, f)
            b.fill("new", password, f)
            b.fill("repeat", password, f)
            b.submit(f)
            out["password_changed"] = True
            continue
        if p == "/account/totp" and b.all_css("#enrol-form"):
            # Every GET makes a new secret: shoot first, then read the secret of the page we submit.
            b.shoot("totp-enrol")
            qr = b.by_css("#totp-qr")
            out["qr_loaded"] = b.driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", qr)
            secret = re.sub(r"\s", "", b.by_css("#totp-secret").text)
            if not re.fullmatch(r"[A-Z2-7]{16,}=*", secret):
                raise fg.StepFailed(f"TOTP secret on the page is not base32: {secret!r}")
            f = b.by_css("#enrol-form")
            b.fill("code", fg.totp_code(secret), f)
            b.submit(f)
            codes = b.all_css("#recovery-codes li")
            if not codes:
                raise fg.StepFailed("no recovery codes after enrolment: " + b.text()[:300])
            out["recovery_codes"] = len(codes)
            out["steps"].append("recovery-codes")
            b.shoot("recovery-codes", both=False)  # the answer to the POST: shown once
            b.click_and_wait(b.by_css("#recovery-continue"))
            continue
        if p == "/login/totp":
            if not secret:
                raise fg.StepFailed("the page asks for a TOTP code but no secret is known")
            b.shoot("login-totp")
            f = b.by_css("#totp-form")
            b.fill("code", fg.totp_code(secret), f)
            b.submit(f)
            continue
        break
    out["landing"] = b.path()
    b.shoot("landing")

    if a.relogin:
        if not secret:
            raise fg.StepFailed("--relogin without a TOTP secret")
        # The daily login: password, then a code. The enrolment used this time step's code, and each code
        # counts once; the next step's code is inside the ±1 step window, so there is no waiting.
        b.submit(b.by_css("#nav-logout"))
        out["after_logout"] = b.path()
        b.go(out["landing"])
        out["after_logout_protected"] = b.path()  # a protected page now sends us to /login
        login_form(b, a.user, password)
        if b.path() != "/login/totp":
            raise fg.StepFailed(f"admin login asked for no TOTP code (on {b.path()})")
        b.shoot("login-totp")
        f = b.by_css("#totp-form")
        b.fill("code", fg.totp_code(secret, time.time() + 30), f)
        b.submit(f)
        if b.path() in ("/login", "/login/totp"):
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
