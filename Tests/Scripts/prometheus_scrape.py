#!/usr/bin/python3
"""GET a URL; for /metrics parse the body with prometheus_client's text parser (the reference implementation's
Python client) and print every sample as JSON; otherwise print status and body.

usage: prometheus_scrape.py metrics URL [HEADER=VALUE ...]
       prometheus_scrape.py get URL [HEADER=VALUE ...]
Prints {"status": int, "content_type": str, "body": str, "samples": [{"family", "type", "name", "labels", "value"}]}.
"""
import json
import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    mode, url = sys.argv[1], sys.argv[2]
    request = urllib.request.Request(url)
    for pair in sys.argv[3:]:
        name, value = pair.split("=", 1)
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, body, ctype = response.status, response.read().decode("utf-8"), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, body, ctype = e.code, e.read().decode("utf-8", "replace"), e.headers.get("Content-Type", "")
    out = {"status": status, "content_type": ctype, "body": body, "samples": []}
    if mode == "metrics" and status == 200:
        for family in text_string_to_metric_families(body):
            for s in family.samples:
                out["samples"].append({"family": family.name, "type": family.type, "name": s.name,
                                       "labels": dict(s.labels), "value": s.value})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
