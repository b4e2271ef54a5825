"""Flow: an admin creates a support snapshot on /admin/privacy/snapshots, reads the passphrase the page shows
once, and downloads the archive with the browser's session. Prints {"passphrase", "archive", "bytes"}; the
Swift test opens the archive with that passphrase."""
import re

import fgbrowser as fg


def body(b):
    a = b.args
    b.restore()
    b.go("/admin/privacy/snapshots")
    if b.path() != "/admin/privacy/snapshots":
        raise fg.StepFailed(f"/admin/privacy/snapshots answered {b.path()}")
    b.shoot("snapshots")
    before = set(b.links(r"/admin/privacy/snapshots/.+"))
    forms = [f for f in b.all_css("main form") if "delete" not in (f.get_attribute("action") or "")]
    if not forms:
        raise fg.StepFailed("no form to create a snapshot")
    b.submit(forms[0])
    # Creating may take a moment; the answer shows the passphrase once (not stored, so no reload in the other language).
    el = b.wait_for("the passphrase", lambda: b.by_css("#passphrase, [data-passphrase], .passphrase", required=False), timeout=60)
    passphrase = el.text.strip() or el.get_attribute("value")
    b.shoot("snapshot-created", both=False)
    downloads = [h for h in b.links(r"/admin/privacy/snapshots/.+") if "delete" not in h]
    fresh = [h for h in downloads if h not in before] or downloads
    if not fresh:
        raise fg.StepFailed("no download link after creating a snapshot")
    status, ctype, data = b.fetch(fresh[0])
    if status != 200:
        raise fg.StepFailed(f"download {fresh[0]} answered {status}")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", fresh[0].rsplit("/", 1)[-1]) or "snapshot"
    if "." not in name:
        name += ".zip" if data[:2] == b"PK" else ".7z" if data[:2] == b"7z" else ".bin"
    path = b.shots + "/" + name
    open(path, "wb").write(data)
    b.go("/admin/privacy/snapshots")
    b.shoot("snapshots-after")
    return {"passphrase": passphrase, "archive": path, "bytes": len(data), "content_type": ctype, "download": fresh[0]}


fg.run("snapshot", body)
