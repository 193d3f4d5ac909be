#!/usr/bin/env bash
# Build the libFuzzer targets, with AddressSanitizer, UndefinedBehaviorSanitizer
# and leak checks, and fuzz each for a bounded time:
#   fuzz_safetensors  the safetensors parser (src/store/safetensors.c compiled with
#                     -DFRONTEND against PostgreSQL's libpgcommon/libpgport),
#                     from the seed corpus in test/fuzz/corpus
#   fuzz_aggstates    every aggregate state type: validators, transitions,
#                     combines and finals (src/kernel/aggkernel.c, no PostgreSQL)
#   FUZZ_SECONDS  time budget per target (default 60)
#   FUZZ_TARGETS  targets to run (default: all)
# Findings (crash-*, leak-*, timeout-*) are written to test/fuzz/out/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/harness/deps.sh fuzz

PG_CONFIG=${PG_CONFIG:-pg_config}
inc=$("$PG_CONFIG" --includedir-server)
lib=$("$PG_CONFIG" --pkglibdir)
[ -f "$lib/libpgcommon.a" ] || lib=$("$PG_CONFIG" --libdir)
out=test/fuzz/out
mkdir -p "$out/corpus" "$out/corpus_aggstates"
targets=${FUZZ_TARGETS:-fuzz_safetensors fuzz_aggstates}
blas=${BLAS_DIR:-/usr/lib/x86_64-linux-gnu/openblas-serial}
san=(-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

clang "${san[@]}" \
	-Wno-ignored-attributes -DFRONTEND -Isrc -I"$inc" -I"$(dirname "$inc")/internal" \
	src/store/safetensors.c test/fuzz/fuzz_safetensors.c \
	"$lib/libpgcommon.a" "$lib/libpgport.a" -o "$out/fuzz_safetensors"

clang "${san[@]}" -std=gnu11 -Isrc -I"${BLAS_INC:-/usr/include/x86_64-linux-gnu/openblas-serial}" \
	src/kernel/aggkernel.c src/kernel/rankbuffer.c src/kernel/linalg.c src/kernel/parallel.c test/fuzz/fuzz_aggstates.c \
	-L"$blas" -Wl,-rpath,"$blas" -lopenblas -lm -o "$out/fuzz_aggstates"

# OpenBLAS must not start threads under the fuzzer
export OPENBLAS_NUM_THREADS=1
for t in $targets; do
	case $t in
		# new inputs go to the first corpus directory; the checked-in seeds stay as they are
		fuzz_safetensors)
			"$out/fuzz_safetensors" -max_total_time="${FUZZ_SECONDS:-60}" -max_len=8192 -timeout=10 \
				-dict=test/fuzz/safetensors.dict -artifact_prefix="$out/" -print_final_stats=1 \
				"$out/corpus" test/fuzz/corpus ;;
		fuzz_aggstates)
			"$out/fuzz_aggstates" -max_total_time="${FUZZ_SECONDS:-60}" -max_len=16384 -timeout=10 \
				-artifact_prefix="$out/" -print_final_stats=1 "$out/corpus_aggstates" ;;
		*) echo "run.sh: unknown fuzz target '$t'" >&2; exit 2 ;;
	esac
	echo "fuzz: $t found no crash, leak or undefined behaviour in ${FUZZ_SECONDS:-60} s"
done
