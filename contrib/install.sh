#!/bin/sh
# Installs faxgate as the systemd unit runs it: binary, greetings, service user, config readable by that
# user (root:faxgate 0640 in root:faxgate 0750), spool owned by it (0700), the unit. Idempotent and
# non-interactive: run it again after every build; an existing config or password file is never touched.
#
#   swift build -c release && sudo contrib/install.sh
#
# Environment:
#   DESTDIR         install below this root instead of / (tests, packaging); systemctl is not called then
#   PREFIX          default /usr/local (the unit's ExecStart follows it)
#   FAXGATE_BINARY  default .build/release/faxgate
#   ENABLE=1        also `systemctl enable --now faxgate` (otherwise only daemon-reload)
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINARY=${FAXGATE_BINARY:-$here/.build/release/faxgate}
USER_NAME=faxgate
SPOOL=/var/spool/faxgate

[ "$(id -u)" = 0 ] || { echo "install.sh: run as root (it creates a user and sets owners)" >&2; exit 1; }
[ -x "$BINARY" ] || { echo "install.sh: $BINARY not found; build first: swift build -c release" >&2; exit 1; }

# The service user: a system account without a login, home in the spool. Users live in the real
# /etc/passwd even with DESTDIR, since the owners below must name it.
if ! id "$USER_NAME" >/dev/null 2>&1; then
    # A group of that name left from an earlier install becomes the user's primary group.
    if getent group "$USER_NAME" >/dev/null 2>&1; then group_option="-g $USER_NAME"; else group_option="--user-group"; fi
    # shellcheck disable=SC2086
    useradd --system $group_option --home-dir "$SPOOL" --no-create-home --shell /usr/sbin/nologin "$USER_NAME"
fi
# The kernel CAPI device belongs to dialout; the unit also grants it (SupplementaryGroups=dialout).
if getent group dialout >/dev/null 2>&1; then usermod -a -G dialout "$USER_NAME"; fi

install -d -m 0755 "$DESTDIR$PREFIX/bin" "$DESTDIR$PREFIX/share/faxgate/greetings"
install -m 0755 "$BINARY" "$DESTDIR$PREFIX/bin/faxgate"
install -m 0644 "$here"/Sources/VoiceAudio/Greetings/* "$DESTDIR$PREFIX/share/faxgate/greetings/"

# Config: root writes it, the service reads it through its group, nobody else sees it (it names
# mailboxes and may hold secrets). Re-running fixes owner and mode but keeps the admin's edits.
install -d -m 0750 -o root -g "$USER_NAME" "$DESTDIR/etc/faxgate"
chown root:"$USER_NAME" "$DESTDIR/etc/faxgate" && chmod 0750 "$DESTDIR/etc/faxgate"
if [ ! -e "$DESTDIR/etc/faxgate/faxgate.yaml" ]; then
    install -m 0640 -o root -g "$USER_NAME" "$here/contrib/faxgate.yaml" "$DESTDIR/etc/faxgate/faxgate.yaml"
fi
for f in "$DESTDIR"/etc/faxgate/*; do
    [ -f "$f" ] && chown root:"$USER_NAME" "$f" && chmod 0640 "$f"
done

# Spool (documents, database, outbox, logs): the service user's alone.
install -d -m 0700 -o "$USER_NAME" -g "$USER_NAME" "$DESTDIR$SPOOL"
chown "$USER_NAME":"$USER_NAME" "$DESTDIR$SPOOL" && chmod 0700 "$DESTDIR$SPOOL"

install -d -m 0755 "$DESTDIR/etc/systemd/system"
sed "s#/usr/local/bin/faxgate#$PREFIX/bin/faxgate#g" "$here/contrib/faxgate.service" >"$DESTDIR/etc/systemd/system/faxgate.service.tmp"
chmod 0644 "$DESTDIR/etc/systemd/system/faxgate.service.tmp"
mv "$DESTDIR/etc/systemd/system/faxgate.service.tmp" "$DESTDIR/etc/systemd/system/faxgate.service"

if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    if [ "${ENABLE:-0}" = 1 ]; then systemctl enable --now faxgate; fi
fi
echo "installed faxgate to ${DESTDIR:-/}: edit /etc/faxgate/faxgate.yaml, put passwords into root:$USER_NAME 0640 files there,"
echo "then: faxgate config check -c /etc/faxgate/faxgate.yaml && systemctl enable --now faxgate"
