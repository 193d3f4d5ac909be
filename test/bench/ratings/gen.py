#!/usr/bin/python3
"""Explicit ratings with known structure, for the ratings benchmark.

Each user rates items drawn by popularity; a rating (1 to 5) is the user's
affinity for the item (a rank-8 taste) plus noise, quantized.  People rate
more of what they like, so low ratings are rarer (as on MovieLens).  Writes
ratings.csv (user_id, item_id, rating) and the split: the last 20 % of each
user's ratings are held out, and an item counts as relevant when its held-out
rating is 4 or more.  Usage: gen.py OUTDIR [users items per_user seed]
"""
import os
import sys

import numpy as np

out = sys.argv[1]
users = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
items = int(sys.argv[3]) if len(sys.argv) > 3 else 1500
per_user = int(sys.argv[4]) if len(sys.argv) > 4 else 60
rng = np.random.default_rng(int(sys.argv[5]) if len(sys.argv) > 5 else 7)

k = 8
u = rng.normal(size=(users, k))
v = rng.normal(size=(items, k))
pop = 1.0 / np.arange(1, items + 1) ** 0.8
pop /= pop.sum()
rows = []
for a in range(users):
    # over-sample candidates, keep those the user chose to rate: liking raises the chance
    cand = rng.choice(items, size=per_user * 3, replace=False, p=pop)
    aff = v[cand] @ u[a] / np.sqrt(k)
    keep_p = 1.0 / (1.0 + np.exp(-1.5 * aff))
    chosen = cand[rng.random(cand.size) < keep_p][:per_user]
    aff = v[chosen] @ u[a] / np.sqrt(k)
    r = np.clip(np.rint(3.2 + 1.3 * aff + rng.normal(scale=0.7, size=chosen.size)), 1, 5).astype(int)
    for t, (i, x) in enumerate(zip(chosen, r)):
        rows.append((a + 1, int(i) + 1, int(x), t))
data = np.array(rows)
with open(os.path.join(out, "ratings.csv"), "w") as f:
    for a, i, x, t in rows:
        f.write(f"{a},{i},{x},{t}\n")
print(f"{len(rows)} ratings, {users} users, {items} items; rating counts 1..5:",
      np.bincount(data[:, 2], minlength=6)[1:].tolist())
