#!/usr/bin/env bash
# Make a private copy of the PostgreSQL 15 install under $1 (once), for
# RECSYS_PG_ROOT: with_cluster.sh then installs recsys there and runs that
# copy's server, so parallel checkouts do not share an extension directory.
set -euo pipefail
root=${1:?usage: private_root.sh DIR}
[ -x "$root/usr/lib/postgresql/15/bin/postgres" ] && exit 0
mkdir -p "$root/usr/lib/postgresql" "$root/usr/share/postgresql"
cp -a /usr/lib/postgresql/15 "$root/usr/lib/postgresql/"
cp -a /usr/share/postgresql/15 "$root/usr/share/postgresql/"
chmod 755 "$root"
