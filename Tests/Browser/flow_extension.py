"""Flow: an admin changes an extension's mail address (/admin/extensions → the extension's page, field
#email of #extension-form, settings-extension.mustache). The save must be accepted (no #settings-errors)
and the list must show the new address in the extension's row. Prints {"saved", "row", "page_after"}."""
import fgbrowser as fg


def body(b):
    a = b.args
    b.restore()
    b.go("/admin/extensions")
    if b.path() != "/admin/extensions":
        raise fg.StepFailed(f"/admin/extensions answered {b.path()}")
    b.shoot("extensions")
    link = next((l for l in b.all_css("#extensions tbody tr td:first-child a") if l.text.strip() == a.extension), None)
    if link is None:
        raise fg.StepFailed(f"no extension {a.extension} in the list")
    b.go(link.get_attribute("href"))
    b.shoot("extension")
    email = b.by_css("#email")
    before = email.get_attribute("value")
    if a.old not in before:
        raise fg.StepFailed(f"#email holds {before!r}, not {a.old}")
    email.clear()
    email.send_keys(before.replace(a.old, a.new))
    b.submit(b.by_css("#extension-form"))
    errors = b.all_css("#settings-errors")
    if errors:
        b.shoot("extension-refused", both=False)
        raise fg.StepFailed("the change was refused: " + errors[0].text)
    out = {"page_after": b.path()}
    notice = b.all_css("#settings-notice")
    out["notice"] = notice[0].text if notice else None
    b.shoot("extension-saved")
    b.go("/admin/extensions")
    row = next((r for r in b.all_css("#extensions tbody tr") if r.find_elements(fg.By.CSS_SELECTOR, "td")[0].text.strip() == a.extension), None)
    out["row"] = row.text if row is not None else None
    out["saved"] = row is not None and a.new in row.text and a.old not in row.text
    b.shoot("extensions-after")
    return out


fg.run("extension", body, {
    "--extension": {"default": "Empfang"},
    "--old": {"required": True},
    "--new": {"required": True},
})
