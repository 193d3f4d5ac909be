"""The numpy floor of recommend_all: one thread, the same sgemm per block of
users, the seen items masked, and the k best per user (argpartition, then a
sort by score descending and id ascending).  Prints the seconds and writes
the top k of the first --dump users for the exactness check.  A second line
gives the seconds of the sgemm calls alone (the BLAS floor of the scoring).

Usage: python3 numpy_topk.py DIR K PER_USER DUMP_USERS
"""
import sys
import time

import numpy as np


def main():
    d, k, per_user, dump = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    u = np.load(f"{d}/serving_U.npy")
    y = np.load(f"{d}/serving_Y.npy")
    n_u, n_i = u.shape[0], y.shape[0]
    ids = np.arange(1, n_i + 1)
    j = np.arange(per_user, dtype=np.int64)
    yt = np.ascontiguousarray(y.T)
    block = max(1, min(1024, (8 << 20) // (4 * n_i)))
    out = []
    t0 = time.perf_counter()
    for s in range(0, n_u, block):
        ub = u[s:s + block]
        sc = ub @ yt                                    # sgemm
        uid = np.arange(s + 1, s + 1 + len(ub), dtype=np.int64)
        seen = (uid[:, None] * 7919 + j[None, :] * 104729) % n_i   # rows of the seen items
        np.put_along_axis(sc, seen, -np.inf, axis=1)
        part = np.argpartition(-sc, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(sc, part, axis=1)
        order = np.lexsort((ids[part], -ps), axis=1)
        top = np.take_along_axis(part, order, axis=1)
        if s < dump:
            out.append((uid, ids[top], np.take_along_axis(ps, order, axis=1)))
    secs = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(0, n_u, block):
        sc = u[s:s + block] @ yt
    gemm = time.perf_counter() - t0
    print(f"{secs:.3f} {gemm:.3f}")
    with open(f"{d}/serving_numpy_top.csv", "w") as f:
        for uid, top, sc in out:
            for r in range(len(uid)):
                if uid[r] > dump:
                    break
                f.write("".join(f"{uid[r]},{top[r, q]},{q + 1}\n" for q in range(k)))


if __name__ == "__main__":
    main()
