"""Implicit-feedback benchmark data for recommendation quality (make bench).

Users x items with the shape of real implicit data:
  * long-tailed item popularity: Zipf weights 1 / rank^ZIPF over a random
    permutation of the items,
  * long-tailed user activity: n_u ~ lognormal, clipped to [MIN_ITEMS, MAX_ITEMS],
  * latent structure a model can learn: users and items have rank-RANK
    factors built from TOPICS clusters (each item belongs mostly to one topic,
    each user likes a few), and a user picks n_u distinct items with
    probability proportional to popularity_i * exp(SHARPNESS <u, v_i>)
    (Gumbel top-k: sampling without replacement).
Then a random per-user holdout: 20 % of each user's items (at least one) go
to test; of the rest, 10 % (at least one, for users with 3 or more items)
go to validation (for tuning); train_full = train + validation.

Usage: python3 gen.py OUTDIR [USERS ITEMS MEAN_ITEMS SEED]
Writes OUTDIR/{train,validation,test}.csv (user_id,item_id) and prints a summary.
"""
import os
import sys

import numpy as np

OUT = sys.argv[1]
USERS = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
ITEMS = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
MEAN = float(sys.argv[4]) if len(sys.argv) > 4 else 25.0
SEED = int(sys.argv[5]) if len(sys.argv) > 5 else 7
ZIPF, RANK, TOPICS, SHARPNESS = 0.9, 32, 40, 4.0
MIN_ITEMS, MAX_ITEMS = 3, 1000

rng = np.random.default_rng(SEED)
# items: a topic each, factor = topic centre + noise; Zipf popularity
topic_centre = rng.normal(size=(TOPICS, RANK))
item_topic = rng.integers(0, TOPICS, ITEMS)
V = topic_centre[item_topic] + 0.6 * rng.normal(size=(ITEMS, RANK))
V /= np.linalg.norm(V, axis=1, keepdims=True)
pop = 1.0 / np.arange(1, ITEMS + 1) ** ZIPF
pop = pop[rng.permutation(ITEMS)]
logpop = np.log(pop)
# users: a mixture of 1-3 liked topics
U = np.zeros((USERS, RANK))
for u in range(USERS):
    k = rng.integers(1, 4)
    t = rng.choice(TOPICS, size=k, replace=False)
    w = rng.dirichlet(np.ones(k))
    U[u] = w @ topic_centre[t]
U /= np.linalg.norm(U, axis=1, keepdims=True)
sigma = 1.0
mu = np.log(MEAN) - sigma ** 2 / 2
n_u = np.clip(np.round(rng.lognormal(mu, sigma, USERS)), MIN_ITEMS, MAX_ITEMS).astype(int)

train, val, test = [], [], []
block = 1000
for b0 in range(0, USERS, block):
    b1 = min(USERS, b0 + block)
    logits = logpop[None, :] + SHARPNESS * (U[b0:b1] @ V.T)
    keys = logits + rng.gumbel(size=logits.shape)
    for r, u in enumerate(range(b0, b1)):
        items = np.argpartition(-keys[r], n_u[u])[:n_u[u]]
        items = rng.permutation(items)
        n_test = max(1, int(round(0.2 * len(items))))
        te, rest = items[:n_test], items[n_test:]
        n_val = max(1, int(round(0.1 * len(rest)))) if len(rest) >= 3 else 0
        va, tr = rest[:n_val], rest[n_val:]
        test += [(u + 1, i + 1) for i in te]
        val += [(u + 1, i + 1) for i in va]
        train += [(u + 1, i + 1) for i in tr]

os.makedirs(OUT, exist_ok=True)
for name, rows in (("train", train), ("validation", val), ("test", test)):
    with open(os.path.join(OUT, name + ".csv"), "w") as f:
        f.write("\n".join(f"{u},{i}" for u, i in rows) + "\n")
total = len(train) + len(val) + len(test)
counts = np.bincount(np.array([i for _, i in train + val + test]), minlength=ITEMS + 1)[1:]
top = np.sort(counts)[::-1]
print(f"users {USERS}, items {ITEMS}, interactions {total} (train {len(train)}, validation {len(val)}, test {len(test)})")
print(f"items per user: median {int(np.median(n_u))}, mean {n_u.mean():.1f}, max {n_u.max()}; "
      f"top 1% of items hold {top[:ITEMS // 100].sum() / total:.1%} of interactions, "
      f"items never seen {int((counts == 0).sum())}")
