"""Flow: an admin creates a support snapshot on /admin/privacy/snapshots (privacy-snapshots.mustache), reads
the passphrase the page shows once (#passphrase), and downloads the archive (#snapshot-download) with the
browser's session. Prints {"passphrase", "archive", "bytes", "name"}; the Swift test opens the archive with
that passphrase."""
import re

import fgbrowser as fg


def body(b):
    b.restore()
    b.go("/admin/privacy/snapshots")
    if b.path() != "/admin/privacy/snapshots":
        raise fg.StepFailed(f"/admin/privacy/snapshots answered {b.path()}")
    b.shoot("snapshots")
    form = b.form_with(action="/admin/privacy/snapshots")
    b.submit(form)  # no dates: everything the retention keeps
    err = b.all_css("p.error")
    if err:
        raise fg.StepFailed("snapshot refused: " + err[0].text)
    passphrase = b.by_css("#passphrase").text.strip()
    name = b.by_css("#snapshot-name").text.strip()
    # The answer to the POST is the only place the passphrase is shown: shot once, not reloaded.
    b.shoot("snapshot-created", both=False)
    href = b.by_css("#snapshot-download").get_attribute("href")
    status, ctype, data = b.fetch(href)
    if status != 200:
        raise fg.StepFailed(f"download {href} answered {status}")
    path = b.downloads + "/" + (re.sub(r"[^A-Za-z0-9._-]", "_", name) or "snapshot.zip")
    with open(path, "wb") as f:
        f.write(data)
    b.go("/admin/privacy/snapshots")
    listed = [r.get_attribute("data-name") for r in b.all_css("#snapshots tr[data-name]")]
    b.shoot("snapshots-after")
    # The list shows the snapshot, never its passphrase.
    return {"passphrase": passphrase, "name": name, "archive": path, "bytes": len(data), "content_type": ctype,
            "listed": name in listed, "passphrase_on_list": passphrase in b.driver.page_source}


fg.run("snapshot", body)
