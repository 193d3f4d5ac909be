"""Generate a MovieLens-like implicit-feedback data set as CSV on stdout.

Items have power-law (Zipf) popularity; users have a long-tailed number of
interactions; which items a user picks depends on popularity and on a planted
rank-r affinity <u, v>, so collaborative filtering can beat popularity.  Each
interaction gets a timestamp (a random order per user) for a time-based split.

Usage: python3 gen.py [--users N] [--items M] [--interactions K] [--seed S]
Columns: user_id,item_id,ts
"""
import argparse
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=6040)
    ap.add_argument("--items", type=int, default=3706)
    ap.add_argument("--interactions", type=int, default=1000000)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--zipf", type=float, default=0.9)
    ap.add_argument("--affinity", type=float, default=2.5)
    ap.add_argument("--seed", type=int, default=20261129)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)

    n_u, n_i = a.users, a.items
    # long-tailed user activity, at least 10 interactions, scaled to the target total
    act = rng.lognormal(0.0, 1.0, n_u)
    act = 10 + act / act.sum() * max(a.interactions - 10 * n_u, 0)
    act = np.minimum(np.round(act).astype(np.int64), n_i // 2)
    # Zipf popularity over a random permutation of item ids
    pop = 1.0 / np.arange(1, n_i + 1) ** a.zipf
    pop = pop[rng.permutation(n_i)]
    logpop = np.log(pop / pop.sum())
    uf = rng.standard_normal((n_u, a.rank))
    vf = rng.standard_normal((n_i, a.rank))
    out = sys.stdout
    out.write("user_id,item_id,ts\n")
    ts = 0
    for u in range(n_u):
        # Gumbel top-k = sampling without replacement with p ~ pop * exp(affinity <u,v>/sqrt(r))
        logits = logpop + a.affinity * (vf @ uf[u]) / np.sqrt(a.rank)
        g = logits + rng.gumbel(size=n_i)
        k = int(act[u])
        items = np.argpartition(-g, k)[:k]
        order = rng.permutation(k)
        lines = "".join(f"{u + 1},{items[j] + 1},{ts + t}\n" for t, j in enumerate(order))
        out.write(lines)
        ts += k


if __name__ == "__main__":
    main()
