"""The BLAS floor of one implicit-ALS epoch (Cholesky solver), in numpy.

Reads the training pairs (CSV user_id,item_id, one row per distinct pair)
and times, with one BLAS thread, the arithmetic an exact ALS epoch cannot
avoid, in the most favourable call shapes:

  rank updates  sum_j (c_j - w) v_j v_j^T over every gathered interaction
                row of both sides (dsyrk over blocks of 65,536 rows: the
                same flops as one update per entity, in bigger calls)
  solves        a Cholesky factorisation (LAPACK dpotrf through scipy, the
                call recsys makes) of one k x k system per user and per
                item; the two triangular solves that follow (2 k^2 flops
                each, against k^3 / 3) are left out, so the floor is if
                anything too low (numpy's own batched cholesky costs about
                six times more per matrix here, so it is not used)

Gathering the rows (fancy indexing) is timed apart and not counted.

Usage: floor.py PAIRS.csv DIM   (prints one line per figure)
"""
import ctypes
import sys
import time

import numpy as np
from scipy.linalg import lapack

BLOCK_ROWS = 65536


def core_name():
    """The core type OpenBLAS detected (numpy and recsys load the same library)."""
    for name in ("libopenblas.so.0", "libblas.so.3"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode()
        except (OSError, AttributeError):
            continue
    return "unknown"


def side_floor(idx_sorted, other, w, clock):
    """Seconds of the rank updates over all rows of one side, and of gathering them."""
    t_gather = 0.0
    t_syrk = 0.0
    k = other.shape[1]
    acc = np.zeros((k, k))
    scale = np.sqrt(1.0 - w)
    for r0 in range(0, len(idx_sorted), BLOCK_ROWS):
        t0 = clock()
        rows = other[idx_sorted[r0:r0 + BLOCK_ROWS]].astype(np.float64) * scale
        t1 = clock()
        acc += np.dot(rows.T, rows)     # numpy calls dsyrk for X^T X
        t2 = clock()
        t_gather += t1 - t0
        t_syrk += t2 - t1
    return t_syrk, t_gather


def solve_floor(n, k, rng, clock):
    """Seconds of n Cholesky factorisations of k x k systems."""
    z = rng.standard_normal((k, 4 * k))
    a = np.asfortranarray(z @ z.T + k * np.eye(k))
    t0 = clock()
    for _ in range(n):
        lapack.dpotrf(a, lower=0, overwrite_a=0)
    return clock() - t0


def main():
    path, dim = sys.argv[1], int(sys.argv[2])
    w = 0.1
    pairs = np.loadtxt(path, delimiter=",", dtype=np.int64)
    users, u = np.unique(pairs[:, 0], return_inverse=True)
    items, i = np.unique(pairs[:, 1], return_inverse=True)
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((len(users), dim)) * 0.1).astype(np.float32)
    y = (rng.standard_normal((len(items), dim)) * 0.1).astype(np.float32)
    by_user = i[np.argsort(u, kind="stable")]   # the items of each user, users in order
    by_item = u[np.argsort(i, kind="stable")]
    print(f"openblas core: {core_name()}")
    print(f"pairs {len(pairs)}, users {len(users)}, items {len(items)}, dim {dim}")
    # wall time, then CPU time of this process (the machine may be shared)
    for label, clock in (("wall", time.perf_counter), ("cpu", time.process_time)):
        syrk_u, gather_u = side_floor(by_user, y, w, clock)
        syrk_i, gather_i = side_floor(by_item, x, w, clock)
        solves = solve_floor(len(users), dim, rng, clock) + solve_floor(len(items), dim, rng, clock)
        print(f"{label}: floor epoch {syrk_u + syrk_i + solves:.3f} s = rank updates {syrk_u + syrk_i:.3f} s"
              f" + Cholesky {solves:.3f} s   (gathering the rows, not counted: {gather_u + gather_i:.3f} s)")


if __name__ == "__main__":
    main()
