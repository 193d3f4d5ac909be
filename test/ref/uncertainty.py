#!/usr/bin/python3
"""Reference values for test/uncertainty.sql (numpy / PyTorch, fixed seeds).

Writes <outdir>/uncertainty.sql: tables of inputs with the values numpy and
PyTorch compute for them, which the pgTAP suite compares with recsys.

- Kendall et al.'s public two-task example (yaringal/multi-task-learning-example):
  y1 = 2x + 8 + 10 eps, y2 = 3x + 3 + eps, trained jointly with the notebook's
  loss  mean_batch sum_k exp(-s_k)(y_k - yhat_k)^2 + s_k  in PyTorch.  The
  per-row squared residuals go to SQL, where exp(s/2) must equal their RMSE,
  the sigma PyTorch learned, and (statistically) the true 10 and 1.
- The paper's mixed regression/classification objective minimised by L-BFGS.
- uncertainty_loss and gaussian_nll at random points (numpy; torch.GaussianNLLLoss).
- sampled_softmax_nll: the same splitmix64/xoshiro256** + Box-Muller stream
  re-implemented here (checked against the published test vectors), large-T
  Monte Carlo with numpy's own generator, and torch.cross_entropy as the
  noise vanishes.
- predictive_variance against numpy's two-pass np.var / np.mean.
"""
import math
import os
import sys

import numpy as np
import torch

OUT = sys.argv[1] if len(sys.argv) > 1 else "test/ref/out"
torch.set_default_dtype(torch.float64)

M64 = (1 << 64) - 1


def f8(x):
    """An exact float8 literal (repr round-trips)."""
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        raise ValueError("non-finite reference value")
    return repr(x)


def arr(xs):
    return "ARRAY[" + ",".join(f8(x) for x in xs) + "]::float8[]"


def txtarr(xs):
    return "ARRAY[" + ",".join("'%s'" % x for x in xs) + "]::text[]"


# ----------------------------------------------------------------------------
# The generator of recsys.sampled_softmax_nll, re-implemented
# ----------------------------------------------------------------------------
def splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M64


class NormalRng:
    def __init__(self, seed=None, state=None):
        if state is not None:
            self.s = list(state)
        else:
            x = seed & M64
            self.s = []
            for _ in range(4):
                x, z = splitmix64(x)
                self.s.append(z)
        self.spare = None

    def next64(self):
        s = self.s
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def normal(self):
        if self.spare is not None:
            z, self.spare = self.spare, None
            return z
        u1 = ((self.next64() >> 11) + 1) * 2.0 ** -53
        u2 = (self.next64() >> 11) * 2.0 ** -53
        r = math.sqrt(-2.0 * math.log(u1))
        self.spare = r * math.sin(2.0 * math.pi * u2)
        return r * math.cos(2.0 * math.pi * u2)


# Published test vectors: splitmix64 from 0, xoshiro256** from {1, 2, 3, 4}.
assert splitmix64(0)[1] == 0xE220A8397B1DCDAF
_x = NormalRng(state=[1, 2, 3, 4])
assert [_x.next64() for _ in range(4)] == [11520, 0, 1509978240, 1215971899390074240]


def logsumexp(v):
    m = np.max(v)
    return m + math.log(np.sum(np.exp(v - m)))


def sampled_softmax_nll_exact(logits, log_vars, label, samples, seed):
    """The same draws as recsys (class order within a sample), in float64."""
    rng = NormalRng(seed=seed)
    logits = np.asarray(logits, dtype=np.float64)
    c = len(logits)
    lv = np.asarray(log_vars, dtype=np.float64)
    sig = np.exp(0.5 * (lv if len(lv) == c else np.repeat(lv, c)))
    eps = np.array([[rng.normal() for _ in range(c)] for _ in range(samples)])
    x = logits + sig * eps
    m = x.max(axis=1, keepdims=True)
    ell = (x[:, label] - m[:, 0]) - np.log(np.exp(x - m).sum(axis=1))
    return math.log(samples) - logsumexp(ell)


def main():
    os.makedirs(OUT, exist_ok=True)
    out = []
    w = out.append

    # ------------------------------------------------------------------
    # Kendall's two-task example, trained in PyTorch with the notebook's loss
    # ------------------------------------------------------------------
    rng = np.random.default_rng(20180522)
    torch.manual_seed(0)
    n = 2000
    x = rng.standard_normal((n, 1))
    y1 = 2.0 * x + 8.0 + 10.0 * rng.standard_normal((n, 1))
    y2 = 3.0 * x + 3.0 + 1.0 * rng.standard_normal((n, 1))
    X, Y1, Y2 = (torch.tensor(a) for a in (x, y1, y2))
    params = [torch.zeros(1, requires_grad=True) for _ in range(4)]
    log_vars = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam(params + [log_vars], lr=0.05)
    for _ in range(4000):
        opt.zero_grad()
        p1 = X * params[0] + params[1]
        p2 = X * params[2] + params[3]
        loss = (torch.exp(-log_vars[0]) * (Y1 - p1) ** 2 + log_vars[0]
                + torch.exp(-log_vars[1]) * (Y2 - p2) ** 2 + log_vars[1]).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        r1 = ((Y1 - (X * params[0] + params[1])) ** 2).numpy()[:, 0]
        r2 = ((Y2 - (X * params[2] + params[3])) ** 2).numpy()[:, 0]
        torch_sigma = torch.exp(log_vars / 2).numpy()
    rmse = np.sqrt([r1.mean(), r2.mean()])
    w("CREATE TABLE ref_kendall (i int, losses float8[]);")
    w("INSERT INTO ref_kendall VALUES")
    w(",\n".join("(%d, ARRAY[%s,%s]::float8[])" % (i, f8(a), f8(b))
                 for i, (a, b) in enumerate(zip(r1, r2))) + ";")
    w("CREATE TABLE ref_kendall_expected (task int, rmse float8, torch_sigma float8, true_sigma float8);")
    w("INSERT INTO ref_kendall_expected VALUES (1, %s, %s, 10), (2, %s, %s, 1);"
      % (f8(rmse[0]), f8(torch_sigma[0]), f8(rmse[1]), f8(torch_sigma[1])))

    # ------------------------------------------------------------------
    # Mixed task sets: the closed form against a numerical minimiser
    # ------------------------------------------------------------------
    task_sets = [
        ["regression", "classification"],
        ["classification", "classification", "regression"],
        ["regression"],
        ["binary", "regression", "classification", "regression"],
    ]
    w("CREATE TABLE ref_mtl_rows (set_id int, i int, losses float8[]);")
    w("CREATE TABLE ref_mtl_expected (set_id int, types text[], log_vars float8[], total float8);")
    rows = []
    for sid, types in enumerate(task_sets):
        k = len(types)
        nrow = 500
        scale = rng.uniform(0.05, 20.0, size=k)
        L = rng.exponential(1.0, size=(nrow, k)) * scale
        for i in range(nrow):
            rows.append("(%d, %d, %s)" % (sid, i, arr(L[i])))
        mean = L.mean(axis=0)
        c = torch.tensor([0.5 if t == "regression" else 1.0 for t in types])
        s = torch.zeros(k, requires_grad=True)
        Lt = torch.tensor(L)
        lbfgs = torch.optim.LBFGS([s], lr=1, max_iter=200, tolerance_grad=1e-14,
                                  tolerance_change=1e-16, line_search_fn="strong_wolfe")

        def closure():
            lbfgs.zero_grad()
            obj = (c * torch.exp(-s) * Lt + 0.5 * s).sum(dim=1).mean()
            obj.backward()
            return obj

        for _ in range(5):
            lbfgs.step(closure)
        s_opt = s.detach().numpy()
        # the numerical optimum must be the closed form, or the reference is wrong
        closed = np.log(np.where(c.numpy() == 0.5, mean, 2.0 * mean))
        assert np.allclose(s_opt, closed, atol=1e-7), (s_opt, closed)
        total = float(closure().detach())
        w("INSERT INTO ref_mtl_expected VALUES (%d, %s, %s, %s);"
          % (sid, txtarr(types), arr(s_opt), f8(total)))
    w("INSERT INTO ref_mtl_rows VALUES\n" + ",\n".join(rows) + ";")

    # ------------------------------------------------------------------
    # uncertainty_loss and gaussian_nll at random points
    # ------------------------------------------------------------------
    w("CREATE TABLE ref_unc_loss (id int, losses float8[], log_vars float8[], types text[], expected float8);")
    vals = []
    for i in range(60):
        k = int(rng.integers(1, 6))
        L = rng.exponential(2.0, size=k)
        if i % 7 == 0:
            L[0] = 0.0
        s = rng.uniform(-8.0, 8.0, size=k)
        types = list(rng.choice(["regression", "classification"], size=k))
        if i % 5 == 0:
            types = None        # NULL task_types: all regression
        c = np.array([1.0 if t == "classification" else 0.5 for t in (types or ["regression"] * k)])
        expected = float(np.sum(c * np.exp(-s) * L + 0.5 * s))
        vals.append("(%d, %s, %s, %s, %s)" % (i, arr(L), arr(s), txtarr(types) if types else "NULL",
                                             f8(expected)))
    w("INSERT INTO ref_unc_loss VALUES\n" + ",\n".join(vals) + ";")

    w("CREATE TABLE ref_gauss (id int, y float8, mean float8, log_var float8, expected float8);")
    y = rng.normal(0, 3, size=80)
    mu = rng.normal(0, 3, size=80)
    lv = rng.uniform(-5, 5, size=80)
    gnll = torch.nn.GaussianNLLLoss(full=False, eps=1e-12, reduction="none")
    ref = gnll(torch.tensor(mu), torch.tensor(y), torch.exp(torch.tensor(lv))).numpy()
    w("INSERT INTO ref_gauss VALUES\n" + ",\n".join(
        "(%d, %s, %s, %s, %s)" % (i, f8(y[i]), f8(mu[i]), f8(lv[i]), f8(ref[i])) for i in range(80)) + ";")

    # ------------------------------------------------------------------
    # sampled_softmax_nll
    # ------------------------------------------------------------------
    w("CREATE TABLE ref_ssnll (id int, kind text, logits float8[], log_vars float8[], label int,"
      " samples int, seed int, expected float8, tol float8);")
    vals = []
    cid = 0
    # exact: the same random stream
    for i in range(24):
        c = int(rng.integers(2, 8))
        logits = rng.normal(0, 2, size=c)
        lvs = rng.uniform(-3, 2, size=c if i % 3 else 1)
        label = int(rng.integers(0, c))
        samples = int(rng.choice([1, 2, 7, 100, 333]))
        seed = int(rng.integers(-2 ** 31, 2 ** 31))
        if i == 0:
            seed = 0
        e = sampled_softmax_nll_exact(logits, lvs, label, samples, seed)
        vals.append("(%d, 'exact', %s, %s, %d, %d, %d, %s, 1e-12)"
                    % (cid, arr(logits), arr(lvs), label, samples, seed, f8(e)))
        cid += 1
    # exact over several interrupt blocks (65536 / classes samples each)
    logits = np.array([0.3, -1.2, 2.0])
    lvs = np.array([0.5, -0.5, 1.0])
    e = sampled_softmax_nll_exact(logits, lvs, 1, 50000, 12345)
    vals.append("(%d, 'exact', %s, %s, 1, 50000, 12345, %s, 1e-11)" % (cid, arr(logits), arr(lvs), f8(e)))
    cid += 1
    # statistical: numpy's own generator, many samples
    gen = np.random.default_rng(7)
    for i in range(4):
        c = 4
        logits = gen.normal(0, 1.5, size=c)
        lvs = gen.uniform(-1, 1.5, size=c)
        label = i % c
        T = 400000
        eps = gen.standard_normal((T, c))
        xs = logits + np.exp(0.5 * lvs) * eps
        m = xs.max(axis=1, keepdims=True)
        p = np.exp(xs[:, label] - m[:, 0]) / np.exp(xs - m).sum(axis=1)
        est = -math.log(p.mean())
        # recsys uses 100000 samples: 6 standard errors of both estimates
        tol = 6.0 * (p.std() / p.mean()) * (1 / math.sqrt(100000) + 1 / math.sqrt(T))
        vals.append("(%d, 'monte carlo', %s, %s, %d, 100000, %d, %s, %s)"
                    % (cid, arr(logits), arr(lvs), label, 11 + i, f8(est), f8(tol)))
        cid += 1
    # vanishing noise: plain cross-entropy, also at logits where exp() overflows
    for logits, label in [([1.0, 2.0, 3.0], 0), ([1000.0, 0.0, -1000.0], 2),
                          ([-745.0, -750.0], 1), ([5e4, 5e4 + 1.0, -3.0, 7.0], 0)]:
        ce = float(torch.nn.functional.cross_entropy(torch.tensor([logits]), torch.tensor([label])))
        vals.append("(%d, 'cross entropy', %s, ARRAY[-200]::float8[], %d, 10, 3, %s, 1e-9)"
                    % (cid, arr(logits), label, f8(ce)))
        cid += 1
    w("INSERT INTO ref_ssnll VALUES\n" + ",\n".join(vals) + ";")

    # ------------------------------------------------------------------
    # predictive_variance: MC-dropout samples per item
    # ------------------------------------------------------------------
    w("CREATE TABLE ref_predvar (item int, t int, mean float8, variance float8);")
    w("CREATE TABLE ref_predvar_expected (item int, epistemic float8, aleatoric float8, total float8, tol float8);")
    rows, exp_rows = [], []
    for item in range(30):
        T = [1, 2, 3, 10, 32, 100, 500][item % 7]
        offset = 1e6 if item % 10 == 9 else 0.0
        means = offset + rng.normal(rng.normal(0, 5), rng.uniform(0.01, 3), size=T)
        var = rng.exponential(rng.uniform(0.01, 2), size=T)
        if item == 4:
            var[:] = 0.0
        for t in range(T):
            rows.append("(%d, %d, %s, %s)" % (item, t, f8(means[t]), f8(var[t])))
        epi = float(np.var(means))
        ale = float(np.mean(var))
        # relative tolerance, looser where the offset costs Welford digits
        tol = 1e-7 if offset else 1e-11
        exp_rows.append("(%d, %s, %s, %s, %s)" % (item, f8(epi), f8(ale), f8(epi + ale), f8(tol)))
    w("INSERT INTO ref_predvar VALUES\n" + ",\n".join(rows) + ";")
    w("INSERT INTO ref_predvar_expected VALUES\n" + ",\n".join(exp_rows) + ";")

    with open(os.path.join(OUT, "uncertainty.sql"), "w") as f:
        f.write("-- generated by test/ref/uncertainty.py; do not edit\n")
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
