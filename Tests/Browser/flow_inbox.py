"""Flow: a user browses the received fax the simulator sent (list, detail with page thumbnails, PDF) and plays
the voicemail in the browser's <audio> element. Prints {"listed", "fax": {...}, "voicemail": {...}}."""
import time

import fgbrowser as fg


def image_loaded(b, img):
    return b.driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)


def body(b):
    b.restore()
    out = {}
    b.go("/inbox")
    if b.path() != "/inbox":
        raise fg.StepFailed(f"/inbox answered {b.path()}")
    b.shoot("inbox")
    items = b.links(r"/inbox/[^/]+")
    out["listed"] = len(items)
    if b.has_field("q"):
        # Search by the caller's number: the list narrows to calls from it.
        f = b.form_with("q")
        b.fill("q", b.args.caller, f)
        b.submit(f)
        out["search_hits"] = len(b.links(r"/inbox/[^/]+"))
        b.shoot("inbox-search")
        b.go("/inbox")
    for href in items:
        b.go(href)
        if b.all_css("audio") and "voicemail" not in out:
            b.shoot("voicemail")  # reloads the page in the other language and back: find elements after it
            a = b.by_css("audio")
            src = b.driver.execute_script("return arguments[0].currentSrc || arguments[0].src || (arguments[0].querySelector('source')||{}).src", a)
            # Play it: the browser fetches the recording with the session and decodes it; time must advance.
            b.driver.execute_script("arguments[0].muted = true; arguments[0].play();", a)
            played = b.wait_for("the voicemail to play", lambda: b.driver.execute_script(
                "return arguments[0].currentTime > 0.5 ? arguments[0].currentTime : 0", a), timeout=15)
            status, ctype, data = b.fetch(src)
            out["voicemail"] = {"id": href.rsplit("/", 1)[1], "played_seconds": played,
                                "duration": b.driver.execute_script("return arguments[0].duration", a),
                                "error": b.driver.execute_script("return arguments[0].error && arguments[0].error.code", a),
                                "src_status": status, "src_type": ctype, "src_bytes": len(data)}
            b.driver.execute_script("arguments[0].pause()", a)
            continue
        if b.all_css(".thumbnails img") and "fax" not in out:
            b.shoot("fax")
            thumbs = b.all_css(".thumbnails img")
            b.wait_for("thumbnails", lambda: all(image_loaded(b, t) for t in thumbs), timeout=20)
            pdfs = [h for h in b.links(r".*") if h.split("?")[0].endswith(".pdf") or "pdf" in h.rsplit("/", 1)[-1]]
            fax = {"id": href.rsplit("/", 1)[1], "thumbnails": len(thumbs),
                   "thumbnail_sizes": [b.driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight]", t) for t in thumbs]}
            if pdfs:
                status, ctype, data = b.fetch(pdfs[0])
                fax.update({"pdf_status": status, "pdf_type": ctype, "pdf_bytes": len(data)})
                if data.startswith(b"%PDF"):
                    path = b.downloads + "/received.pdf"
                    open(path, "wb").write(data)
                    fax["pdf_path"] = path
            # Mark read, when the page offers it.
            forms = [f for f in b.all_css("form") if "read" in (f.get_attribute("action") or "")]
            if forms:
                b.submit(forms[0])
                fax["marked_read"] = True
            out["fax"] = fax
    return out


fg.run("inbox", body, {"--caller": {"default": "1112223"}})
