#!/usr/bin/env python3
"""Build a test message with Python's email package (a MIME writer nobody here wrote).

    make_mail.py SPEC.json OUT.eml

SPEC: {"from": "...", "to": ["..."], "subject": "...", "body": "..." | null, "html": "..." | null,
       "headers": {"X-Fax-Resolution": "normal", ...},
       "attachments": [{"path": "...", "type": "application/pdf", "filename": "Brief.pdf"}]}
"""
import json
import sys
from email.message import EmailMessage
from email.utils import make_msgid, formatdate

spec = json.load(open(sys.argv[1]))
msg = EmailMessage()
msg["From"] = spec["from"]
msg["To"] = ", ".join(spec["to"])
msg["Subject"] = spec["subject"]
msg["Date"] = formatdate(localtime=True)
msg["Message-ID"] = spec.get("message_id") or make_msgid(domain="example.test")
for k, v in spec.get("headers", {}).items():
    msg[k] = v
if spec.get("body") is not None:
    msg.set_content(spec["body"])
if spec.get("html") is not None:
    if spec.get("body") is None:
        msg.set_content(spec["html"], subtype="html")
    else:
        msg.add_alternative(spec["html"], subtype="html")
for a in spec.get("attachments", []):
    maintype, subtype = a["type"].split("/", 1)
    msg.add_attachment(open(a["path"], "rb").read(), maintype=maintype, subtype=subtype, filename=a["filename"])
open(sys.argv[2], "wb").write(bytes(msg))
