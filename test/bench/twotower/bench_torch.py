#!/usr/bin/python3
"""The benchmark's two-tower model in PyTorch on one thread, for seconds per epoch.

The towers are the module of doc/two-tower.md built from the config recsys stored (the
same fitted specs, layers and widths); training is the same objective and estimator as
recsys's sogram: logistic loss on the batch's pairs, + gramian_weight times the surrogate
(1/B) sum_b [rho_b <u_b, G_v u_b> + rho'_b <v_b, G_u v_b>] with SOGram's moving averages
(started from the exact Gramians), Adam, shuffled minibatches.  Bags are padded and
mean-pooled with a mask (one gather per bag per step).

Usage: bench_torch.py DATA CONFIG_JSON EPOCHS float32|float64
Prints one JSON object: seconds of each epoch, and the mean loss of the last one.
"""
import csv
import json
import os
import re
import sys
import time

import numpy as np
import torch

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
DOC = open(os.path.join(HERE, "..", "..", "..", "doc", "two-tower.md")).read()
env = {}
exec(re.search(r"```python\n(# recsys_two_tower\.py.*?)```", DOC, re.S).group(1), env)
Tower = env["Tower"]

data, cfg_path, epochs, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
dt = torch.float64 if dtype == "float64" else torch.float32
cfg = json.load(open(cfg_path))
opt = cfg["options"]
dim, B = opt["dim"], opt["batch_size"]


def rows_of(name, numeric, ints, arrays):
    out = []
    for r in csv.DictReader(open(os.path.join(data, name))):
        for k in numeric:
            r[k] = float(r[k])
        for k in ints:
            r[k] = int(r[k])
        for k in arrays:
            r[k] = r[k].strip("{}").split(",")
        out.append(r)
    return out


users = rows_of("users.csv", ["age", "activity"], ["user_id", "region"], [])
items = rows_of("items.csv", ["year", "price"], ["item_id"], ["tags"])
pairs = np.loadtxt(os.path.join(data, "train.csv"), delimiter=",", skiprows=1, dtype=np.int64)
pu = torch.tensor(pairs[:, 0] - 1)
pi = torch.tensor(pairs[:, 1] - 1)


class Padded(torch.nn.Module):
    """A tower of the doc's module over precomputed inputs: dense rows and padded bags"""

    def __init__(self, tower, rows):
        super().__init__()
        self.t = tower.to(dt)
        dense, bags = tower.encode(rows)
        self.dense = dense.to(dt)
        self.idx, self.mask = [], []
        for ids, offsets in bags:
            ends = torch.cat([offsets[1:], torch.tensor([len(ids)])])
            L = max(int((ends - offsets).max()), 1)
            idx = torch.zeros(len(rows), L, dtype=torch.long)
            mask = torch.zeros(len(rows), L, dtype=dt)
            for r in range(len(rows)):
                n = int(ends[r] - offsets[r])
                idx[r, :n] = ids[offsets[r]:ends[r]]
                mask[r, :n] = 1.0
            self.idx.append(idx)
            self.mask.append(mask / mask.sum(1, keepdim=True).clamp_min(1.0))

    def forward(self, rows):
        parts = [self.dense[rows]]
        for e, idx, mask in zip(self.t.embeddings.values(), self.idx, self.mask):
            parts.append((e.weight[idx[rows]] * mask[rows].unsqueeze(2)).sum(1))
        x = torch.cat(parts, 1)
        for layer in self.t.layers[:-1]:
            x = self.t.activation(layer(x))
        return self.t.layers[-1](x)


torch.manual_seed(0)
ut = Padded(Tower(cfg["user"], dim, opt["normalize"]), users)
it = Padded(Tower(cfg["item"], dim, opt["normalize"]), items)
params = list(ut.parameters()) + list(it.parameters())
adam = torch.optim.Adam(params, lr=opt["learning_rate"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"])
S = len(pairs)
ucount = torch.bincount(pu, minlength=len(users)).to(dt)
icount = torch.bincount(pi, minlength=len(items)).to(dt)
trained_u = torch.nonzero(ucount).flatten()
trained_i = torch.nonzero(icount).flatten()
rho_u = S / (len(trained_u) * ucount.clamp_min(1))
rho_v = S / (len(trained_i) * icount.clamp_min(1))
w, alpha = opt["gramian_weight"], opt["alpha"]
with torch.no_grad():
    U = ut(trained_u)
    V = it(trained_i)
    gu, gv = U.T @ U / len(trained_u), V.T @ V / len(trained_i)

seconds, loss_sum = [], 0.0
gen = torch.Generator().manual_seed(1)
for epoch in range(epochs):
    t0 = time.perf_counter()
    order = torch.randperm(S, generator=gen)
    loss_sum, steps = 0.0, 0
    for s in range(0, S, B):
        b = order[s:s + B]
        bu, bi = pu[b], pi[b]
        u, v = ut(bu), it(bi)
        score = (u * v).sum(1)
        observed = torch.nn.functional.softplus(-score).mean()
        ru, rv = rho_u[bu], rho_v[bi]
        with torch.no_grad():
            ud, vd = u.detach(), v.detach()
            gu = (1 - alpha) * gu + alpha * (ru[:, None] * ud).T @ ud / len(b)
            gv = (1 - alpha) * gv + alpha * (rv[:, None] * vd).T @ vd / len(b)
        penalty = w / len(b) * ((ru * ((u @ gv) * u).sum(1)).sum() + (rv * ((v @ gu) * v).sum(1)).sum())
        loss = observed + penalty
        adam.zero_grad()
        loss.backward()
        adam.step()
        loss_sum += float(observed)
        steps += 1
    seconds.append(time.perf_counter() - t0)
print(json.dumps({"dtype": dtype, "seconds": seconds, "observed": loss_sum / steps}))
