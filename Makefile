# recsys: PostgreSQL extension (PGXS build)
#
# `make demo` and `make test` do everything on a fresh Debian 12 machine:
# install missing packages, build, install, start a throwaway cluster, run.

EXTENSION    = recsys
EXTVERSION   = 0.3.0
MODULE_big   = recsys
OBJS         = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c src/*/*.c)))
DATA_built   = recsys--$(EXTVERSION).sql recsys--0.2.0--$(EXTVERSION).sql
# Released scripts stay exactly as they were shipped, so that a database
# created with an earlier version can be updated with ALTER EXTENSION through
# the chain 0.1.0 -> 0.2.0 -> 0.3.0.
DATA         = src/sql/released/recsys--0.1.0.sql src/sql/released/recsys--0.2.0.sql \
               src/sql/released/recsys--0.1.0--0.2.0.sql
# The install script is src/sql/*.sql concatenated in name order.  Upgrade
# scripts are written by hand and append-only (src/sql/upgrade/FROM--TO.sql):
# CREATE OR REPLACE and ALTER, never a drop-and-recreate, so that users'
# grants on recsys objects and their views over recsys functions survive.
# sql/upgrade.sql checks that an upgraded database has exactly the objects of
# a fresh install.
SQL_PARTS    = $(sort $(wildcard src/sql/*.sql))
REGRESS      = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=. --load-extension=recsys
EXTRA_CLEAN  = test/ref/out test/bench/out test/fuzz/out test/kernels/out .pg-build $(OBJS:.o=.d)

# Serial OpenBLAS: the pthread flavour would start threads inside the backend.
BLAS_DIR    ?= /usr/lib/x86_64-linux-gnu/openblas-serial
BLAS_INC    ?= /usr/include/x86_64-linux-gnu/openblas-serial
PG_CPPFLAGS  = -I$(BLAS_INC) -Isrc -DRECSYS_LIBRARY_VERSION='"$(EXTVERSION)"'
PG_CFLAGS    = -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
# Warnings are errors in the project's own test, demo and CI targets (which
# pass RECSYS_WERROR=1), never in a user's plain `make`.
ifeq ($(RECSYS_WERROR),1)
PG_CFLAGS   += -Werror
endif
SHLIB_LINK   = -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lm -pthread

PG_CONFIG   ?= pg_config
PGXS        := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
# Targets that install what they need first, so they run without pg_config.
SELF_INSTALLING = deps demo test test-matrix test-citus bench bench-citus fuzz valgrind check-kernels
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
# Objects compiled against one PostgreSQL are rebuilt for another: .pg-build
# holds the version and headers of the pg_config in use, rewritten (and so
# newer than every object) when they change.
PG_BUILD_ID := $(shell $(PG_CONFIG) --version --includedir-server)
ifneq ($(PG_BUILD_ID),$(shell cat .pg-build 2>/dev/null))
$(shell echo '$(PG_BUILD_ID)' > .pg-build)
endif
$(OBJS) $(OBJS:.o=.bc): .pg-build
# Objects depend on the project headers they include (gcc writes src/**/*.d
# next to each object): a changed header rebuilds its users, so a struct
# that grew can never meet an object compiled against the old one.
override CFLAGS += -MMD -MP
-include $(OBJS:.o=.d)
else ifneq ($(filter-out $(SELF_INSTALLING),$(or $(MAKECMDGOALS),all)),)
$(error pg_config not found (PG_CONFIG=$(PG_CONFIG)): install postgresql-server-dev-15, or pass PG_CONFIG=/path/to/pg_config; `make test` and `make demo` install it on Debian 12)
endif

recsys--$(EXTVERSION).sql: $(SQL_PARTS)
	cat $^ > $@

recsys--0.2.0--$(EXTVERSION).sql: src/sql/upgrade/0.2.0--$(EXTVERSION).sql
	cat $^ > $@

.PHONY: deps demo test test-matrix test-citus bench bench-citus fuzz valgrind prove_installcheck check-kernels check-twotower

# Install whatever Debian packages are missing (idempotent, quiet when all present).
deps:
	bash test/harness/deps.sh

# Build, install, start a throwaway cluster, run the demo job, stop the cluster.
# The demo needs only PostgreSQL and OpenBLAS (its MMoE model is committed).
demo: deps
	$(MAKE) all RECSYS_WERROR=1
	bash test/harness/with_cluster.sh demo

# Check the layout and the links, test the kernels alone, then build, install,
# start a throwaway cluster, run pg_regress and the pgTAP suites: on Debian's
# PostgreSQL 15, or on the installation that PG_CONFIG names
# (PG_CONFIG=/opt/recsys-pg/MAJOR/bin/pg_config builds MAJOR there first when
# it is missing; see test/harness/build_pg.sh).
test:
	bash test/harness/check_links.sh
	bash test/harness/check_layout.sh
	bash test/harness/deps.sh test
	python3 test/harness/check_reference.py
	$(MAKE) check-kernels
	$(MAKE) check-twotower
	case '$(PG_CONFIG)' in /opt/recsys-pg/*/bin/pg_config) \
		bash test/harness/build_pg.sh "$$(basename "$$(dirname "$$(dirname '$(PG_CONFIG)')")")" ;; esac
	$(MAKE) all RECSYS_WERROR=1 PG_CONFIG='$(PG_CONFIG)'
	PG_CONFIG='$(PG_CONFIG)' bash test/harness/with_cluster.sh test
	PG_CONFIG='$(PG_CONFIG)' RECSYS_PRELOAD=1 bash test/harness/with_cluster.sh run bash test/harness/progress.sh

# `make test` on each supported PostgreSQL in turn: 15 (Debian's), 17 and 18
# (in /opt/recsys-pg, built first when missing).  RECSYS_PG_MAJORS="15 18"
# runs a subset.
test-matrix:
	bash test/harness/test_matrix.sh

# The two-tower kernel alone (no server) against a PyTorch float64 reference:
# one and two steps of every method, the Adam update, exact == brute force.
TT_KERNEL = src/kernel/twotower.c src/kernel/linalg.c src/kernel/parallel.c src/kernel/rng.c
test/kernels/out/twotower_parity: test/kernels/twotower_parity.c $(TT_KERNEL) src/kernel/twotower.h
	@mkdir -p test/kernels/out
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
		-Wno-sign-compare -Werror -I$(BLAS_INC) -Isrc \
		-o $@ test/kernels/twotower_parity.c $(TT_KERNEL) \
		-L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lm -pthread

check-twotower: test/kernels/out/twotower_parity
	OPENBLAS_NUM_THREADS=1 test/kernels/out/twotower_parity > test/kernels/out/twotower_parity.json
	/usr/bin/python3 test/kernels/twotower_parity.py test/kernels/out/twotower_parity.json

# The same on a throwaway Citus cluster (coordinator + 2 workers on 127.0.0.1):
# the pgTAP suites in test/citus/.  Builds Citus first when it is not installed
# (../shared/citus/install.sh, or CITUS_INSTALL=path).
test-citus:
	bash test/harness/deps.sh test
	$(MAKE) all RECSYS_WERROR=1
	bash test/harness/with_citus.sh test

# The kernels of src/kernel/ built alone with OpenBLAS (no PostgreSQL, no
# server) and checked against closed forms, numpy values and naive
# recomputations (test/kernels/check_kernels.c).
KERNEL_SRCS = $(sort $(wildcard src/kernel/*.c))
# src/blas_lock.c (no PostgreSQL either) makes OpenBLAS safe to call from
# several threads, in the tests as in the extension.
test/kernels/out/check_kernels: test/kernels/check_kernels.c $(KERNEL_SRCS) $(wildcard src/kernel/*.h) src/blas_lock.c src/blas_lock.h
	@mkdir -p test/kernels/out
	$(CC) -std=gnu11 -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers \
		-Wno-sign-compare -Werror -I$(BLAS_INC) -Isrc -o $@ test/kernels/check_kernels.c $(KERNEL_SRCS) \
		src/blas_lock.c -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas -lm -pthread

check-kernels: test/kernels/out/check_kernels
	OPENBLAS_NUM_THREADS=1 test/kernels/out/check_kernels

# Benchmarks (heavy; not part of CI).
bench:
	bash test/harness/deps.sh bench
	$(MAKE) all RECSYS_WERROR=1
	bash test/harness/with_cluster.sh bench

# Distributed training against one node on a throwaway Citus cluster (heavy; not part of CI).
bench-citus:
	bash test/harness/deps.sh bench
	$(MAKE) all RECSYS_WERROR=1
	bash test/harness/with_citus.sh run bash test/citus/bench/training.sh

# Fuzz the safetensors parser and every aggregate state with libFuzzer, FUZZ_SECONDS per target (not part of CI).
fuzz: deps
	bash test/fuzz/run.sh

# pg_regress with every backend under valgrind memcheck (slow; not part of CI).
valgrind:
	bash test/harness/deps.sh test
	$(MAKE) all RECSYS_WERROR=1
	RECSYS_VALGRIND=1 bash test/harness/with_cluster.sh test none

# The pgTAP suites against a running server (PGHOST, PGPORT, PGUSER as for
# psql; the role needs CREATEDB and the right to create both extensions), as
# an ordinary OS user: no root, no apt.  `make installcheck` is the pg_regress
# tier.  Needs pg_prove, pgTAP and python3 with numpy, torch and sklearn.
prove_installcheck:
	RECSYS_TOP=$(CURDIR) bash test/harness/run_pgtap.sh
