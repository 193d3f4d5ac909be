"""Reference values for test/embeddings.sql, computed by numpy.

1. recsys.als_solve: the normal equations
   (w G + sum_j (c_j - w) v_j v_j^T + l2 I) x = sum_j c_j v_j, solved densely.
2. recsys.train_embeddings(method => 'als'): the same alternating solves with
   frequency-scaled regularization lambda = l2 (n + w N_other)^nu, from the
   same deterministic initial item vectors (splitmix64 + Box-Muller, re-done
   here bit for bit), storing float32 vectors between sweeps like the
   extension does; and the per-epoch losses.
3. A planted low-rank data set with held-out positives for the recovery test.

Usage: python3 embeddings.py OUTDIR   (writes OUTDIR/embeddings.sql)
"""
import math
import os
import sys

import numpy as np

M64 = (1 << 64) - 1


def hash64(x):
    """splitmix64 finaliser, as EmbeddingHash64 in src/embeddings/kind.c."""
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def init_vector(seed, ident, dim, scale):
    """EmbeddingInitVector: N(0, (scale/sqrt(dim))^2) values from (seed, id)."""
    base = hash64(hash64(seed & M64) ^ (ident & M64))
    sd = scale / math.sqrt(dim)
    out = np.empty(dim, dtype=np.float32)
    for j in range(dim):
        u1 = ((hash64((base + 2 * j) & M64) >> 11) + 0.5) * (1.0 / 9007199254740992.0)
        u2 = ((hash64((base + 2 * j + 1) & M64) >> 11) + 0.5) * (1.0 / 9007199254740992.0)
        out[j] = np.float32(sd * math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2))
    return out


def sql_array(x):
    """Format a numpy vector or matrix as a SQL array literal."""
    x = np.asarray(x)
    if x.ndim == 1:
        return "{" + ",".join(repr(float(v)) for v in x) + "}"
    return "{" + ",".join(sql_array(r) for r in x) + "}"


def solve(gram, rows, conf, w, lam):
    """One entity's closed-form update, in float64."""
    k = gram.shape[0]
    a = w * gram + lam * np.eye(k)
    b = np.zeros(k)
    for v, c in zip(rows, conf):
        a += (c - w) * np.outer(v, v)
        b += c * v
    return np.linalg.solve(a, b), a - w * gram - lam * np.eye(k), b


def cg(gram, rows, conf, w, lam, x0, steps):
    """One entity's conjugate-gradient update from x0 (Takacs et al. 2011), in float64."""
    k = gram.shape[0]
    a = w * gram + lam * np.eye(k)
    b = np.zeros(k)
    for v, c in zip(rows, conf):
        a += (c - w) * np.outer(v, v)
        b += c * v
    x = x0.astype(np.float64)
    r = b - a @ x
    p = r.copy()
    rs = r @ r
    for _ in range(steps):
        if rs <= 1e-20:
            break
        ap = a @ p
        pap = p @ ap
        if not pap > 0:
            break
        alpha = rs / pap
        x = x + alpha * p
        r = r - alpha * ap
        rs_new = r @ r
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def als(pairs, dim, epochs, w, l2, nu, seed, scale, solver="cholesky", cg_steps=3):
    """Reference ALS over {(u, i): c}; returns user/item vectors and the loss log.

    solver "cg": cg_steps conjugate-gradient steps per entity, warm-started
    from its current vector (users start from init_vector(seed * 2, u))."""
    users = sorted({u for u, _ in pairs})
    items = sorted({i for _, i in pairs})
    n_u = {u: sum(1 for (a, _) in pairs if a == u) for u in users}
    n_i = {i: sum(1 for (_, b) in pairs if b == i) for i in items}
    lam_u = {u: l2 * (n_u[u] + w * len(items)) ** nu for u in users}
    lam_i = {i: l2 * (n_i[i] + w * len(users)) ** nu for i in items}
    by_user = {u: [(i, c) for (a, i), c in pairs.items() if a == u] for u in users}
    by_item = {i: [(u, c) for (u, b), c in pairs.items() if b == i] for i in items}
    vv = {i: init_vector(seed * 2 + 1, i, dim, scale) for i in items}
    uu = {u: init_vector(seed * 2, u, dim, scale) for u in users}

    def update(g, rows, conf, lam, x0):
        if solver == "cg":
            return cg(g, rows, conf, w, lam, x0, cg_steps)
        return solve(g, rows, conf, w, lam)[0]
    log = []
    for _ in range(epochs):
        g = sum(np.outer(v.astype(np.float64), v.astype(np.float64)) for v in vv.values())
        for u in users:
            x = update(g, [vv[i].astype(np.float64) for i, _ in by_user[u]],
                       [c for _, c in by_user[u]], lam_u[u], uu[u])
            uu[u] = x.astype(np.float32)
        gu = sum(np.outer(x.astype(np.float64), x.astype(np.float64)) for x in uu.values())
        observed = 0.0
        for i in items:
            rows = [uu[u].astype(np.float64) for u, _ in by_item[i]]
            conf = [c for _, c in by_item[i]]
            x = update(gu, rows, conf, lam_i[i], vv[i])
            vv[i] = x.astype(np.float32)
            y = vv[i].astype(np.float64)
            observed += sum(c * (r @ y - 1.0) ** 2 - w * (r @ y) ** 2 for r, c in zip(rows, conf))
        gv = sum(np.outer(v.astype(np.float64), v.astype(np.float64)) for v in vv.values())
        gramian = w * float(np.sum(gu * gv))
        reg = sum(lam_u[u] * float(uu[u].astype(np.float64) @ uu[u].astype(np.float64)) for u in users) \
            + sum(lam_i[i] * float(vv[i].astype(np.float64) @ vv[i].astype(np.float64)) for i in items)
        log.append((observed + gramian + reg, observed, gramian, reg))
    return uu, vv, log


def main(outdir):
    rng = np.random.default_rng(20261130)
    f = open(os.path.join(outdir, "embeddings.sql"), "w")

    # 1. als_solve on two groups: 9 rows, and 600 rows (several buffer flushes);
    #    confidences both above and below the Gramian weight
    k, w, l2 = 5, 0.7, 0.2
    z = rng.standard_normal((40, k))
    gram = z.T @ z
    f.write("CREATE TEMP TABLE ref_als_rows (grp int, v real[], c float8);\n")
    f.write(f"CREATE TEMP TABLE ref_als_const AS SELECT '{sql_array(gram)}'::float8[] AS g,"
            f" {w!r}::float8 AS w, {l2!r}::float8 AS l2;\n")
    f.write("CREATE TEMP TABLE ref_als_x (grp int, x float8[]);\n")
    for grp, n in ((1, 9), (2, 600)):
        v = rng.standard_normal((n, k)).astype(np.float32)
        c = rng.uniform(0.0, 3.0, n)
        x, _, _ = solve(gram, v.astype(np.float64), c, w, l2)
        f.write("INSERT INTO ref_als_rows VALUES\n")
        f.write(",\n".join(f"({grp}, '{sql_array(v[j])}', {c[j]!r})" for j in range(n)) + ";\n")
        f.write(f"INSERT INTO ref_als_x VALUES ({grp}, '{sql_array(x)}');\n")

    # 2. a tiny training table: bigint users, smallint items, numeric weights;
    #    a repeated pair (weights add) and a zero-weight pair (dropped)
    user_ids = [101, 102, 105, 107, 110, 111, 115, 120, 121, 130, 131, 140]
    item_ids = [3, 7, 8, 13, 21, 22, 40, 41, 50]
    rows = []
    for u in user_ids:
        chosen = rng.choice(item_ids, size=rng.integers(2, 6), replace=False)
        for i in chosen:
            rows.append((u, int(i), round(float(rng.uniform(0.5, 3.0)), 3)))
    rows.append((rows[0][0], rows[0][1], 0.75))         # repeated pair
    rows.append((user_ids[3], 50, 0.0))                 # zero weight
    pairs = {}
    for u, i, c in rows:
        pairs[(u, i)] = pairs.get((u, i), 0.0) + c
    pairs = {p: c for p, c in pairs.items() if c > 0}
    # without a weight column every row counts 1, and repeated rows add up
    counts = {}
    for u, i, _ in rows:
        counts[(u, i)] = counts.get((u, i), 0.0) + 1.0
    f.write("CREATE TEMP TABLE ref_emb_interactions (uid bigint, iid smallint, wt numeric);\n")
    f.write("INSERT INTO ref_emb_interactions VALUES\n")
    f.write(",\n".join(f"({u}, {i}, {c})" for u, i, c in rows) + ";\n")
    runs = {
        # name: (weighted, dim, epochs, w, l2, nu, seed, init_scale, solver, cg_steps)
        "weighted": (True, 3, 4, 0.3, 0.05, 1.0, 7, 0.5, "cholesky", 0),
        "implicit": (False, 4, 3, 0.1, 0.2, 0.0, -3, 1.0, "cholesky", 0),
        "weighted_cg": (True, 3, 4, 0.3, 0.05, 1.0, 7, 0.5, "cg", 2),
        "implicit_cg": (False, 4, 3, 0.1, 0.2, 0.0, -3, 1.0, "cg", 3),
    }
    f.write("CREATE TEMP TABLE ref_emb_vectors (run text, side text, id bigint, v float8[]);\n")
    f.write("CREATE TEMP TABLE ref_emb_log (run text, epoch int, loss float8, observed float8,"
            " gramian float8, l2 float8);\n")
    for run, (weighted, dim, epochs, w, l2, nu, seed, scale, solver, steps) in runs.items():
        p = pairs if weighted else counts
        uu, vv, log = als(p, dim, epochs, w, l2, nu, seed, scale, solver, steps)
        f.write("INSERT INTO ref_emb_vectors VALUES\n")
        f.write(",\n".join([f"('{run}', 'user', {u}, '{sql_array(x)}')" for u, x in uu.items()]
                           + [f"('{run}', 'item', {i}, '{sql_array(x)}')" for i, x in vv.items()]) + ";\n")
        f.write("INSERT INTO ref_emb_log VALUES\n")
        f.write(",\n".join(f"('{run}', {e + 1}, {a!r}, {b!r}, {c!r}, {d!r})"
                           for e, (a, b, c, d) in enumerate(log)) + ";\n")
    # the initial vector of one id, to pin the generator itself
    f.write(f"CREATE TEMP TABLE ref_emb_init AS SELECT '{sql_array(init_vector(12345, -77, 6, 0.3))}'"
            "::float8[] AS v;\n")

    # 3. planted rank-4 preferences: 300 users pick 20 of 200 items (popularity
    #    times affinity); 5 per user held out at random
    n_u, n_i, r = 300, 200, 4
    uf = rng.standard_normal((n_u, r))
    vf = rng.standard_normal((n_i, r))
    logpop = -0.7 * np.log(np.arange(1, n_i + 1))[rng.permutation(n_i)]
    f.write("CREATE TEMP TABLE planted_train (user_id int, item_id int);\n")
    f.write("CREATE TEMP TABLE planted_test (user_id int, item_id int);\n")
    train, test = [], []
    for u in range(n_u):
        g = logpop + 2.5 * vf @ uf[u] / math.sqrt(r) + rng.gumbel(size=n_i)
        picked = np.argpartition(-g, 20)[:20]
        held = set(rng.choice(picked, size=5, replace=False).tolist())
        for i in picked:
            (test if i in held else train).append(f"({u + 1}, {i + 1})")
    f.write("INSERT INTO planted_train VALUES\n" + ",\n".join(train) + ";\n")
    f.write("INSERT INTO planted_test VALUES\n" + ",\n".join(test) + ";\n")
    f.close()


if __name__ == "__main__":
    main(sys.argv[1])
