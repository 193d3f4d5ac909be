"""Reference values for test/serving.sql, computed by numpy.

A stored embeddings model is written straight into the store (random float32
item and user vectors, seen lists, a config with gramian_weight, l2 and nu),
so that every serving function is checked against numpy alone:

1. recommend / recommend_all: scores U Y^T in float64, the k best unseen
   items per user, ties broken by the smaller id (two items share a vector).
2. fold_in: the user half-step of implicit ALS,
   (w G + sum_j (c_j - w) v_j v_j^T + lambda I) x = sum_j c_j v_j,
   lambda = l2 (n + w N)^nu, G = Y^T Y, repeated items adding their weights,
   unknown items skipped, zero-weight items dropped; and the same against a
   Gramian stored in the model's weights (safetensors, F64 "item_gramian").
3. recommend_for_items / recommend_all_for_items: fold-in, then the k best.

Usage: python3 serving.py OUTDIR   (writes OUTDIR/serving.sql)
"""
import json
import os
import struct
import sys

import numpy as np

DIM = 5
N_ITEMS = 40
N_USERS = 30
K = 7
W, L2, NU = 0.3, 0.05, 1.0


def sql_array(x):
    """Format a numpy vector as a SQL array literal (repr keeps every bit)."""
    return "{" + ",".join(repr(float(v)) for v in np.asarray(x).ravel()) + "}"


def top_k(scores, ids, k, excluded):
    """The k best (score desc, id asc) of ids not excluded."""
    order = sorted((i for i in range(len(ids)) if ids[i] not in excluded),
                   key=lambda i: (-scores[i], ids[i]))
    return [(int(ids[i]), float(scores[i])) for i in order[:k]]


def fold_in(y, ids, gram, items, weights, n_train):
    """numpy fold-in; None when no item is known."""
    index = {int(v): r for r, v in enumerate(ids)}
    conf = {}
    for it, c in zip(items, weights):
        if it in index:
            conf[index[it]] = conf.get(index[it], 0.0) + float(np.float32(c))
    rows = [(r, c) for r, c in sorted(conf.items()) if c > 0]
    if not rows:
        return None
    lam = L2 * (len(rows) + W * n_train) ** NU
    a = W * gram + lam * np.eye(DIM)
    b = np.zeros(DIM)
    for r, c in rows:
        v = y[r].astype(np.float64)
        a += (c - W) * np.outer(v, v)
        b += c * v
    return np.linalg.solve(a, b)


def safetensors_gramian(g):
    """A safetensors file holding g as F64 item_gramian."""
    data = np.ascontiguousarray(g, dtype="<f8").tobytes()
    header = json.dumps({"item_gramian": {"dtype": "F64", "shape": list(g.shape),
                                          "data_offsets": [0, len(data)]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + data


def gapped_scores(rng):
    """Draw vectors until no two different items score within 1e-4 for any user."""
    while True:
        y = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
        y[11] = y[10]             # items 110 and 111 tie for every user
        x = rng.normal(size=(N_USERS, DIM)).astype(np.float32)
        s = x.astype(np.float64) @ y.astype(np.float64).T
        ok = True
        for row in s:
            srt = np.sort(np.delete(row, 11))
            if np.min(np.diff(srt)) < 1e-4:
                ok = False
                break
        if ok:
            return y, x, s


def main(outdir):
    rng = np.random.default_rng(20261202)
    y, x, s = gapped_scores(rng)
    item_ids = np.arange(100, 100 + N_ITEMS)
    user_ids = np.arange(1, N_USERS + 1)
    seen = {int(u): sorted(int(i) for i in rng.choice(item_ids, size=rng.integers(0, 8), replace=False))
            for u in user_ids}
    seen[3] = []
    gram = y.astype(np.float64).T @ y.astype(np.float64)

    out = open(os.path.join(outdir, "serving.sql"), "w")
    w = out.write
    config = json.dumps({"method": "als", "dim": DIM, "gramian_weight": W, "l2": L2,
                         "options": {"nu": NU}, "n_items": N_ITEMS})
    w("INSERT INTO recsys.model_names (name) VALUES ('srv');\n")
    w(f"INSERT INTO recsys.models (name, version, kind, config) VALUES ('srv', 1, 'embeddings', '{config}');\n")
    w("INSERT INTO recsys.item_vectors (model, version, id, embedding) VALUES\n")
    w(",\n".join(f"('srv', 1, {i}, '{sql_array(v)}')" for i, v in zip(item_ids, y)) + ";\n")
    w("INSERT INTO recsys.user_vectors (model, version, id, embedding, seen) VALUES\n")
    w(",\n".join(f"('srv', 1, {u}, '{sql_array(v)}', '{{{','.join(map(str, seen[int(u)]))}}}')"
                 for u, v in zip(user_ids, x)) + ";\n")
    # version 2: the same vectors, a stored Gramian of 2 Y^T Y (it must be the one used)
    stored = 2.0 * gram
    w(f"INSERT INTO recsys.models (name, version, kind, config, weights) VALUES ('srv', 2, 'embeddings', '{config}',"
      f" '\\x{safetensors_gramian(stored).hex()}'::bytea);\n")
    w("INSERT INTO recsys.item_vectors (model, version, id, embedding)"
      " SELECT model, 2, id, embedding FROM recsys.item_vectors WHERE model = 'srv' AND version = 1;\n")
    w("INSERT INTO recsys.user_vectors (model, version, id, embedding, seen)"
      " SELECT model, 2, id, embedding, seen FROM recsys.user_vectors WHERE model = 'srv' AND version = 1;\n")

    # 1. top k per user, with and without the seen items
    w("CREATE TEMP TABLE ref_srv_top (exclude boolean, user_id bigint, item_id bigint, score float8, rank int);\n")
    rows = []
    for ex in (True, False):
        for u, row in zip(user_ids, s):
            for r, (i, sc) in enumerate(top_k(row, item_ids, K, set(seen[int(u)]) if ex else set())):
                rows.append(f"({str(ex).lower()}, {u}, {i}, {sc!r}, {r + 1})")
    w("INSERT INTO ref_srv_top VALUES\n" + ",\n".join(rows) + ";\n")

    # 2. fold-in of new users: repeats, unknown ids, zero and fractional weights
    histories = []
    for h in range(12):
        n = int(rng.integers(1, 9))
        items = [int(i) for i in rng.choice(item_ids, size=n)]        # may repeat
        if h % 3 == 0:
            items += [99999, 5]                                        # unknown
        weights = [float(np.float32(v)) for v in rng.choice([0.0, 0.5, 1.0, 2.5, 4.0], size=len(items))]
        weights[0] = 1.0          # at least one known item of positive weight
        histories.append((h + 1, items, weights))
    w("CREATE TEMP TABLE ref_srv_fold (hist int, items bigint[], weights real[], x float8[], x_stored float8[]);\n")
    rows = []
    for h, items, weights in histories:
        xf = fold_in(y, item_ids, gram, items, weights, N_ITEMS)
        xs = fold_in(y, item_ids, stored, items, weights, N_ITEMS)
        rows.append(f"({h}, '{{{','.join(map(str, items))}}}', '{sql_array(weights)}', "
                    f"{'NULL' if xf is None else repr(sql_array(xf))}, "
                    f"{'NULL' if xs is None else repr(sql_array(xs))})")
    w("INSERT INTO ref_srv_fold VALUES\n" + ",\n".join(rows) + ";\n")
    # unit weights (weights => NULL)
    w("CREATE TEMP TABLE ref_srv_fold_unit (hist int, x float8[]);\n")
    w("INSERT INTO ref_srv_fold_unit VALUES\n" + ",\n".join(
        f"({h}, '{sql_array(fold_in(y, item_ids, gram, items, [1.0] * len(items), N_ITEMS))}')"
        for h, items, _ in histories) + ";\n")

    # 3. the top k of folded-in users (the histories as an interactions table)
    w("CREATE TEMP TABLE ref_srv_interactions (uid int, iid bigint, wt real);\n")
    w("INSERT INTO ref_srv_interactions VALUES\n" + ",\n".join(
        f"({h}, {i}, {c!r})" for h, items, weights in histories for i, c in zip(items, weights)) + ";\n")
    w("CREATE TEMP TABLE ref_srv_fold_top (user_id bigint, item_id bigint, score float8, rank int);\n")
    rows = []
    for h, items, weights in histories:
        xf = fold_in(y, item_ids, gram, items, weights, N_ITEMS)
        sc = y.astype(np.float64) @ xf.astype(np.float32).astype(np.float64)
        for r, (i, v) in enumerate(top_k(sc, item_ids, K, set(items))):
            rows.append(f"({h}, {i}, {v!r}, {r + 1})")
    w("INSERT INTO ref_srv_fold_top VALUES\n" + ",\n".join(rows) + ";\n")
    out.close()


if __name__ == "__main__":
    main(sys.argv[1])
