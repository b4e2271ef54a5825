"""Page steps for the browser end-to-end tests: a real headless Chromium (Debian's chromium and
chromium-driver) driven by Debian's python3-selenium against `faxgate serve`.

Every flow script (Tests/Browser/flow_*.py) builds a `Browser` from its command line, runs its steps and
ends with `finish(result)`, which prints ONE JSON object on stdout; the Swift test
(Tests/EndToEndTests/BrowserEndToEndTests.swift) asserts on it and then checks the real outcome
(simulator, Dovecot, the snapshot archive). A failing step prints {"ok": false, "error": ..., "url": ...}
plus a screenshot named "error-<flow>" so the failure can be seen, not guessed.

The session (cookies) is kept in a state file between scripts: a TOTP code may be used only once, so the
flows share one login instead of logging in again for each script.

Screenshots: `shoot(name)` writes <shots>/<nn>-<name>-de.png and -en.png: the page is reloaded in the
other language through the layout's language switch, then switched back. Pages that exist only as the
answer to a POST (a passphrase shown once) are shot in the current language only (`both=False`).
"""
import argparse
import http.cookiejar
import json
import os
import re
import sys
import time
import traceback
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"


def arguments(extra=None):
    """Command line shared by every flow: --base http://127.0.0.1:PORT --shots DIR --state FILE, plus the flow's own."""
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--shots", required=True)
    p.add_argument("--state", required=True, help="cookie file shared by the flows of one test")
    p.add_argument("--lang", default="de", help="language the flow works in (the other one is shot too)")
    for name, kw in (extra or {}).items():
        p.add_argument(name, **kw)
    return p.parse_args()


class StepFailed(Exception):
    pass


class Browser:
    def __init__(self, args, flow):
        self.args = args
        self.flow = flow
        self.base = args.base.rstrip("/")
        self.shots = args.shots
        # Downloads (a PDF, a snapshot) go beside the state file, in the test's temp dir, not among the PNGs.
        self.downloads = os.path.dirname(os.path.abspath(args.state))
        self.lang = args.lang
        self.shot_files = []
        self.pages = []
        os.makedirs(self.shots, exist_ok=True)
        options = webdriver.ChromeOptions()
        for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=1280,1000", "--autoplay-policy=no-user-gesture-required",
                  "--mute-audio", "--disable-extensions", "--no-first-run"]:
            options.add_argument(a)
        # The browser's language decides the first page's language (Accept-Language), as for a real user.
        options.add_experimental_option("prefs", {"intl.accept_languages": "de-DE,de" if self.lang == "de" else "en-US,en"})
        options.binary_location = CHROMIUM
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(30)

    # ---- navigation and state -------------------------------------------------------------------------

    def url(self, path):
        return path if path.startswith("http") else self.base + path

    def go(self, path):
        self.driver.get(self.url(path))
        self.pages.append(self.path())
        return self

    def path(self):
        return urllib.parse.urlparse(self.driver.current_url).path

    def restore(self):
        """Loads the cookies an earlier flow saved (the session of one login)."""
        if not os.path.exists(self.args.state):
            return False
        self.driver.get(self.url("/health/live"))  # any URL of the origin, so cookies can be set for it
        with open(self.args.state) as f:
            for c in json.load(f):
                c.pop("expiry", None)
                c.pop("sameSite", None) if c.get("sameSite") not in ("Strict", "Lax", "None") else None
                self.driver.add_cookie(c)
        return True

    def save(self):
        with open(self.args.state, "w") as f:
            json.dump(self.driver.get_cookies(), f)

    def quit(self):
        try:
            self.driver.quit()
        except Exception:
            pass

    # ---- reading the page -----------------------------------------------------------------------------

    def by_css(self, css, required=True):
        found = self.driver.find_elements(By.CSS_SELECTOR, css)
        if not found and required:
            raise StepFailed(f"no element {css!r} on {self.path()}")
        return found[0] if found else None

    def all_css(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def field(self, name, form=None):
        """An input/select/textarea by its form name (the page helpers' stable names), or by id."""
        scope = form if form is not None else self.driver
        for css in (f"[name='{name}']", f"#{name}"):
            found = scope.find_elements(By.CSS_SELECTOR, css)
            if found:
                return found[0]
        raise StepFailed(f"no field {name!r} on {self.path()}")

    def has_field(self, name):
        return bool(self.driver.find_elements(By.CSS_SELECTOR, f"[name='{name}']"))

    def text(self):
        return self.driver.find_element(By.TAG_NAME, "body").text

    def html_lang(self):
        return self.driver.find_element(By.TAG_NAME, "html").get_attribute("lang")

    def wait_for(self, what, condition, timeout=20, interval=0.25):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                last = condition()
                if last:
                    return last
            except (WebDriverException, StepFailed) as e:
                last = e
            time.sleep(interval)
        raise StepFailed(f"timed out waiting for {what} on {self.path()} (last: {last!r})")

    # ---- acting ---------------------------------------------------------------------------------------

    def fill(self, name, value, form=None):
        el = self.field(name, form)
        tag = el.tag_name.lower()
        kind = (el.get_attribute("type") or "").lower()
        if tag == "select":
            from selenium.webdriver.support.ui import Select
            s = Select(el)
            try:
                s.select_by_value(value)
            except NoSuchElementException:
                s.select_by_visible_text(value)
        elif kind in ("checkbox", "radio"):
            if bool(value) != el.is_selected():
                el.click()
        elif kind == "file":
            el.send_keys(value)
        elif kind in ("datetime-local", "date", "time"):
            # Typing into date pickers depends on the locale; set the value the form posts directly.
            self.driver.execute_script("arguments[0].value = arguments[1];", el, value)
        else:
            el.clear()
            el.send_keys(value)
        return el

    def submit(self, form_or_field):
        """Submits the form `form_or_field` belongs to with its submit button (as a user would click it)."""
        form = form_or_field if form_or_field.tag_name.lower() == "form" else form_or_field.find_element(By.XPATH, "./ancestor::form")
        buttons = form.find_elements(By.CSS_SELECTOR, "button[type='submit'], input[type='submit'], button:not([type])")
        before = self.driver.current_url
        old = self.driver.find_element(By.TAG_NAME, "html")
        if buttons:
            buttons[0].click()
        else:
            form.submit()
        # Wait for the new document (the old <html> goes stale).
        self.wait_for("the answer to the form", lambda: self._stale(old), timeout=60)
        self.pages.append(self.path())
        return before

    def click_and_wait(self, el):
        """Clicks a link (or button) and waits for the next document."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        el.click()
        self.wait_for("the next page", lambda: self._stale(old), timeout=30)
        self.pages.append(self.path())

    @staticmethod
    def _stale(el):
        try:
            el.tag_name
            return False
        except WebDriverException:
            return True

    def form_with(self, field_name=None, action=None):
        """The form that has field `field_name` and/or whose action contains `action`."""
        for form in self.all_css("form"):
            if action and action not in (form.get_attribute("action") or ""):
                continue
            if field_name and not form.find_elements(By.CSS_SELECTOR, f"[name='{field_name}']"):
                continue
            return form
        raise StepFailed(f"no form with field={field_name!r} action={action!r} on {self.path()}")

    def links(self, pattern):
        """hrefs on the page whose path matches `pattern` (a regex), in page order, without duplicates."""
        out = []
        for a in self.all_css("a[href]"):
            href = a.get_attribute("href")
            p = urllib.parse.urlparse(href).path
            if re.fullmatch(pattern, p) and href not in out:
                out.append(href)
        return out

    # ---- languages and screenshots ----------------------------------------------------------------------

    def switch_language(self, lang):
        """Switches through the layout's language switch (a link or form the layout offers), as a user would.
        Falls back to the `lang` cookie when the page has no switch. Returns how it switched."""
        if self.html_lang() == lang:
            return "already"
        for a in self.all_css("a[hreflang], a[href*='lang=']"):
            href = a.get_attribute("href") or ""
            if a.get_attribute("hreflang") == lang or re.search(r"[?&]lang=" + lang + r"\b", href):
                old = self.driver.find_element(By.TAG_NAME, "html")
                a.click()
                self.wait_for("language switch", lambda: self._stale(old))
                return "link"
        for form in self.all_css("form"):
            el = form.find_elements(By.CSS_SELECTOR, f"[name='lang'][value='{lang}'], button[value='{lang}']")
            if el:
                old = self.driver.find_element(By.TAG_NAME, "html")
                el[0].click()
                self.wait_for("language switch", lambda: self._stale(old))
                return "form"
        self.driver.add_cookie({"name": "lang", "value": lang, "path": "/"})
        self.driver.refresh()
        return "cookie"

    def shoot(self, name, both=True):
        """Screenshots the current page in the current language and (both=True) in the other one."""
        current = self.html_lang() or self.lang
        self._png(name, current)
        if not both:
            return
        other = "en" if current == "de" else "de"
        here = self.driver.current_url
        self.switch_language(other)
        if self.driver.current_url != here:  # the switch comes back to the path; a query needs reloading
            self.driver.get(here)
        got = self.html_lang()
        if got != other:
            raise StepFailed(f"language switch to {other} on {self.path()} left lang={got!r}")
        self._png(name, other)
        self.switch_language(current)
        if self.driver.current_url != here:
            self.driver.get(here)

    def _png(self, name, lang):
        # Numbered across all flows of the test (the folder is shared), so the files sort in the order visited.
        n = len([f for f in os.listdir(self.shots) if f.endswith(".png")]) + 1
        # Width and full height of the document, so a long list is shot whole.
        height = self.driver.execute_script("return Math.max(document.body.scrollHeight, 600)")
        self.driver.set_window_size(1280, min(int(height) + 120, 4000))
        path = os.path.join(self.shots, f"{n:03d}-{self.flow}-{name}-{lang}.png")
        if not self.driver.save_screenshot(path):
            raise StepFailed(f"screenshot {path} failed")
        self.driver.set_window_size(1280, 1000)
        self.shot_files.append(path)

    # ---- fetching with the browser's session ----------------------------------------------------------

    def fetch(self, href):
        """GET `href` with the browser's cookies (for downloads: a PDF, an archive); returns (status, type, bytes)."""
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        cookie = "; ".join(f"{c['name']}={c['value']}" for c in self.driver.get_cookies())
        req = urllib.request.Request(self.url(href), headers={"Cookie": cookie})
        try:
            with opener.open(req, timeout=30) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Content-Type", ""), e.read()


def totp_code(secret, at=None):
    import pyotp
    return pyotp.TOTP(secret).at(at if at is not None else time.time())


def run(flow, body, extra=None):
    """Runs `body(browser)`; prints its result dict as JSON with ok/shots/pages added; exits 0 either way
    (the Swift test reads `ok`), 2 when the browser could not even start."""
    args = arguments(extra)
    try:
        b = Browser(args, flow)
    except Exception as e:
        print(json.dumps({"ok": False, "error": f"browser did not start: {e}"}))
        sys.exit(2)
    result = {}
    try:
        result = body(b) or {}
        result["ok"] = True
    except Exception as e:
        result["ok"] = False
        result["error"] = f"{type(e).__name__}: {e}"
        result["trace"] = traceback.format_exc()[-2000:]
        try:
            result["url"] = b.driver.current_url
            result["page_text"] = b.text()[:1500]
            b._png("error", b.html_lang() or "xx")
        except Exception:
            pass
    finally:
        result["shots"] = b.shot_files
        result["pages"] = b.pages
        b.quit()
    print(json.dumps(result))
