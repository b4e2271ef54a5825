#!/usr/bin/env python3
"""Fetch messages from the test Dovecot over IMAPS or IMAP+STARTTLS and write them as .eml files.

The server certificate is verified against the test CA (host name included), so a test that passes
here also proves the servers speak verified TLS.

    imap_fetch.py --host 127.0.0.1 --port 993 --security tls|starttls --ca CA.pem \
                  --user U --password P --out DIR [--mailbox INBOX] [--expect N] [--timeout S] [--delete]

Waits (up to --timeout seconds) until the mailbox holds at least --expect messages, then writes
DIR/1.eml, DIR/2.eml … in sequence order and prints one line per file. Exit status 0 on success,
1 if fewer than --expect messages arrived, 2 on connection/TLS/login errors.
"""
import argparse
import imaplib
import os
import ssl
import sys
import time


def connect(args, context):
    if args.security == "tls":
        return imaplib.IMAP4_SSL(args.host, args.port, ssl_context=context, timeout=args.timeout)
    conn = imaplib.IMAP4(args.host, args.port, timeout=args.timeout)
    conn.starttls(ssl_context=context)
    return conn


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--security", choices=["tls", "starttls"], default="tls")
    p.add_argument("--ca", required=True)
    p.add_argument("--server-name", default=None, help="name to verify in the certificate (default: --host)")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--mailbox", default="INBOX")
    p.add_argument("--expect", type=int, default=1)
    p.add_argument("--timeout", type=float, default=15.0)
    p.add_argument("--delete", action="store_true", help="expunge the fetched messages")
    args = p.parse_args()

    context = ssl.create_default_context(cafile=args.ca)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    os.makedirs(args.out, exist_ok=True)

    deadline = time.monotonic() + args.timeout
    try:
        conn = connect(args, context)
        conn.login(args.user, args.password)
        while True:
            typ, data = conn.select(args.mailbox)
            if typ != "OK":
                raise imaplib.IMAP4.error(f"SELECT {args.mailbox}: {data}")
            count = int(data[0])
            # Delivery goes Postfix -> LMTP -> Dovecot asynchronously, so poll until enough arrived.
            if count >= args.expect or time.monotonic() >= deadline:
                break
            conn.close()
            time.sleep(0.2)
        written = []
        for num in range(1, count + 1):
            typ, parts = conn.fetch(str(num), "(BODY.PEEK[])")
            if typ != "OK":
                raise imaplib.IMAP4.error(f"FETCH {num}: {parts}")
            raw = next(part[1] for part in parts if isinstance(part, tuple))
            path = os.path.join(args.out, f"{num}.eml")
            with open(path, "wb") as f:
                f.write(raw)
            written.append(path)
        if args.delete and count:
            conn.store(f"1:{count}", "+FLAGS", "\\Deleted")
            conn.expunge()
        conn.close()
        conn.logout()
    except (OSError, ssl.SSLError, imaplib.IMAP4.error) as e:
        print(f"imap_fetch: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    if count < args.expect:
        print(f"imap_fetch: expected {args.expect} message(s), found {count} after {args.timeout}s",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
