#!/usr/bin/python3
"""Reference values for test/metrics.sql (scikit-learn / plain Python, fixed seeds).

Writes <outdir>/metrics.sql:
- ref_auc: random scores with and without ties, labels; sklearn roc_auc_score.
- ref_logloss: probabilities (0 and 1 included, to exercise the clipping);
  sklearn log_loss with eps = 1e-15.
- ref_rank: recommended/relevant lists with duplicates and empty sets;
  Recall@k and NDCG@k from a direct Python implementation, and NDCG@k from
  sklearn's ndcg_score where the recommendation is a full ranking.
"""
import math
import os
import sys

import numpy as np
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

OUT = sys.argv[1] if len(sys.argv) > 1 else "test/ref/out"


def f8(x):
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        raise ValueError("non-finite reference value")
    return repr(x)


def bigarr(xs):
    return "ARRAY[" + ",".join(str(int(x)) for x in xs) + "]::bigint[]"


def recall_at_k(rec, rel, k):
    relset = set(rel)
    if not relset:
        return None
    seen, hits = set(), 0
    for r in rec[:k]:
        if r in seen:
            continue
        seen.add(r)
        hits += r in relset
    return hits / min(k, len(relset))


def ndcg_at_k(rec, rel, k):
    relset = set(rel)
    if not relset:
        return None
    seen, dcg = set(), 0.0
    for i, r in enumerate(rec[:k]):
        if r in seen:
            continue
        seen.add(r)
        if r in relset:
            dcg += 1.0 / math.log2(i + 2)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relset))))
    return dcg / idcg


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(4242)
    out = []
    w = out.append

    # ------------------------------------------------------------------
    # AUC
    # ------------------------------------------------------------------
    sets = []
    n = 3000
    y = rng.random(n) < 0.3
    sets.append(("ties, 1 decimal", np.round(rng.normal(size=n) + 0.8 * y, 1), y))
    n = 4000
    y = rng.random(n) < 0.5
    sets.append(("distinct", rng.normal(size=n) + 0.5 * y, y))
    n = 50
    y = rng.random(n) < 0.4
    sets.append(("5 levels", rng.integers(0, 5, size=n).astype(float), y))
    y = np.arange(100) % 3 == 0
    sets.append(("all tied", np.full(100, 0.25), y))
    y = np.arange(40) % 2 == 0
    sets.append(("shifted", y * 10.0 + np.arange(40), y))
    sets.append(("shifted, reversed", -(y * 10.0 + np.arange(40)), y))
    n = 400
    y = rng.random(n) < 0.5
    s = rng.choice([-1e300, -2.5, -0.0, 0.0, 1e-300, 3.0, 1e300], size=n)
    sets.append(("signed zeros and extremes", s, y))
    n = 20000
    y = rng.random(n) < 0.1
    sets.append(("3 decimals, 20000 rows", np.round(rng.random(n) * 0.7 + 0.3 * y, 3), y))
    n = 3
    sets.append(("one positive", np.array([0.1, 0.9, 0.5]), np.array([False, True, False])))

    w("CREATE TABLE ref_auc (set_id int, i int, score float8, label boolean);")
    w("CREATE TABLE ref_auc_expected (set_id int, name text, auc float8);")
    rows = []
    for sid, (name, s, y) in enumerate(sets):
        for i in range(len(s)):
            rows.append("(%d,%d,%s,%s)" % (sid, i, f8(s[i]), "true" if y[i] else "false"))
        w("INSERT INTO ref_auc_expected VALUES (%d, '%s', %s);"
          % (sid, name, f8(roc_auc_score(y.astype(int), s))))
    w("INSERT INTO ref_auc VALUES\n" + ",\n".join(rows) + ";")

    # ------------------------------------------------------------------
    # Log loss
    # ------------------------------------------------------------------
    sets = []
    n = 3000
    p = rng.random(n)
    sets.append(("calibrated", p, rng.random(n) < p))
    n = 200
    p = rng.choice([0.0, 1.0, 0.5, 1e-20, 1 - 1e-16, 0.999], size=n)
    sets.append(("clipped", p, rng.random(n) < 0.5))
    n = 500
    p = rng.random(n) ** 4
    sets.append(("skewed", p, rng.random(n) < 0.05))
    w("CREATE TABLE ref_logloss (set_id int, i int, p float8, label boolean);")
    w("CREATE TABLE ref_logloss_expected (set_id int, name text, log_loss float8);")
    rows = []
    for sid, (name, p, y) in enumerate(sets):
        for i in range(len(p)):
            rows.append("(%d,%d,%s,%s)" % (sid, i, f8(p[i]), "true" if y[i] else "false"))
        w("INSERT INTO ref_logloss_expected VALUES (%d, '%s', %s);"
          % (sid, name, f8(log_loss(y.astype(int), p, eps=1e-15, labels=[0, 1]))))
    w("INSERT INTO ref_logloss VALUES\n" + ",\n".join(rows) + ";")

    # ------------------------------------------------------------------
    # Recall@k and NDCG@k
    # ------------------------------------------------------------------
    w("CREATE TABLE ref_rank (id int, source text, recommended bigint[], relevant bigint[], k int,"
      " recall float8, ndcg float8);")
    rows = []
    for i in range(300):
        universe = int(rng.integers(5, 60))
        rec = list(rng.permutation(universe)[: int(rng.integers(0, min(universe, 30) + 1))])
        if i % 4 == 0 and rec:
            rec.insert(int(rng.integers(0, len(rec))), rec[int(rng.integers(0, len(rec)))])
        rel = list(rng.choice(universe, size=int(rng.integers(0, 12)), replace=True))
        k = int(rng.integers(1, 45))
        r, g = recall_at_k(rec, rel, k), ndcg_at_k(rec, rel, k)
        rows.append("(%d, 'python', %s, %s, %d, %s, %s)"
                    % (i, bigarr(rec), bigarr(rel), k, "NULL" if r is None else f8(r),
                       "NULL" if g is None else f8(g)))
    # sklearn: the recommendation is the full ranking of the universe by score
    for i in range(300, 360):
        universe = int(rng.integers(3, 40))
        scores = rng.permutation(universe).astype(float)
        rel = list(np.nonzero(rng.random(universe) < 0.2)[0])
        if not rel:
            rel = [int(rng.integers(0, universe))]
        truth = np.zeros(universe)
        truth[rel] = 1.0
        k = int(rng.integers(1, universe + 3))
        rec = list(np.argsort(-scores))
        g = ndcg_score(truth[None, :], scores[None, :], k=k)
        rows.append("(%d, 'sklearn', %s, %s, %d, %s, %s)"
                    % (i, bigarr(rec), bigarr(rel), k, f8(recall_at_k(rec, rel, k)), f8(g)))
    w("INSERT INTO ref_rank VALUES\n" + ",\n".join(rows) + ";")

    with open(os.path.join(OUT, "metrics.sql"), "w") as f:
        f.write("-- generated by test/ref/metrics.py; do not edit\n")
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
