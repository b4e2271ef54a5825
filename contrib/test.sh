#!/bin/sh
# Runs the whole test suite on a fresh Debian 12 machine: installs what the tests need, then `swift test`.
# The tests start their own Dovecot, Postfix and CAPI simulator on loopback ports in temporary directories.
set -eu
cd "$(dirname "$0")/.."
sh contrib/install-deps.sh
# Two cores: build once, then run the tests one after another (each end-to-end test owns mail servers).
swift build --build-tests
exec swift test --skip-build
