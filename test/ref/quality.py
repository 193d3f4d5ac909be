"""Reference values for test/quality.sql, computed by numpy.

1. EASE (Steck 2019) in float64: X the users x items matrix of summed
   confidences, P = (X^T X + l2 I)^-1, B = I - P diag(1/diag P), the loss
   |X - X B|_F^2 + l2 |B|_F^2 computed directly from X and B.
2. The top K of every user by x_u B (seen items left out, ties to the
   smaller id; the data are drawn until every list's K-th and (K+1)-th
   scores differ by more than 1e-4, so float32 scoring cannot reorder them),
   and of new users given as (items, weights) lists.
3. Recall, NDCG, Precision and MAP at K and coverage of those lists against
   a held-out test set with an unknown user, by the textbook formulas.

Usage: python3 quality.py OUTDIR   (writes OUTDIR/quality.sql)
"""
import os
import sys

import numpy as np

N_USERS, N_ITEMS, K, L2 = 40, 25, 5, 3.0


def top_k(scores, ids, k, excluded):
    """The k best (score desc, id asc) of ids not excluded, with the next score."""
    order = sorted((j for j in range(len(ids)) if ids[j] not in excluded),
                   key=lambda j: (-scores[j], ids[j]))
    nxt = scores[order[k]] if len(order) > k else -np.inf
    return [(ids[j], scores[j]) for j in order[:k]], nxt


def ease(x, l2):
    g = x.T @ x + l2 * np.eye(x.shape[1])
    p = np.linalg.inv(g)
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


def draw(seed):
    rng = np.random.default_rng(seed)
    item_ids = np.sort(rng.choice(np.arange(100, 400), N_ITEMS, replace=False))
    rows = []                      # (user, item, weight): repeats add up
    for u in range(1, N_USERS + 1):
        n = rng.integers(2, 9)
        for j in rng.choice(N_ITEMS, n, replace=False):
            rows.append((u, int(item_ids[j]), float(rng.choice([1.0, 0.5, 2.0]))))
        if u % 7 == 0:             # a repeated pair: confidences add
            rows.append(rows[-1])
    x = np.zeros((N_USERS, N_ITEMS))
    col = {int(i): c for c, i in enumerate(item_ids)}
    for u, i, w in rows:
        x[u - 1, col[i]] += w
    b = ease(x, L2)
    scores = x @ b
    tops, ok = [], True
    for u in range(N_USERS):
        seen = {int(item_ids[j]) for j in np.nonzero(x[u])[0]}
        top, nxt = top_k(scores[u], [int(i) for i in item_ids], K, seen)
        gaps = [top[r][1] - top[r + 1][1] for r in range(len(top) - 1)] + [top[-1][1] - nxt]
        ok &= min(gaps) > 1e-4
        tops.append(top)
    return rng, item_ids, rows, x, b, tops, ok


def metrics(rec, rel, k):
    hits = [1 if r in rel else 0 for r in rec[:k]]
    m = min(k, len(rel))
    recall = sum(hits) / m
    dcg = sum(h / np.log2(p + 2) for p, h in enumerate(hits))
    idcg = sum(1 / np.log2(p + 2) for p in range(m))
    prec = sum(hits) / k
    ap = sum(sum(hits[:p + 1]) / (p + 1) for p, h in enumerate(hits) if h) / m
    return recall, dcg / idcg, prec, ap


def main(outdir):
    seed = 0
    while True:
        rng, item_ids, rows, x, b, tops, ok = draw(seed)
        if ok:
            break
        seed += 1
    out = open(os.path.join(outdir, "quality.sql"), "w")
    w = out.write
    w("CREATE TEMP TABLE ref_q_rows (user_id int, item_id bigint, weight real);\n")
    w("INSERT INTO ref_q_rows VALUES\n" + ",\n".join(f"({u}, {i}, {c!r})" for u, i, c in rows) + ";\n")
    w(f"CREATE TEMP TABLE ref_q_const AS SELECT {L2!r}::float8 AS l2, {K} AS k;\n")
    w("CREATE TEMP TABLE ref_q_b (item_id bigint, b float8[]);\n")
    w("INSERT INTO ref_q_b VALUES\n" + ",\n".join(
        f"({int(i)}, '{{{','.join(repr(float(v)) for v in b[t])}}}')" for t, i in enumerate(item_ids)) + ";\n")
    r = x - x @ b
    obs, reg = float((r * r).sum()), float(L2 * (b * b).sum())
    w(f"CREATE TEMP TABLE ref_q_loss AS SELECT {obs!r}::float8 AS observed, {reg!r}::float8 AS l2;\n")
    w("CREATE TEMP TABLE ref_q_top (user_id bigint, item_id bigint, score float8, rank int);\n")
    w("INSERT INTO ref_q_top VALUES\n" + ",\n".join(
        f"({u + 1}, {i}, {s!r}, {r + 1})" for u, top in enumerate(tops) for r, (i, s) in enumerate(top)) + ";\n")

    # new users given by items and weights (one unknown item, one repeat)
    hist = [([int(item_ids[0]), int(item_ids[3]), int(item_ids[3])], [1.0, 0.5, 1.0]),
            ([int(item_ids[5]), 99999, int(item_ids[7]), int(item_ids[11])], [2.0, 1.0, 1.0, 0.5])]
    col = {int(i): c for c, i in enumerate(item_ids)}
    w("CREATE TEMP TABLE ref_q_new (hist int, items bigint[], weights real[], top bigint[]);\n")
    vals = []
    for h, (items, weights) in enumerate(hist):
        xu = np.zeros(N_ITEMS)
        for i, c in zip(items, weights):
            if i in col:
                xu[col[i]] += c
        top, _ = top_k(xu @ b, [int(i) for i in item_ids], K, set(items))
        vals.append(f"({h + 1}, '{{{','.join(map(str, items))}}}', '{{{','.join(map(repr, weights))}}}', "
                    f"'{{{','.join(str(i) for i, _ in top)}}}')")
    w("INSERT INTO ref_q_new VALUES\n" + ",\n".join(vals) + ";\n")

    # a test set: 1 to 3 unseen items of most users, plus an unknown user 999
    test = []
    for u in range(1, N_USERS + 1):
        if u % 5 == 0:
            continue
        unseen = [int(i) for j, i in enumerate(item_ids) if x[u - 1, j] == 0]
        test += [(u, i) for i in rng.choice(unseen, rng.integers(1, 4), replace=False)]
    test += [(999, int(item_ids[0])), (999, int(item_ids[1]))]
    w("CREATE TEMP TABLE ref_q_test (uid int, iid int);\n")
    w("INSERT INTO ref_q_test VALUES\n" + ",\n".join(f"({u}, {i})" for u, i in test) + ";\n")
    rel = {}
    for u, i in test:
        rel.setdefault(u, set()).add(i)
    m = np.array([metrics([i for i, _ in tops[u - 1]] if u <= N_USERS else [], rel[u], K) for u in sorted(rel)])
    recommended = {i for u in sorted(rel) if u <= N_USERS for i, _ in tops[u - 1]}
    w("CREATE TEMP TABLE ref_q_eval AS SELECT " + ", ".join(
        f"{float(v)!r}::float8 AS {n}" for v, n in zip(m.mean(axis=0), ["recall", "ndcg", "prec", "map"])) +
      f", {len(recommended) / N_ITEMS!r}::float8 AS coverage, {len(rel)}::bigint AS users, 1::bigint AS unknown;\n")
    out.close()


if __name__ == "__main__":
    main(sys.argv[1])
