"""Flow: the pages reachable from --start by links, shot in both languages: the navigation's pages, then
links found on them under --prefix (e.g. /admin: journal → a call, queue → a job, privacy → its sub-pages),
one page per URL shape (/admin/calls/1 and /admin/calls/2 are one shape), at most --max pages. A page that
answers an error status is reported. Prints {"visited": [...], "failed": [...]}."""
import re

import fgbrowser as fg


def shape(path):
    return re.sub(r"/\d+(?=/|$)", "/N", path)


def skip(p):
    # Pages only: no downloads (a PDF, a recording, an archive), no logout, no language switch (every page is
    # shot in both languages anyway), not the machine endpoints.
    return (p.startswith(("/static/", "/metrics", "/health", "/language/")) or "logout" in p or p == "/"
            or p.endswith("/download") or re.search(r"\.(pdf|wav|mp3|png|zip|7z|json|txt|csv)$", p) is not None)


def body(b):
    a = b.args
    b.restore()
    b.go(a.start)
    seen_shapes, visited, failed = set(), [], []
    queue = [b.url(a.start)] + b.links(r"/[^?#]*") + [b.url(p) for p in a.extra]
    while queue and len(visited) < a.max:
        href = queue.pop(0)
        p = fg.urllib.parse.urlparse(href).path
        if skip(p) or shape(p) in seen_shapes:
            continue
        seen_shapes.add(shape(p))
        status, ctype, _ = b.fetch(href)
        if status >= 400:
            failed.append({"path": p, "status": status})
            continue
        if not ctype.startswith("text/html"):
            continue  # a download the page links to, not a page
        b.go(href)
        visited.append(p)
        b.shoot(p.strip("/").replace("/", "_") or "home")
        # One level further inside the area the tour is about.
        queue += [h for h in b.links(r"/[^?#]*") if fg.urllib.parse.urlparse(h).path.startswith(a.prefix)]
    return {"visited": visited, "failed": failed}


fg.run("tour", body, {"--start": {"default": "/admin"}, "--prefix": {"default": "/admin"},
                      "--max": {"type": int, "default": 40}, "--extra": {"nargs": "*", "default": []}})
