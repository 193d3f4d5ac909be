#!/usr/bin/env bash
# Build the libFuzzer target for the safetensors parser (src/safetensors.c
# compiled with -DFRONTEND against PostgreSQL's libpgcommon/libpgport, with
# AddressSanitizer, UndefinedBehaviorSanitizer and leak checks) and fuzz it for
# a bounded time from the seed corpus.
#   FUZZ_SECONDS  time budget (default 60)
# Findings (crash-*, leak-*, timeout-*) are written to test/fuzz/out/.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash test/harness/deps.sh fuzz

PG_CONFIG=${PG_CONFIG:-pg_config}
inc=$("$PG_CONFIG" --includedir-server)
lib=$("$PG_CONFIG" --pkglibdir)
[ -f "$lib/libpgcommon.a" ] || lib=$("$PG_CONFIG" --libdir)
out=test/fuzz/out
mkdir -p "$out/corpus"

clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Wno-ignored-attributes -DFRONTEND -Isrc -I"$inc" -I"$(dirname "$inc")/internal" \
	src/safetensors.c test/fuzz/fuzz_safetensors.c \
	"$lib/libpgcommon.a" "$lib/libpgport.a" -o "$out/fuzz_safetensors"

# new inputs go to the first corpus directory; the checked-in seeds stay as they are
"$out/fuzz_safetensors" -max_total_time="${FUZZ_SECONDS:-60}" -max_len=8192 -timeout=10 \
	-dict=test/fuzz/safetensors.dict -artifact_prefix="$out/" -print_final_stats=1 \
	"$out/corpus" test/fuzz/corpus
echo "fuzz: no crash, leak or undefined behaviour found in ${FUZZ_SECONDS:-60} s"
