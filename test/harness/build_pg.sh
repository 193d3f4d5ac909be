#!/usr/bin/env bash
# Build PostgreSQL MAJOR (17 or 18) with assertions into /opt/recsys-pg/MAJOR,
# from Debian's source package, and pgTAP for it; skip what is already there.
# Usage: build_pg.sh MAJOR     (as root on Debian 12; needs network once)
#
# The sources come from a private apt configuration (a deb-src entry for the
# Debian suite that packages that major), so the machine's apt sources stay
# as they are.  The prefix is fixed: checks outside the project look there.
#
# Where the archive does not serve the upstream tarball (it serves
# postgresql-18's, but not postgresql-17's), the prefix gets Debian's own
# binary packages of that suite instead: a release build (no assertions)
# with the suite's C library and shared libraries beside it, its programs'
# loader and library path pointed there (patchelf), and bin/ a link to
# usr/lib/postgresql/MAJOR/bin.  JIT is removed from that copy (its LLVM is
# not fetched).  pgTAP then builds from source against either.
set -euo pipefail
major=${1:?usage: build_pg.sh MAJOR}
case "$major" in
	17) suite=trixie ;;
	18) suite=sid ;;
	*) echo "build_pg.sh: no source suite known for PostgreSQL $major" >&2; exit 2 ;;
esac
prefix=/opt/recsys-pg/$major
pg_config=$prefix/bin/pg_config
jobs=${RECSYS_BUILD_JOBS:-2}

have_server() { "$pg_config" --version 2>/dev/null | grep -q "^PostgreSQL $major\."; }
have_pgtap() { have_server && [ -f "$("$pg_config" --sharedir)/extension/pgtap.control" ]; }
have_server && have_pgtap && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "build_pg.sh: PostgreSQL $major is not in $prefix; run as root to build it" >&2
	exit 1
fi
mkdir -p /opt/recsys-pg
# One build per major at a time; with_cluster.sh takes the same lock to install.
exec 8>"/opt/recsys-pg/$major.lock"
flock 8
have_server && have_pgtap && exit 0

# Tools the build needs beyond deps.sh's compiler (configure asks for bison
# and flex even where the tarball has the generated parsers).
need=()
for p in bison flex zlib1g-dev pkg-config perl xz-utils bzip2 patchelf; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	echo "build_pg.sh: installing ${need[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null; }
fi

work=$(mktemp -d /tmp/recsys-pgbuild.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The machine's Debian mirror, or deb.debian.org.
mirror=$(grep -rhoE '^(URIs:|deb) *(\[[^]]*\] *)?https?://[^ ]+/debian( |$)' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
	| grep -oE 'https?://[^ ]+/debian' | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
mkdir -p "$work/lists/partial" "$work/archives/partial"
{
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main"
	# pgTAP: the newest release, which knows the newest PostgreSQL
	[ "$suite" = sid ] || echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror sid main"
} >"$work/sources.list"
apt=(apt-get -q -o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=- \
	-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=)
"${apt[@]}" update >"$work/apt.log" 2>&1 || { cat "$work/apt.log" >&2; exit 1; }

fetch() {  # fetch SRCPKG: download the source package into $work/SRCPKG, print its upstream tarball
	# Only the upstream tarball is used, so a package whose Debian parts
	# cannot be had still builds.  Prints nothing when there is no tarball.
	mkdir -p "$work/$1"
	(cd "$work/$1" && "${apt[@]}" source --download-only "$1" >>"$work/apt.log" 2>&1) || true
	ls "$work/$1"/*.orig.tar.* 2>/dev/null | head -1 || true
}

# Debian's binary packages of PostgreSQL $major and the shared libraries they
# need from $suite, unpacked into $prefix and made to run with that C library.
debian_binaries() {
	local pkgs=(postgresql-$major postgresql-client-$major postgresql-server-dev-$major libpq5
		libc6 libgcc-s1 libstdc++6 libicu76 libldap2 libsasl2-2 libgssapi-krb5-2 libkrb5-3
		libk5crypto3 libkrb5support0 libcom-err2 libkeyutils1 liblz4-1 libzstd1 libpam0g
		libselinux1 libpcre2-8-0 libssl3t64 libsystemd0 libcap2 libuuid1 libxml2 libxslt1.1
		liblzma5 zlib1g libreadline8t64 libtinfo6 libgcrypt20 libgpg-error0)
	mkdir -p "$work/debs"
	(cd "$work/debs" && "${apt[@]}" download "${pkgs[@]}" >>"$work/apt.log" 2>&1) \
		|| { grep -E '^(E|Err):' "$work/apt.log" >&2; echo "build_pg.sh: Debian's $suite packages of PostgreSQL $major cannot be downloaded either" >&2; exit 1; }
	rm -rf "$prefix"
	mkdir -p "$prefix"
	for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$prefix"; done
	local libs=$prefix/usr/lib/x86_64-linux-gnu ld=$prefix/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
	# every program (server, client, pg_regress): this loader, these libraries first
	find "$prefix/usr/lib/postgresql" -type f -perm -u+x | while read -r f; do
		if patchelf --print-interpreter "$f" >/dev/null 2>&1; then
			patchelf --set-interpreter "$ld" --force-rpath --set-rpath "$libs" "$f"
			if "$ld" --list "$f" | grep -q 'not found'; then
				"$ld" --list "$f" | grep 'not found' >&2
				echo "build_pg.sh: $f lacks a library; add its package to debian_binaries" >&2
				exit 1
			fi
		fi
	done
	# Its pg_config.h describes that suite's C library, but extensions compile
	# against this machine's: a function the newer one declares and this one
	# does not (strlcpy, strlcat: glibc 2.38) is declared by PostgreSQL's
	# port.h instead, and found in the newer C library at run time.
	local fn
	for fn in strlcpy strlcat; do
		if ! printf '#include <string.h>\nvoid *p = (void *) %s;\n' "$fn" | gcc -x c -fsyntax-only - 2>/dev/null; then
			sed -i "s/^#define HAVE_DECL_${fn^^} 1\$/#define HAVE_DECL_${fn^^} 0/" \
				"$prefix/usr/include/postgresql/$major/server/pg_config.h"
		fi
	done
	rm -rf "$prefix/usr/lib/postgresql/$major/lib/llvmjit"* "$prefix/usr/lib/postgresql/$major/lib/bitcode"
	sed -i 's/^with_llvm[[:space:]]*=.*/with_llvm = no/' "$prefix/usr/lib/postgresql/$major/lib/pgxs/src/Makefile.global"
	ln -s "usr/lib/postgresql/$major/bin" "$prefix/bin"
}

if ! have_server; then
	start=$(date +%s)
	tarball=$(fetch "postgresql-$major")
	if [ -n "$tarball" ]; then
		echo "build_pg.sh: building $(basename "$tarball") with assertions into $prefix (log: $prefix.build.log)"
		rm -rf "$prefix"
		mkdir -p "$work/pg"
		tar -xf "$tarball" -C "$work/pg" --strip-components=1
		(
			cd "$work/pg"
			./configure --prefix="$prefix" --enable-cassert --enable-debug \
				--without-icu --without-readline --without-llvm --with-zlib
			make -j"$jobs" -s
			make -s install
		) >"$prefix.build.log" 2>&1 || { tail -40 "$prefix.build.log" >&2; exit 1; }
	else
		grep -E '^(E|Err):' "$work/apt.log" | sed 's/^/build_pg.sh: /' >&2
		echo "build_pg.sh: no upstream tarball of postgresql-$major in $suite; installing Debian's $suite binary packages (release build, no assertions) into $prefix" >&2
		debian_binaries
	fi
	have_server || { echo "build_pg.sh: $pg_config does not work after the build" >&2; exit 1; }
	echo "build_pg.sh: PostgreSQL $major ($("$pg_config" --version)) ready in $(( $(date +%s) - start ))s"
fi

if ! have_pgtap; then
	start=$(date +%s)
	tarball=$(fetch pgtap)
	[ -n "$tarball" ] || { grep -E '^(E|Err):' "$work/apt.log" >&2; echo "build_pg.sh: no upstream tarball of pgtap" >&2; exit 1; }
	mkdir -p "$work/pgtap"
	tar -xf "$tarball" -C "$work/pgtap" --strip-components=1
	(
		cd "$work/pgtap"
		make PG_CONFIG="$pg_config"
		make PG_CONFIG="$pg_config" install
	) >"$prefix.pgtap.log" 2>&1 || { tail -40 "$prefix.pgtap.log" >&2; exit 1; }
	have_pgtap || { echo "build_pg.sh: pgTAP is not in $prefix after its build" >&2; exit 1; }
	echo "build_pg.sh: pgTAP $(basename "$tarball" | sed 's/^pgtap_\(.*\)\.orig.*/\1/') for $major built in $(( $(date +%s) - start ))s"
fi
