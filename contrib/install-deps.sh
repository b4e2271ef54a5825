#!/bin/sh
# Installs every Debian package Faxgate needs to build, run its demo and run its tests.
# Non-interactive on purpose: CI has no terminal.
set -eu
export DEBIAN_FRONTEND=noninteractive
PKGS="pkg-config libcapi20-dev libcapi20-3 libtiff-dev libtiff-tools libcurl4-gnutls-dev libetpan-dev \
 libsqlite3-dev libarchive-dev ghostscript poppler-utils sfftobmp netpbm openssl ca-certificates \
 dovecot-core dovecot-imapd dovecot-lmtpd postfix python3 iproute2 util-linux procps \
 7zip libarchive-tools zip strace sqlite3 \
 sox libsox-fmt-mp3 espeak-ng libmp3lame-dev lame \
 systemd linux-libc-dev \
 libqrencode-dev chromium chromium-driver python3-selenium python3-prometheus-client python3-pyotp fonts-dejavu-core \
 libspandsp-dev \
 postgresql-15 postgresql-client-15"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  # Postfix asks a debconf question on install; answer it before apt does.
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq
  case " $missing " in
  *" postgresql-15 "*)
    # The tests run their own throw-away cluster (Tests/Scripts/pg-cluster.sh) on a free loopback port, so
    # Debian's default cluster 15/main is not needed: tell postgresql-common not to create it (a second server on
    # 5432 would only cost memory). Installed first, alone, so its conffile exists to be edited before
    # postgresql-15's postinst reads it. Without systemd the package starts nothing, which is fine too.
    apt-get install -y -qq --no-install-recommends postgresql-common
    sed -i 's/^#* *create_main_cluster *=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf
    grep -q '^create_main_cluster = false' /etc/postgresql-common/createcluster.conf \
      || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
    ;;
  esac
  apt-get install -y -qq --no-install-recommends $missing
fi
