"""Side-by-side of recsys and implicit (run.sh): train implicit or read
recsys's exported vectors, then Recall@20 on the held-out pairs with the
training items left out; `summary` prints the medians per library and
thread count.  One line per run: library threads rep seconds_per_epoch
recall load_seconds (recsys: its load_seconds; implicit: the CSR matrix
built from numpy arrays of the pairs, both sides as recsys builds)."""
import os
import sys
import time

import numpy as np


def load_pairs(path):
    a = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    return a[:, 0], a[:, 1]


def recall_at_20(uid, U, iid, V, train, test):
    """Mean over test users of |top20 & test| / min(20, |test|)."""
    urow = {u: r for r, u in enumerate(uid)}
    icol = {i: c for c, i in enumerate(iid)}
    seen = {}
    for u, i in zip(*train):
        seen.setdefault(u, []).append(icol[i])
    held = {}
    for u, i in zip(*test):
        if u in urow and i in icol:
            held.setdefault(u, set()).add(icol[i])
    users = sorted(held)
    total = 0.0
    for b in range(0, len(users), 2048):
        blk = users[b:b + 2048]
        s = U[[urow[u] for u in blk]] @ V.T
        for r, u in enumerate(blk):
            s[r, seen.get(u, [])] = -np.inf
        top = np.argpartition(-s, 20, axis=1)[:, :20]
        for r, u in enumerate(blk):
            h = held[u]
            total += len(h.intersection(top[r].tolist())) / min(20, len(h))
    return total / len(users)


def read_vectors(path):
    ids, rows = [], []
    with open(path) as f:
        for line in f:
            i, v = line.rstrip("\n").split("\t")
            ids.append(int(i))
            rows.append(np.array(v.split(" "), dtype=np.float32))
    return np.array(ids), np.vstack(rows)


def main():
    lib, threads, rep, work, dim, epochs, dest = sys.argv[1:8]
    threads, rep, dim, epochs = int(threads), int(rep), int(dim), int(epochs)
    if lib == "summary":
        runs = [l.split() for l in open(os.path.join(work, "results.txt"))]
        print("library   threads  s/epoch(median)  recall@20(median)  load_s(median)  runs")
        for name in ("recsys", "implicit"):
            for t in ("1", "2"):
                r = [x for x in runs if x[0] == name and x[1] == t]
                if r:
                    print("%-9s %7s  %15.3f  %17.4f  %14.3f  %4d" % (
                        name, t, np.median([float(x[3]) for x in r]), np.median([float(x[4]) for x in r]),
                        np.median([float(x[5]) for x in r]), len(r)))
        return
    train = load_pairs(os.path.join(work, "train.csv"))
    test = load_pairs(os.path.join(work, "test.csv"))
    if lib == "recsys":
        with open(os.path.join(work, "recsys_%d.txt" % threads)) as f:
            fields = f.read().strip().split("|")
            sec, load = float(fields[3]), float(fields[4])
        uid, U = read_vectors(os.path.join(work, "u_%d.txt" % threads))
        iid, V = read_vectors(os.path.join(work, "i_%d.txt" % threads))
    else:
        os.environ["OPENBLAS_NUM_THREADS"] = "1"
        sys.path.insert(0, dest)
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares
        t0 = time.perf_counter()
        uid, ucode = np.unique(train[0], return_inverse=True)
        iid, icode = np.unique(train[1], return_inverse=True)
        m = sp.csr_matrix((np.ones(len(ucode), dtype=np.float32), (ucode, icode)), shape=(len(uid), len(iid)))
        m.T.tocsr()
        load = time.perf_counter() - t0
        model = AlternatingLeastSquares(factors=dim, iterations=1, num_threads=threads, random_state=42,
                                        calculate_training_loss=False)
        times = []
        for _ in range(epochs):
            t0 = time.perf_counter()
            model.fit(m, show_progress=False)
            times.append(time.perf_counter() - t0)
            model.iterations = 1
        sec = float(np.median(times))
        U, V = np.asarray(model.user_factors), np.asarray(model.item_factors)
    print(lib, threads, rep, "%.4f" % sec, "%.4f" % recall_at_20(uid, U, iid, V, train, test), "%.3f" % load)


if __name__ == "__main__":
    main()
