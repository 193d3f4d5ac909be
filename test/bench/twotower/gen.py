#!/usr/bin/python3
"""Synthetic data with a known structure for the two-tower benchmark (run.sh).

Users and items have features that determine their latent vectors (plus noise):
  user:  segment (categorical, 24 values, skewed), region (categorical, 8), age and
         activity (numeric); p_u = S[segment] + 0.5 R[region] + age_z a + noise
  item:  genre (categorical, 30 values, skewed), tags (multi-categorical, 1-4 of 60),
         year and price (numeric); q_i = G[genre] + mean T[tags] + year_z b + noise
A user draws n_u items (log-normal counts, ~INTERACTIONS in all) without replacement from
softmax(tau <p_u, q_i> + pop_i), pop_i a long-tailed item popularity (normal, partly
by genre).  A random 10% of the items is held out of training entirely (cold items: all
their interactions go to cold_test.csv); of the rest each user's 20% goes to warm_test.csv.

Usage: gen.py OUTDIR [--users N] [--items N] [--interactions N] [--seed S]
Writes users.csv, items.csv, train.csv, warm_test.csv, cold_test.csv, cold_items.csv.
"""
import argparse
import os

import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--users", type=int, default=5000)
ap.add_argument("--items", type=int, default=2000)
ap.add_argument("--interactions", type=int, default=100000)
ap.add_argument("--seed", type=int, default=7)
a = ap.parse_args()
rng = np.random.RandomState(a.seed)
U, I, K = a.users, a.items, 16
noise = 0.3
tau = 1.5

# users
nseg, nreg = 24, 8
seg_p = 1.0 / np.arange(1, nseg + 1) ** 0.8
seg = rng.choice(nseg, U, p=seg_p / seg_p.sum())
region = rng.randint(nreg, size=U)
age = rng.randint(18, 70, size=U).astype(np.float64)
activity = np.exp(rng.normal(0, 0.8, U))
S = rng.normal(0, 1, (nseg, K)) / np.sqrt(K)
R = rng.normal(0, 1, (nreg, K)) / np.sqrt(K)
wa = rng.normal(0, 1, K) / np.sqrt(K)
age_z = (age - age.mean()) / age.std()
P = S[seg] + 0.5 * R[region] + 0.5 * np.outer(age_z, wa) + noise * rng.normal(0, 1, (U, K)) / np.sqrt(K)

# items
ngen, ntag = 30, 60
gen_p = 1.0 / np.arange(1, ngen + 1) ** 0.7
genre = rng.choice(ngen, I, p=gen_p / gen_p.sum())
tags = [sorted(set(rng.choice(ntag, rng.randint(1, 5)).tolist())) for _ in range(I)]
year = rng.randint(1980, 2024, size=I).astype(np.float64)
price = np.round(np.exp(rng.normal(2, 0.7, I)), 2)
G = rng.normal(0, 1, (ngen, K)) / np.sqrt(K)
T = rng.normal(0, 1, (ntag, K)) / np.sqrt(K)
wb = rng.normal(0, 1, K) / np.sqrt(K)
year_z = (year - year.mean()) / year.std()
Q = G[genre] + np.array([T[t].mean(0) for t in tags]) + 0.5 * np.outer(year_z, wb) + \
    noise * rng.normal(0, 1, (I, K)) / np.sqrt(K)
Q *= 2.0
genre_pop = rng.normal(0, 0.7, ngen)
pop = genre_pop[genre] + rng.normal(0, 1.0, I)

# interactions: n_u items per user, without replacement (Gumbel top-k)
n_u = np.exp(rng.normal(0, 0.9, U)) * activity
n_u = np.clip(np.round(n_u / n_u.sum() * a.interactions), 3, I // 4).astype(int)
logits = tau * (P @ Q.T) + pop
pairs = []
for u in range(U):
    g = logits[u] - np.log(-np.log(rng.uniform(size=I)))
    for i in np.argpartition(-g, n_u[u])[:n_u[u]]:
        pairs.append((u, int(i)))
pairs = np.array(pairs)

cold = np.zeros(I, bool)
cold[rng.choice(I, I // 10, replace=False)] = True
is_cold = cold[pairs[:, 1]]
warm_pairs = pairs[~is_cold]
test_mask = rng.uniform(size=len(warm_pairs)) < 0.2

os.makedirs(a.out, exist_ok=True)


def write(name, header, rows):
    with open(os.path.join(a.out, name), "w") as f:
        f.write(header + "\n")
        for r in rows:
            f.write(",".join(str(x) for x in r) + "\n")


write("users.csv", "user_id,segment,region,age,activity",
      [(u + 1, "s%d" % seg[u], region[u], int(age[u]), "%.4f" % activity[u]) for u in range(U)])
write("items.csv", "item_id,genre,tags,year,price",
      [(i + 1, "g%d" % genre[i], '"{%s}"' % ",".join("t%d" % t for t in tags[i]), int(year[i]), price[i])
       for i in range(I)])
write("train.csv", "user_id,item_id", [(u + 1, i + 1) for u, i in warm_pairs[~test_mask]])
write("warm_test.csv", "user_id,item_id", [(u + 1, i + 1) for u, i in warm_pairs[test_mask]])
write("cold_test.csv", "user_id,item_id", [(u + 1, i + 1) for u, i in pairs[is_cold]])
write("cold_items.csv", "item_id", [(i + 1,) for i in np.flatnonzero(cold)])
print("gen: %d users, %d items (%d cold), %d interactions: %d train, %d warm test, %d cold test"
      % (U, I, cold.sum(), len(pairs), (~test_mask).sum(), test_mask.sum(), is_cold.sum()))
