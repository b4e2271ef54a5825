#!/bin/bash
# Starts/stops a throw-away Dovecot + Postfix pair on 127.0.0.1 inside DIR, for tests and the demo.
#
#   contrib/testservers.sh start DIR [--base-port N]   # prints DIR/servers.env
#   contrib/testservers.sh stop DIR
#
# Needs root (both daemons drop privileges themselves) and the Debian packages dovecot-core,
# dovecot-imapd, dovecot-lmtpd, postfix, openssl, iproute2 (ss), util-linux (flock).
# Ports are consecutive from the base port, in this order:
#   IMAP(STARTTLS) IMAPS LMTP AUTH(Dovecot SASL for Postfix) SMTP-STARTTLS(submission) SMTPS SMTP-PLAIN(incoming)
#   VERDICT(internal second hop) SMTP-UNSTRIPPED(incoming through a misconfigured MTA)
#
# The incoming port plays a real MX with an authentication verdict (RFC 8601), in two hops as amavis-style
# Postfix setups do: hop 1 (mx.example.test) strips every Authentication-Results header naming our
# authserv-id (cleanup header_checks) and hands the mail to hop 2 (verdict.example.test), whose sender check
# PREPENDs "Authentication-Results: mx.example.test; spf=pass|fail smtp.mailfrom=<domain>" (pass only for the
# test domains in $DIR/postfix/verdict). One hop cannot do both: cleanup's header_checks see smtpd's
# PREPENDed header too, and would strip our own verdict. Where Postfix puts the PREPENDed header (above its
# own Received header, checked by SecurityTests) does not matter: it lands above hop 1's Received either way.
# The unstripped port is an entry (mx.example.test) with neither stripping nor verdict: an MTA that fails
# to strip (RFC 8601 section 5), for the gateway's detection of exactly that.
set -euo pipefail

NPORTS=9
USERS=(fax@example.test alice@example.test bob@example.test admin@example.test)
START_TIMEOUT=${TESTSERVERS_START_TIMEOUT:-30}

die() { echo "testservers.sh: $*" >&2; exit 1; }
usage() { echo "usage: $0 start DIR [--base-port N] | stop DIR" >&2; exit 2; }

port_in_use() { ss -Htln "sport = :$1" 2>/dev/null | grep -q .; }

ports_free() {
    local p
    for ((p = $1; p < $1 + NPORTS; p++)); do port_in_use "$p" && return 1; done
    return 0
}

# A zombie counts as gone: nothing may reap it in a container whose init does not wait for orphans.
pid_alive() {
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n "$state" && "$state" != Z ]]
}

dovecot_pid() { cat "$DIR/dovecot/run/master.pid" 2>/dev/null || true; }
# Postfix keeps the pid in a fixed-width text file under the queue directory.
postfix_pid() { tr -d ' \n' 2>/dev/null <"$DIR/postfix/queue/pid/master.pid" || true; }

# Waits until pid $1 is gone; after $2 tenths of a second sends SIGKILL (a stop must never leave daemons behind).
wait_gone() {
    local pid=$1 i
    for ((i = 0; i < $2; i++)); do pid_alive "$pid" || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
}

# Prints pid $1 and all its descendants (children normally exit with their master; this catches stragglers).
descendants() {
    local child
    echo "$1"
    for child in $(pgrep -P "$1" 2>/dev/null || true); do descendants "$child"; done
}

do_stop() {
    local pid all=""
    pid=$(postfix_pid)
    if pid_alive "$pid"; then
        all+=" $(descendants "$pid")"
        detached postfix -c "$DIR/postfix" stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 100
    fi
    pid=$(dovecot_pid)
    if pid_alive "$pid"; then
        all+=" $(descendants "$pid")"
        # SIGTERM is what `doveadm stop` sends; doveadm then waits ~2 s when the master lingers as a zombie.
        kill -TERM "$pid" 2>/dev/null || true
        wait_gone "$pid" 100
    fi
    for pid in $all; do wait_gone "$pid" 20; done
    rm -f "$DIR/servers.env"
}

# Runs a daemon-starting command with no inherited descriptor besides 0-2. A daemon that keeps a caller's
# pipe or socket (Foundation's Process watches the child through a socketpair) makes that caller wait
# forever for EOF, and one keeping our lock descriptor would block every later start.
detached() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            [[ $fd -gt 2 ]] && eval "exec $fd>&-" 2>/dev/null
        done
        exec "$@"
    ) </dev/null
}

make_certs() {
    local c="$DIR/certs"
    mkdir -p "$c"
    # EC P-256: ~10 ms per key instead of ~270 ms for RSA.
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$c/ca.key" -out "$c/ca.pem" -days 30 -subj "/CN=Faxgate Test CA $INSTANCE" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash" >/dev/null 2>&1 || die "openssl: cannot create the test CA"
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$c/server.key" -out "$c/server.csr" -subj "/CN=localhost" >/dev/null 2>&1 \
        || die "openssl: cannot create the server key"
    cat >"$c/server.ext" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOF
    openssl x509 -req -in "$c/server.csr" -CA "$c/ca.pem" -CAkey "$c/ca.key" -CAcreateserial \
        -out "$c/server.pem" -days 30 -extfile "$c/server.ext" >/dev/null 2>&1 \
        || die "openssl: cannot sign the server certificate"
    chmod 600 "$c"/*.key
    chmod 644 "$c/ca.pem" "$c/server.pem"
}

write_dovecot() {
    local d="$DIR/dovecot" u
    mkdir -p "$d/run" "$d/state"
    : >"$d/users"
    for u in "${USERS[@]}"; do echo "$u:{PLAIN}$PASSWORD" >>"$d/users"; done
    # The auth worker runs as the dovecot user.
    chgrp dovecot "$d/users"
    chmod 640 "$d/users"
    mkdir -p "$MAILDIR_ROOT"
    chown mail:mail "$MAILDIR_ROOT"
    local dh=""
    [[ -r /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
    cat >"$d/dovecot.conf" <<EOF
# Generated by contrib/testservers.sh for a throw-away test instance.
instance_name = $INSTANCE
base_dir = $d/run
state_dir = $d/state
log_path = $d/dovecot.log
info_log_path = $d/dovecot.log
listen = 127.0.0.1
protocols = imap lmtp
ssl = yes
ssl_cert = <$DIR/certs/server.pem
ssl_key = <$DIR/certs/server.key
$dh
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
first_valid_uid = 8
# The name in the Received header of the LMTP delivery (an internal hop the gateway may trust).
hostname = store.example.test
mail_location = maildir:$MAILDIR_ROOT/%u
postmaster_address = postmaster@example.test
passdb {
  driver = passwd-file
  args = scheme=PLAIN $d/users
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$MAILDIR_ROOT/%u
}
service imap-login {
  inet_listener imap {
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = $IMAPS_PORT
    ssl = yes
  }
}
service lmtp {
  inet_listener lmtp {
    port = $LMTP_PORT
  }
}
service auth {
  inet_listener auth {
    port = $AUTH_PORT
  }
}
service anvil {
  chroot =
}
EOF
}

write_postfix() {
    local p="$DIR/postfix"
    mkdir -p "$p/queue" "$p/data"
    chown postfix "$p/data"
    printf '%s\n' '/^.+@fax\.example\.test$/ fax@example.test' >"$p/fax_alias"
    # Hop 1: sender-written verdicts naming our authserv-id are removed, wherever they are and however written.
    printf '%s\n' '/^Authentication-Results:.*mx\.example\.test/ IGNORE' >"$p/strip_verdicts"
    # Hop 2: the verdict, by envelope-sender domain (a stand-in for a real SPF check).
    cat >"$p/verdict" <<'EOF'
/^<>$/ DUNNO
/@(example\.test|proven\.test)$/ PREPEND Authentication-Results: mx.example.test; spf=pass smtp.mailfrom=$1
/@([^@]+)$/ PREPEND Authentication-Results: mx.example.test; spf=fail smtp.mailfrom=$1
EOF
    cat >"$p/main.cf" <<EOF
# Generated by contrib/testservers.sh for a throw-away test instance.
compatibility_level = 3.6
queue_directory = $p/queue
data_directory = $p/data
mail_owner = postfix
setgid_group = postdrop
myhostname = localhost
mydomain = example.test
myorigin = \$mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
maillog_file = $p/maillog
maillog_file_prefixes = $DIR
syslog_name = postfix-$INSTANCE
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtputf8_enable = no
# Mail for the test domain goes to Dovecot over LMTP.
virtual_mailbox_domains = example.test
# Mail to <number>@fax.example.test (RFC 3192 style fax addressing) lands in the gateway's mailbox.
virtual_alias_domains = fax.example.test
virtual_alias_maps = regexp:$p/fax_alias
virtual_transport = lmtp:inet:127.0.0.1:$LMTP_PORT
# There is no route to the outside: relayed mail stays deferred in the queue instead of bouncing.
default_transport = retry:4.4.1 test instance has no outbound route
relay_transport = retry:4.4.1 test instance has no outbound route
smtpd_tls_cert_file = $DIR/certs/server.pem
smtpd_tls_key_file = $DIR/certs/server.key
smtpd_tls_security_level = may
smtpd_tls_auth_only = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:127.0.0.1:$AUTH_PORT
smtpd_sasl_auth_enable = no
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination
EOF
    # chroot n everywhere: the queue lives in a temp dir without the files a chroot jail needs.
    cat >"$p/master.cf" <<EOF
# Incoming mail (MX-style): no AUTH, trusted from 127.0.0.0/8. Hop 1 of the verdict path (see the top).
$SMTP_PLAIN_PORT inet n - n - - smtpd
  -o myhostname=mx.example.test
  -o cleanup_service_name=cleanup_strip
  -o content_filter=smtp:[127.0.0.1]:$VERDICT_PORT
# Hop 2: writes the verdict, delivers. A different name, or hop 1's smtp client would see a mail loop.
$VERDICT_PORT inet n - n - - smtpd
  -o syslog_name=postfix-$INSTANCE/verdict
  -o myhostname=verdict.example.test
  -o content_filter=
  -o { smtpd_client_restrictions = permit_mynetworks, reject }
  -o { smtpd_sender_restrictions = check_sender_access regexp:$p/verdict }
# An entry whose MTA neither strips nor writes a verdict (a misconfigured MTA).
$SMTP_UNSTRIPPED_PORT inet n - n - - smtpd
  -o syslog_name=postfix-$INSTANCE/unstripped
  -o myhostname=mx.example.test
# Submission with STARTTLS: TLS mandatory, AUTH mandatory.
$SMTP_STARTTLS_PORT inet n - n - - smtpd
  -o syslog_name=postfix-$INSTANCE/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
# Submission with implicit TLS (RFC 8314).
$SMTPS_PORT inet n - n - - smtpd
  -o syslog_name=postfix-$INSTANCE/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
cleanup_strip unix n    -       n       -       0       cleanup
  -o header_checks=regexp:$p/strip_verdicts
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

write_env() {
    cat >"$DIR/servers.env.tmp" <<EOF
MAIL_HOST=127.0.0.1
IMAP_PORT=$IMAP_PORT
IMAPS_PORT=$IMAPS_PORT
LMTP_PORT=$LMTP_PORT
AUTH_PORT=$AUTH_PORT
SMTP_STARTTLS_PORT=$SMTP_STARTTLS_PORT
SMTPS_PORT=$SMTPS_PORT
SMTP_PLAIN_PORT=$SMTP_PLAIN_PORT
VERDICT_PORT=$VERDICT_PORT
SMTP_UNSTRIPPED_PORT=$SMTP_UNSTRIPPED_PORT
TRUSTED_AUTHSERV_ID=mx.example.test
CA_FILE=$DIR/certs/ca.pem
MAIL_USER=${USERS[0]}
MAIL_USERS="${USERS[*]}"
MAIL_PASSWORD=$PASSWORD
MAILDIR_ROOT=$MAILDIR_ROOT
DOVECOT_CONF=$DIR/dovecot/dovecot.conf
DOVECOT_LOG=$DIR/dovecot/dovecot.log
POSTFIX_CONFIG_DIR=$DIR/postfix
POSTFIX_LOG=$DIR/postfix/maillog
EOF
    mv "$DIR/servers.env.tmp" "$DIR/servers.env"
}

fail_start() {
    echo "testservers.sh: $*" >&2
    for f in "$DIR/dovecot/dovecot.log" "$DIR/postfix/maillog" "$DIR/postfix/start.log" "$DIR/dovecot/start.log"; do
        [[ -s "$f" ]] && { echo "--- tail of $f" >&2; tail -n 25 "$f" >&2; }
    done
    do_stop
    exit 1
}

do_start() {
    # Idempotent: an instance that is already up is reported, not restarted.
    if [[ -f "$DIR/servers.env" ]] && pid_alive "$(dovecot_pid)" && pid_alive "$(postfix_pid)"; then
        cat "$DIR/servers.env"
        return 0
    fi
    do_stop   # half-started leftovers from an earlier run
    [[ $EUID -eq 0 ]] || die "must run as root (Dovecot and Postfix switch users themselves)"
    local cmd
    for cmd in dovecot doveadm postfix openssl ss flock; do
        command -v "$cmd" >/dev/null || die "$cmd not found; install dovecot-core dovecot-imapd dovecot-lmtpd postfix openssl"
    done
    # mail, postfix and dovenull must traverse DIR.
    chmod 755 "$DIR"

    INSTANCE="fxg$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
    PASSWORD="pw-$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')"
    MAILDIR_ROOT="$DIR/mail"

    # Serialise port selection and start-up across parallel instances, so two never pick the same ports.
    exec 9>/tmp/faxgate-testservers.lock
    flock -w 120 9 || die "timed out waiting for /tmp/faxgate-testservers.lock"

    local base=$BASE_PORT tries
    if [[ -n "$base" ]]; then
        ports_free "$base" || die "ports $base..$((base + NPORTS - 1)) are not all free"
    else
        for ((tries = 0; tries < 50; tries++)); do
            base=$((20000 + (RANDOM % 1000) * 10))
            ports_free "$base" && break
            base=""
        done
        [[ -n "$base" ]] || die "no free port range found in 20000-29999"
    fi
    IMAP_PORT=$base IMAPS_PORT=$((base + 1)) LMTP_PORT=$((base + 2)) AUTH_PORT=$((base + 3))
    SMTP_STARTTLS_PORT=$((base + 4)) SMTPS_PORT=$((base + 5)) SMTP_PLAIN_PORT=$((base + 6))
    VERDICT_PORT=$((base + 7)) SMTP_UNSTRIPPED_PORT=$((base + 8))

    make_certs
    write_dovecot
    write_postfix

    # Daemons must not hold our stdout: a caller reading it through a pipe would never see EOF.
    detached dovecot -c "$DIR/dovecot/dovecot.conf" >"$DIR/dovecot/start.log" 2>&1 \
        || fail_start "dovecot did not start"
    detached postfix -c "$DIR/postfix" check >"$DIR/postfix/start.log" 2>&1 \
        || fail_start "postfix check failed"
    detached postfix -c "$DIR/postfix" start >>"$DIR/postfix/start.log" 2>&1 \
        || fail_start "postfix did not start"

    local p i waiting
    for ((i = 0; i < START_TIMEOUT * 10; i++)); do
        waiting=""
        for ((p = base; p < base + NPORTS; p++)); do port_in_use "$p" || waiting+=" $p"; done
        [[ -z "$waiting" ]] && break
        sleep 0.1
    done
    [[ -z "$waiting" ]] || fail_start "ports not listening after ${START_TIMEOUT}s:$waiting"
    flock -u 9

    write_env
    cat "$DIR/servers.env"
}

[[ $# -ge 2 ]] || usage
ACTION=$1 DIR=$2
shift 2
BASE_PORT=""
while [[ $# -gt 0 ]]; do
    case $1 in
        --base-port) [[ $# -ge 2 && $2 =~ ^[0-9]+$ ]] || usage; BASE_PORT=$2; shift 2 ;;
        *) usage ;;
    esac
done
if [[ $ACTION == stop && ! -d "$DIR" ]]; then exit 0; fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd -P)

case $ACTION in
    start) do_start ;;
    stop) do_stop ;;
    *) usage ;;
esac
