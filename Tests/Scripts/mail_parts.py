#!/usr/bin/env python3
"""Parse one RFC 5322 message with Python's email package (a parser nobody here wrote) and print JSON:
decoded headers, the plain-text body, and the attachments written to OUTDIR.

    mail_parts.py MESSAGE.eml OUTDIR
"""
import email
import email.policy
import json
import os
import sys

raw = open(sys.argv[1], "rb").read()
msg = email.message_from_bytes(raw, policy=email.policy.default)
out = {
    "headers": {k: str(v) for k, v in msg.items()},
    "raw_headers": raw.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace"),
    "body": "",
    "attachments": [],
}
body = msg.get_body(preferencelist=("plain",))
if body is not None:
    out["body"] = body.get_content()
for part in msg.iter_attachments():
    name = part.get_filename()
    path = os.path.join(sys.argv[2], name)
    data = part.get_payload(decode=True)
    open(path, "wb").write(data)
    out["attachments"].append({"filename": name, "content_type": part.get_content_type(), "path": path, "size": len(data)})
print(json.dumps(out))
