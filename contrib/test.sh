#!/bin/sh
# Runs the whole test suite on a fresh Debian 12 machine: installs what the tests need, then `swift test`.
# The tests start their own Dovecot, Postfix and CAPI simulator on loopback ports in temporary directories.
# One throw-away PostgreSQL 15 cluster serves the whole run (each test makes its own database in it): started
# here on a free loopback port, named to the tests by FAXGATE_TEST_PG_PORT/FAXGATE_TEST_PG_DIR
# (TestSupport.PostgresServer), stopped and removed on exit whatever the outcome.
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
# Two cores: build once, then run the tests one after another (each end-to-end test owns mail servers).
swift build --build-tests

pg_dir=/tmp/faxgate-pg-run-$$
stop_pg() { bash Tests/Scripts/pg-cluster.sh stop "$pg_dir" || true; }
trap stop_pg EXIT
# A signal ends the script through exit, so the EXIT trap stops the cluster.
trap 'exit 130' INT
trap 'exit 143' TERM
# A port the kernel hands out as free (bound and released at once; the cluster takes it right after).
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
bash Tests/Scripts/pg-cluster.sh start "$pg_dir" "$pg_port"
export FAXGATE_TEST_PG_PORT="$pg_port" FAXGATE_TEST_PG_DIR="$pg_dir"

# Not exec: the EXIT trap must still run after the tests; their status is the script's.
status=0
swift test --skip-build || status=$?
exit "$status"
