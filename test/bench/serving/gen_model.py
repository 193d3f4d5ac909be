"""Write a random embeddings model of MovieLens-20M shape for the serving bench.

Users and items get float32 N(0, 1/dim) vectors (seeded); the vectors go to
CSV files that psql loads into the store, and to .npy files that the numpy
reference (numpy_topk.py) reads.  The seen items of user u are
((u * 7919 + j * 104729) mod n_items) + 1 for j < per_user: bench.sql builds
the same lists in SQL, so no list has to be shipped.

Usage: python3 gen_model.py --users N --items M --dim D --out DIR
"""
import argparse
import os

import numpy as np


def write_csv(path, ids, x):
    """Write id,"{v1,...}" lines in blocks (repr-free %.9g keeps float32 exact)."""
    with open(path, "w") as f:
        for s in range(0, len(ids), 4096):
            blk = x[s:s + 4096]
            body = [",".join(f"{v:.9g}" for v in row) for row in blk.tolist()]
            f.write("".join(f'{i},"{{{b}}}"\n' for i, b in zip(ids[s:s + 4096], body)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=138493)
    ap.add_argument("--items", type=int, default=27000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--seed", type=int, default=20261202)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    u = (rng.standard_normal((a.users, a.dim)) / np.sqrt(a.dim)).astype(np.float32)
    y = (rng.standard_normal((a.items, a.dim)) / np.sqrt(a.dim)).astype(np.float32)
    np.save(os.path.join(a.out, "serving_U.npy"), u)
    np.save(os.path.join(a.out, "serving_Y.npy"), y)
    write_csv(os.path.join(a.out, "serving_users.csv"), np.arange(1, a.users + 1), u)
    write_csv(os.path.join(a.out, "serving_items.csv"), np.arange(1, a.items + 1), y)


if __name__ == "__main__":
    main()
