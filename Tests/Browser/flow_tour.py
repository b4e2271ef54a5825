"""Flow: every page the navigation offers (and the given extra paths), shot in both languages. A page that
answers an error status shows in the result. Prints {"visited": [...], "failed": [...]}."""
import re

import fgbrowser as fg


def body(b):
    b.restore()
    b.go(b.args.start)
    seen, failed = [], []
    queue = b.links(r"/[^?#]*") + [b.url(p) for p in b.args.extra]
    for href in queue:
        p = fg.urllib.parse.urlparse(href).path
        # Pages only: no downloads (a PDF, a recording, an archive), no logout, not the machine endpoints.
        if (p in seen or p.startswith(("/static/", "/metrics", "/health")) or "logout" in p
                or re.search(r"\.(pdf|wav|mp3|png|zip|7z|json|txt|csv)$", p)):
            continue
        seen.append(p)
        status, ctype, _ = b.fetch(href)
        if status >= 400:
            failed.append({"path": p, "status": status})
            continue
        if not ctype.startswith("text/html"):
            continue  # a download the page links to, not a page
        b.go(href)
        b.shoot(p.strip("/").replace("/", "_") or "home")
    return {"visited": seen, "failed": failed}


fg.run("tour", body, {"--start": {"default": "/admin"}, "--extra": {"nargs": "*", "default": []}})
