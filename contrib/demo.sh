#!/bin/sh
# Faxgate demo on a fresh Debian 12 machine: installs what is needed, builds, and shows one fax travelling
# end to end on the embedded default (SQLite storage):
#
#   CAPI simulator (the "line") --rcapi--> libcapi20 --> faxgate serve --SMTP/STARTTLS--> Postfix --LMTP--> Dovecot
#
# Everything runs on 127.0.0.1 inside DEMO_DIR (default /tmp/faxgate-demo). At the end the received mail
# and its PDF are in DEMO_DIR/mail/, the Maildir under DEMO_DIR/servers/, and the journal is printed.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO_DIR=${DEMO_DIR:-/tmp/faxgate-demo}

sh contrib/install-deps.sh
echo "==> building faxgate"
swift build --product faxgate
swift build --product capisim
BIN=$(swift build --show-bin-path)

[ -d "$DEMO_DIR/servers" ] && bash contrib/testservers.sh stop "$DEMO_DIR/servers" >/dev/null 2>&1 || true
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR/spool" "$DEMO_DIR/mail"

echo "==> starting Dovecot (IMAP) and Postfix (SMTP with STARTTLS) on loopback"
bash contrib/testservers.sh start "$DEMO_DIR/servers" >/dev/null
. "$DEMO_DIR/servers/servers.env"

cleanup() {
    [ -n "${FAXGATE_PID:-}" ] && kill -TERM "$FAXGATE_PID" 2>/dev/null && wait "$FAXGATE_PID" 2>/dev/null || true
    bash "$ROOT/contrib/testservers.sh" stop "$DEMO_DIR/servers" >/dev/null 2>&1 || true
}
trap cleanup EXIT INT TERM

# A free port for the simulator below 32768 (libcapi20 keeps the port in a signed short).
CAPI_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1] % 20000 + 10000)')

( umask 077; printf '%s\n' "$MAIL_PASSWORD" > "$DEMO_DIR/smtp-password" )
cat > "$DEMO_DIR/faxgate.yaml" <<YAML
spool_directory: $DEMO_DIR/spool
hostname: faxgate.demo.test
log:
  level: info
capi:
  driver: rcapi
  host: 127.0.0.1
  port: $CAPI_PORT
smtp:
  host: 127.0.0.1
  port: $SMTP_STARTTLS_PORT
  security: starttls
  username: $MAIL_USER
  password_file: $DEMO_DIR/smtp-password
  ca_file: $CA_FILE
mail:
  from: "Faxgate Demo <$MAIL_USER>"
extensions:
  - name: Empfang
    numbers: ["100"]
    email: [$MAIL_USER]
    formats: [pdf, tiff]
    language: de
    station_id: "+49 30 9999100"
    headline: "Faxgate Demo"
# How numbers are written on this line: the network's national "305550123" becomes +49 30 5550123 / 030 5550123.
outgoing:
  line: {country_code: "49", area_code: "30"}
YAML
"$BIN/faxgate" config check -c "$DEMO_DIR/faxgate.yaml"

echo "==> making a 2-page fax with Ghostscript's cfax device"
cat > "$DEMO_DIR/letter.ps" <<'PS'
%!PS
/Helvetica-Bold findfont 22 scalefont setfont 72 740 moveto (Praxis Dr. Beispiel) show
/Helvetica findfont 12 scalefont setfont
72 700 moveto (Befundbericht - Demo-Fax fuer Faxgate) show
72 680 moveto (Seite 1 von 2) show
0 1 30 { /i exch def 72 650 i 14 mul sub moveto (Zeile ) show i 20 string cvs show ( - The quick brown fox jumps over the lazy dog.) show } for
4 setlinewidth 72 150 moveto 520 150 lineto stroke
showpage
/Helvetica findfont 12 scalefont setfont
72 740 moveto (Seite 2 von 2) show
newpath 300 450 120 0 360 arc 0.5 setgray fill 0 setgray
showpage
PS
gs -q -dNOPAUSE -dBATCH -dSAFER -sDEVICE=cfax -r204x196 -sPAPERSIZE=a4 -sOutputFile="$DEMO_DIR/letter.sff" "$DEMO_DIR/letter.ps"

echo "==> starting the CAPI simulator on 127.0.0.1:$CAPI_PORT and faxgate serve"
"$BIN/capisim" --port "$CAPI_PORT" --wait-listen 60 --station-id "+49 30 5550123" --calling-type national \
    --call "305550123:100:$DEMO_DIR/letter.sff" > "$DEMO_DIR/capisim.log" 2>&1 &
SIM_PID=$!
"$BIN/faxgate" serve -c "$DEMO_DIR/faxgate.yaml" > "$DEMO_DIR/faxgate.log" 2>&1 &
FAXGATE_PID=$!

if ! wait "$SIM_PID"; then
    echo "the simulator's call failed:"; cat "$DEMO_DIR/capisim.log"; cat "$DEMO_DIR/faxgate.log"; exit 1
fi
cat "$DEMO_DIR/capisim.log"

echo "==> fetching the mail from Dovecot over IMAPS"
python3 Tests/Scripts/imap_fetch.py --port "$IMAPS_PORT" --security tls --ca "$CA_FILE" \
    --user "$MAIL_USER" --password "$MAIL_PASSWORD" --out "$DEMO_DIR/mail" --expect 1 --timeout 60
python3 - "$DEMO_DIR/mail/1.eml" "$DEMO_DIR/mail" <<'PY'
import email, email.policy, sys, os
msg = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
print("Subject:", msg["Subject"]); print("From:", msg["From"]); print("To:", msg["To"]); print()
print(msg.get_body(preferencelist=("plain",)).get_content())
for part in msg.iter_attachments():
    path = os.path.join(sys.argv[2], part.get_filename())
    open(path, "wb").write(part.get_payload(decode=True))
    print("attachment:", path, part.get_content_type())
PY

echo "==> journal"
"$BIN/faxgate" journal -c "$DEMO_DIR/faxgate.yaml"
echo
echo "Demo finished. Open the PDF in $DEMO_DIR/mail/; gateway log: $DEMO_DIR/faxgate.log"
