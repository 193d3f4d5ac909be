"""Reference recommenders for the embeddings benchmark, in numpy.

EASE (Steck, WWW 2019), B = I - P / diag(P) with P = (X^T X + lambda I)^-1,
for a grid of lambda, and popularity; evaluated like bench.sql: Recall@20
normalised by min(20, |test|), NDCG@20 with log2 discounts, training items
excluded.

Usage: python3 ease.py TRAIN.csv TEST.csv   (user_id,item_id rows, no header)
"""
import sys

import numpy as np


def load(path):
    a = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    return a[:, 0], a[:, 1]


def main(train_path, test_path):
    tu, ti = load(train_path)
    su, si = load(test_path)
    users = np.unique(np.concatenate([tu, su]))
    items = np.unique(ti)
    uix = {u: n for n, u in enumerate(users)}
    iix = {i: n for n, i in enumerate(items)}
    x = np.zeros((len(users), len(items)), dtype=np.float64)
    x[[uix[u] for u in tu], [iix[i] for i in ti]] = 1.0
    seen = x > 0
    test = np.zeros_like(seen)
    test_users = np.zeros(len(users), dtype=bool)
    for u, i in zip(su, si):
        test_users[uix[u]] = True
        if i in iix:    # an item never seen in training cannot be hit
            test[uix[u], iix[i]] = True
    n_test = np.bincount([uix[u] for u in su], minlength=len(users))
    # |relevant| counts every test item, as recall_at_k does
    seen, test, xs = seen[test_users], test[test_users], x[test_users]
    n_test = n_test[test_users]

    def ev(scores):
        s = np.where(seen, -np.inf, scores)
        top = np.argpartition(-s, 20, axis=1)[:, :20]
        rows = np.arange(s.shape[0])[:, None]
        order = np.lexsort((top, -s[rows, top]), axis=1)
        top = top[rows, order]
        hits = test[rows, top]
        m = np.minimum(20, n_test)
        disc = 1.0 / np.log2(np.arange(2, 22))
        idcg = np.cumsum(disc)[m - 1]
        return float(np.mean(hits.sum(axis=1) / m)), float(np.mean((hits * disc).sum(axis=1) / idcg))

    r, n = ev(np.tile(x.sum(axis=0), (xs.shape[0], 1)))
    print(f"numpy popularity: Recall@20 {r:.4f} NDCG@20 {n:.4f}")
    g = x.T @ x
    best = None
    for lam in (100.0, 300.0, 1000.0, 3000.0):
        p = np.linalg.inv(g + lam * np.eye(len(items)))
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0.0)
        r, n = ev(xs @ b)
        print(f"numpy EASE lambda {lam:g}: Recall@20 {r:.4f} NDCG@20 {n:.4f}")
        if best is None or r > best[1]:
            best = (lam, r, n)
    print(f"tuned EASE (lambda {best[0]:g}): Recall@20 {best[1]:.4f} NDCG@20 {best[2]:.4f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
