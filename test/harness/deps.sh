#!/usr/bin/env bash
# Install the Debian 12 packages recsys needs, only those missing (safe to re-run).
# Usage: deps.sh [base|test|bench|fuzz]...   (base is always included)
# base: build and run (compiler, PostgreSQL 15 and headers, serial OpenBLAS);
# test: pgTAP and the numpy/PyTorch/scikit-learn references of the suites.
set -euo pipefail

pkgs=(make gcc postgresql-15 postgresql-server-dev-15 libopenblas0-serial libopenblas-serial-dev)
for set in "$@"; do
	case "$set" in
		base) ;;
		test) pkgs+=(postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
		             python3 python3-numpy python3-torch python3-sklearn) ;;
		bench) pkgs+=(postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
		              python3 python3-numpy python3-torch python3-sklearn gnuplot-nox python3-psycopg2 python3-scipy) ;;
		fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
		*) echo "deps.sh: unknown package set '$set'" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root or install them" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
