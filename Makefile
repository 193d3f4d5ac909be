# recsys: PostgreSQL extension (PGXS build)
#
# `make demo` and `make test` do everything on a fresh Debian 12 machine:
# install missing packages, build, install, start a throwaway cluster, run.

EXTENSION    = recsys
EXTVERSION   = 0.1.0
MODULE_big   = recsys
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
DATA_built   = recsys--$(EXTVERSION).sql
# SQL is kept one file per concept in src/sql/ and concatenated in name order.
SQL_PARTS    = $(sort $(wildcard src/sql/*.sql))
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=recsys
EXTRA_CLEAN  = test/ref/out test/bench/out test/fuzz/out

# Serial OpenBLAS: the pthread flavour would start threads inside the backend.
BLAS_DIR    ?= /usr/lib/x86_64-linux-gnu/openblas-serial
BLAS_INC    ?= /usr/include/x86_64-linux-gnu/openblas-serial
PG_CPPFLAGS  = -I$(BLAS_INC) -Isrc
PG_CFLAGS    = -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
SHLIB_LINK   = -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lm

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
endif

recsys--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $^ > $@

.PHONY: deps demo test bench fuzz valgrind

# Install whatever Debian packages are missing (idempotent, quiet when all present).
deps:
	bash test/harness/deps.sh

# Build, install, start a throwaway cluster, run the demo job, stop the cluster.
demo: deps
	$(MAKE) all
	bash test/harness/with_cluster.sh demo

# Build, install, start a throwaway cluster, run pg_regress and the pgTAP suites.
test: deps
	$(MAKE) all
	bash test/harness/with_cluster.sh test

# Benchmarks (heavy; not part of CI).
bench:
	bash test/harness/deps.sh bench
	$(MAKE) all
	bash test/harness/with_cluster.sh bench

# Fuzz the safetensors parser and every aggregate state with libFuzzer, FUZZ_SECONDS per target (not part of CI).
fuzz: deps
	bash test/fuzz/run.sh

# pg_regress with every backend under valgrind memcheck (slow; not part of CI).
valgrind: deps
	$(MAKE) all
	RECSYS_VALGRIND=1 bash test/harness/with_cluster.sh test none
