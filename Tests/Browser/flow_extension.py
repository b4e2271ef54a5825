"""Flow: an admin changes an extension's mail address on /admin/extensions. The field is found by the address
it holds now (--old), so the test does not depend on how the page names it; the change is saved and must show
on the page afterwards. Prints {"field", "saved", "page_text"}."""
import fgbrowser as fg


def body(b):
    a = b.args
    b.restore()
    b.go("/admin/extensions")
    if b.path() != "/admin/extensions":
        raise fg.StepFailed(f"/admin/extensions answered {b.path()}")
    b.shoot("extensions")
    # The extension's own page, when the list links to one.
    links = [h for h in b.links(r"/admin/extensions/[^/]+") if a.extension.lower() in h.lower()]
    if links:
        b.go(links[0])
        b.shoot("extension")
    field = None
    for el in b.all_css("input[type='text'], input[type='email'], input:not([type]), textarea"):
        if a.old in (el.get_attribute("value") or "") and el.get_attribute("name"):
            field = el
            break
    if field is None:
        raise fg.StepFailed(f"no field holds {a.old} on {b.path()}")
    name = field.get_attribute("name")
    value = field.get_attribute("value").replace(a.old, a.new)
    field.clear()
    field.send_keys(value)
    b.submit(field)
    b.shoot("extension-saved", both=False)
    text = b.text()
    if a.new not in text and not any(a.new in (e.get_attribute("value") or "") for e in b.all_css("input, textarea")):
        b.go(links[0] if links else "/admin/extensions")
    shown = any(a.new in (e.get_attribute("value") or "") for e in b.all_css("input, textarea")) or a.new in b.text()
    return {"field": name, "saved": shown, "page_text": b.text()[:800]}


fg.run("extension", body, {
    "--extension": {"default": "Empfang"},
    "--old": {"required": True},
    "--new": {"required": True},
})
