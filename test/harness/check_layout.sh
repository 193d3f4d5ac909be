#!/usr/bin/env bash
# Check the source layout's two rules (doc/internals.md, "Layout"):
#   * a file in src/kernel/ includes only C standard headers, BLAS/LAPACK and
#     x86 intrinsics (<...>) and other src/kernel/ headers ("kernel/x.h"):
#     no PostgreSQL header, no project setting, so that the kernels build
#     and are tested alone (make check-kernels) and fuzzed;
#   * the project's headers (src/**/*.h) include each other without a cycle;
#   * no C function in src/ is longer than 150 lines, except those listed with
#     a reason in test/harness/long_functions.txt (long_functions.py);
#   * doc/internals.md's folder map lists every C file of src/ and no other
#     (check_folder_map.py).
# No compiler and no server needed.
set -euo pipefail
cd "$(dirname "$0")/../.."

# headers a kernel may include with <...>
system_headers=" assert.h complex.h ctype.h errno.h fenv.h float.h inttypes.h iso646.h limits.h
	locale.h math.h setjmp.h signal.h stdalign.h stdarg.h stdatomic.h stdbool.h stddef.h stdint.h
	stdio.h stdlib.h stdnoreturn.h string.h tgmath.h threads.h time.h uchar.h wchar.h wctype.h
	cblas.h lapacke.h lapack.h immintrin.h "
system_headers=" $(echo $system_headers) "
bad=0

# The include targets of a file: "q name" for "name", "s name" for <name>
includes() {
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*\([<"]\)\([^>"]*\)[>"].*/\1 \2/p' "$1" |
		sed 's/^"/q/; s/^</s/'
}

for f in src/kernel/*.c src/kernel/*.h; do
	while read -r kind name; do
		if [ "$kind" = s ]; then
			case "$system_headers" in
				*" $name "*) ;;
				*) echo "$f: includes <$name>: a kernel includes only C standard and BLAS headers" >&2; bad=1 ;;
			esac
		elif [[ "$name" != kernel/*.h || ! -f "src/$name" ]]; then
			echo "$f: includes \"$name\": a kernel includes only other src/kernel/ headers" >&2
			bad=1
		fi
	done < <(includes "$f")
done

# Header graph: an edge per "x.h" that resolves to a project header (src/x.h
# through -Isrc, or next to the including file); tsort reports any cycle.
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
while IFS= read -r h; do
	echo "$h $h" >>"$edges"
	while read -r kind name; do
		[ "$kind" = q ] || continue
		if [ -f "src/$name" ]; then
			echo "$h src/$name" >>"$edges"
		elif [ -f "$(dirname "$h")/$name" ]; then
			echo "$h $(dirname "$h")/$name" >>"$edges"
		fi
	done < <(includes "$h")
done < <(find src -name '*.h' | sort)
if ! tsort "$edges" >/dev/null 2>"$edges.err"; then
	echo "src/: the headers include each other in a cycle:" >&2
	cat "$edges.err" >&2
	bad=1
fi
rm -f "$edges.err"

# Function length: drivers split by phase, not one screenful after another.
if ! python3 test/harness/long_functions.py; then
	bad=1
fi

# The folder map of doc/internals.md, true to the files.
if ! python3 test/harness/check_folder_map.py >/dev/null; then
	bad=1
fi

if [ "$bad" -ne 0 ]; then
	exit 1
fi
echo "layout: ok (kernels include no PostgreSQL or project header; no include cycle among $(find src -name '*.h' | wc -l) headers; no function over 150 lines but $(grep -c '^src/' test/harness/long_functions.txt) listed; every C file in the folder map)"
