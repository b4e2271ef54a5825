#!/bin/bash
# A throw-away PostgreSQL 15 cluster for the tests: Debian's binaries, data in DIR, listening on 127.0.0.1:PORT
# and a socket in DIR, TLS on with a CA and server certificate made here (DIR/ca.pem for verify-full).
#   pg-cluster.sh start DIR PORT     initdb + start (waits until it accepts connections)
#   pg-cluster.sh stop DIR           immediate stop, DIR removed
# As root everything runs as the postgres user (postgres refuses root).
set -eu
BIN=/usr/lib/postgresql/15/bin
pg_start() {
    if [ "$(id -u)" = 0 ]; then
        detached runuser -u postgres -- "$BIN/pg_ctl" -D "$dir/data" -w -l "$dir/server.log" start >/dev/null 2>&1
    else
        detached "$BIN/pg_ctl" -D "$dir/data" -w -l "$dir/server.log" start >/dev/null 2>&1
    fi
}
cmd=$1 dir=$2
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# The server must not inherit any descriptor of our caller besides 0-2: Foundation's Process watches its child
# through a socketpair, and a daemon keeping it makes the caller wait forever (see contrib/testservers.sh).
detached() {
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd=${fd##*/}
            [[ $fd -gt 2 ]] && eval "exec $fd>&-" 2>/dev/null
        done
        exec "$@"
    ) </dev/null
}

case "$cmd" in
start)
    port=$3
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    as_pg "$BIN/initdb" -D "$dir/data" -A trust -U postgres --no-sync -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log"; exit 1; }
    # TLS: a CA and a server certificate for localhost / 127.0.0.1.
    (
        cd "$dir"
        openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 -subj "/CN=faxgate test CA" \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout ca.key -out ca.pem 2>/dev/null
        openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=localhost" -keyout server.key -out server.csr 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > ext.cnf
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf -out server.crt 2>/dev/null
        cp server.crt server.key data/
        chmod 600 data/server.key
        [ "$(id -u)" = 0 ] && chown postgres:postgres data/server.crt data/server.key ca.pem
        chmod 644 ca.pem
    )
    cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 64MB
log_min_messages = warning
CONF
    # The password role logs in with SCRAM over TLS only; everyone else is trusted on loopback (tests).
    cat > "$dir/data/pg_hba.conf" <<HBA
local   all  all                       trust
hostssl all  faxgate_pw  127.0.0.1/32  scram-sha-256
host    all  faxgate_pw  127.0.0.1/32  reject
host    all  all         127.0.0.1/32  trust
HBA
    pg_start || { cat "$dir/server.log"; exit 1; }
    ;;
restart)
    # Start again after a stop (the cluster and its files stay).
    pg_start || { cat "$dir/server.log"; exit 1; }
    ;;
stop)
    as_pg "$BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
