#!/usr/bin/python3
"""Recall@20 and NDCG@20 on warm and on cold items (numpy, independent of recsys).

warm: for each user of warm_test.csv, every warm item but the user's training items is
      ranked; cold: for each user of cold_test.csv, the cold items (never trained on) are
      ranked.  Recall@k = hits / min(k, relevant), NDCG@k with binary gains; means over users.

Usage:
  eval.py DATA vectors USERS_CSV ITEMS_CSV   vectors exported from recsys (id, {embedding})
  eval.py DATA popularity                    warm: training count; cold: the mean training
                                             count of the item's genre (a feature baseline)
Prints one JSON object.
"""
import csv
import json
import os
import sys

import numpy as np

K = 20
data = sys.argv[1]


def pairs(name):
    a = np.loadtxt(os.path.join(data, name), delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    return a


def by_user(p):
    out = {}
    for u, i in p:
        out.setdefault(int(u), []).append(int(i))
    return out


train = pairs("train.csv")
warm_test = by_user(pairs("warm_test.csv"))
cold_test = by_user(pairs("cold_test.csv"))
cold_items = np.loadtxt(os.path.join(data, "cold_items.csv"), skiprows=1, dtype=np.int64, ndmin=1)
with open(os.path.join(data, "items.csv")) as f:
    rows = list(csv.DictReader(f))
n_items = len(rows)
genre = {int(r["item_id"]): r["genre"] for r in rows}
seen = by_user(train)
is_cold = np.zeros(n_items + 1, bool)
is_cold[cold_items] = True
warm_items = np.array([i for i in range(1, n_items + 1) if not is_cold[i]])
DISC = 1.0 / np.log2(np.arange(2, K + 2))


def metrics(score_fn, test, candidates, exclude_seen):
    """score_fn(user) -> scores over item ids 1..n (index = id)"""
    rs, ns = [], []
    cand = np.asarray(candidates)
    for u, rel in test.items():
        s = score_fn(u)[cand].astype(np.float64)
        if exclude_seen and u in seen:
            mask = np.isin(cand, seen[u])
            s[mask] = -np.inf
        # best first, ties by smaller id (cand ascends)
        order = np.lexsort((cand, -s))[:K]
        top = cand[order]
        hit = np.isin(top, rel)
        ideal = min(K, len(rel))
        rs.append(hit.sum() / ideal)
        ns.append((hit * DISC[:len(top)]).sum() / DISC[:ideal].sum())
    return float(np.mean(rs)), float(np.mean(ns))


def read_vectors(path):
    ids, vecs = [], []
    with open(path) as f:
        for r in csv.reader(f):
            ids.append(int(r[0]))
            vecs.append([float(x) for x in r[1].strip("{}").split(",")])
    return np.array(ids), np.array(vecs, np.float32)


out = {}
if sys.argv[2] == "vectors":
    uid, uv = read_vectors(sys.argv[3])
    iid, iv = read_vectors(sys.argv[4])
    user_row = {u: r for r, u in enumerate(uid)}
    full = np.zeros((n_items + 1, iv.shape[1]), np.float32)
    has = np.zeros(n_items + 1, bool)
    full[iid] = iv
    has[iid] = True

    def score(u):
        s = full @ uv[user_row[u]] if u in user_row else np.zeros(n_items + 1, np.float32)
        return np.where(has, s, -np.inf)
    out["warm_recall"], out["warm_ndcg"] = metrics(score, warm_test, warm_items, True)
    if has[cold_items].all():
        out["cold_recall"], out["cold_ndcg"] = metrics(score, cold_test, cold_items, False)
else:
    count = np.zeros(n_items + 1)
    np.add.at(count, train[:, 1], 1.0)
    gsum, gn = {}, {}
    for i in warm_items:
        gsum[genre[i]] = gsum.get(genre[i], 0.0) + count[i]
        gn[genre[i]] = gn.get(genre[i], 0) + 1
    gpop = np.array([0.0] + [gsum.get(genre[i], 0.0) / max(gn.get(genre[i], 0), 1)
                             for i in range(1, n_items + 1)])
    out["warm_recall"], out["warm_ndcg"] = metrics(lambda u: count, warm_test, warm_items, True)
    out["cold_recall"], out["cold_ndcg"] = metrics(lambda u: gpop, cold_test, cold_items, False)
print(json.dumps(out))
