#!/usr/bin/env bash
# Benchmark recsys.gramian: serial, 2 workers, vs reading the rows and vs numpy (BLAS).
# Knobs: GRAMIAN_ROWS (default 1000000), GRAMIAN_DIMS (default "64 16").
set -euo pipefail
exec /usr/bin/python3 "$(dirname "$0")/bench.py"
