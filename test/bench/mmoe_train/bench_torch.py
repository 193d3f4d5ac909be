#!/usr/bin/python3
"""PyTorch side of the train_mmoe benchmark (test/bench/mmoe_train/run.sh).

gen OUT      data sets (CSV for COPY) and initial weights (safetensors) of every model:
             - Ma et al. (2018) synthetic regression: two tasks whose weight vectors have
               cosine p in {1, 0.5, 0.1}: y_j = w_j.x + sum_i sin(a_i w_j.x + b_i) + N(0, 0.01^2),
               d = 100, c = 1, m = 10, a, b ~ N(0, 1); MMoE (8 experts [16], towers [8]) and
               shared-bottom (one expert [113], towers [8], the same parameter budget);
             - a two-task binary set with known structure: 20 features, task logits share
               one direction and each has its own (and a sine term), labels Bernoulli.
train OUT    trains the same models from the same initial weights on one thread
             (minibatch Adam, the same epochs, batch size, learning rate, loss weighting)
             and writes OUT/torch_results.json: test losses / AUCs, seconds per epoch.
check OUT    loads the model exported by recsys into the documented PyTorch module and
             compares its scores with recsys.predict's (OUT/db_scores.csv).
"""
import csv
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ref"))
from mmoe_module import MMoE, load_safetensors, save_safetensors  # noqa: E402

torch.set_num_threads(1)

D = 100
N_TRAIN = 8000
N_TEST = 2000
CORRS = [1.0, 0.5, 0.1]
SYN_EPOCHS = 20
BIN_EPOCHS = 10
BATCH = 256
LR = 0.002


def syn_config(model):
    hidden = [16] if model == "mmoe" else [113]
    count = 8 if model == "mmoe" else 1
    return {"kind": "mmoe", "input_dim": D, "experts": {"count": count, "hidden": hidden},
            "tasks": [{"name": "y1", "type": "regression", "tower": [8]},
                      {"name": "y2", "type": "regression", "tower": [8]}]}


BIN_CONFIG = {"kind": "mmoe", "input_dim": 20, "experts": {"count": 4, "hidden": [32]},
              "tasks": [{"name": "click", "type": "binary", "tower": [8]},
                        {"name": "like", "type": "binary", "tower": [8]}]}


def synthetic(p, rng):
    u = np.linalg.qr(rng.normal(size=(D, 2)))[0].T
    w1 = u[0]
    w2 = p * u[0] + math.sqrt(1 - p * p) * u[1]
    alpha = rng.normal(size=10)
    beta = rng.normal(size=10)
    x = rng.normal(size=(N_TRAIN + N_TEST, D))
    ys = []
    for w in (w1, w2):
        s = x @ w
        ys.append(s + np.sin(alpha[None, :] * s[:, None] + beta[None, :]).sum(1) + rng.normal(scale=0.01, size=len(s)))
    return x.astype(np.float32), np.stack(ys, 1).astype(np.float32)


def binary(rng):
    n = 20000 + 5000
    x = rng.normal(size=(n, 20))
    a, b, c = rng.normal(size=(3, 20)) / math.sqrt(20)
    l1 = 1.5 * x @ a + 1.0 * x @ b + np.sin(2 * x @ c)
    l2 = 1.5 * x @ a - 1.0 * x @ b + np.cos(2 * x @ c) - 0.5
    p = 1 / (1 + np.exp(-np.stack([l1, l2], 1)))
    y = (rng.random(p.shape) < p).astype(np.float32)
    return x.astype(np.float32), y, p


def write_csv(path, x, y):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        for i in range(len(x)):
            w.writerow([i, "{" + ",".join("%.9g" % v for v in x[i]) + "}"] + ["%.9g" % v for v in y[i]])


def gen(out):
    rng = np.random.default_rng(2018)
    sets = {}
    for p in CORRS:
        x, y = synthetic(p, rng)
        name = "syn_%g" % p
        write_csv(os.path.join(out, name + "_train.csv"), x[:N_TRAIN], y[:N_TRAIN])
        write_csv(os.path.join(out, name + "_test.csv"), x[N_TRAIN:], y[N_TRAIN:])
        for model in ("mmoe", "sb"):
            torch.manual_seed(int(p * 100) + (0 if model == "mmoe" else 1))
            m = MMoE(syn_config(model))
            with open(os.path.join(out, "%s_%s.safetensors" % (name, model)), "wb") as f:
                f.write(save_safetensors(m.state_dict()))
        sets[name] = True
    x, y, prob = binary(rng)
    write_csv(os.path.join(out, "bin_train.csv"), x[:20000], y[:20000])
    write_csv(os.path.join(out, "bin_test.csv"), x[20000:], y[20000:])
    np.save(os.path.join(out, "bin_test_prob.npy"), prob[20000:])
    torch.manual_seed(99)
    with open(os.path.join(out, "bin.safetensors"), "wb") as f:
        f.write(save_safetensors(MMoE(BIN_CONFIG).state_dict()))
    with open(os.path.join(out, "configs.json"), "w") as f:
        json.dump({"syn_mmoe": syn_config("mmoe"), "syn_sb": syn_config("sb"), "bin": BIN_CONFIG,
                   "epochs_syn": SYN_EPOCHS, "epochs_bin": BIN_EPOCHS, "batch": BATCH, "lr": LR}, f)


def read_csv(path, ntasks=2):
    x, y = [], []
    with open(path) as f:
        for row in csv.reader(f):
            x.append([float(v) for v in row[1][1:-1].split(",")])
            y.append([float(v) for v in row[2:2 + ntasks]])
    return torch.tensor(x), torch.tensor(y)


def load_init(model, path):
    with open(path, "rb") as f:
        tensors, _ = load_safetensors(f.read())
    model.load_state_dict({k: v.float() for k, v in tensors.items()})


def auc(score, label):
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    lab = label[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        ranks[i:j] = (i + 1 + j) / 2.0
        i = j
    pos = lab.sum()
    return float((ranks[lab > 0.5].sum() - pos * (pos + 1) / 2) / (pos * (len(s) - pos)))


def fit(config, init, x, y, epochs, weighting, seed):
    """Minibatch Adam as train_mmoe does it; returns the model and seconds per epoch."""
    model = MMoE(config).float()
    load_init(model, init)
    tasks = config["tasks"]
    log_vars = torch.nn.Parameter(torch.zeros(len(tasks)))
    opt = torch.optim.Adam(list(model.parameters()) + ([log_vars] if weighting == "uncertainty" else []), lr=LR)
    gen_ = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x), generator=gen_)
        for s in range(0, len(x), BATCH):
            idx = perm[s:s + BATCH]
            out = model(x[idx])
            total = 0.0
            for t, task in enumerate(tasks):
                if task["type"] == "binary":
                    p = out[:, t].clamp(1e-7, 1 - 1e-7)
                    L = torch.nn.functional.binary_cross_entropy(p, y[idx, t])
                    a = torch.exp(-log_vars[t])
                else:
                    L = ((out[:, t] - y[idx, t]) ** 2).mean()
                    a = 0.5 * torch.exp(-log_vars[t])
                total = total + (a * L + 0.5 * log_vars[t] if weighting == "uncertainty" else L)
            opt.zero_grad()
            total.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return model, float(np.median(times))


def train(out):
    res = {}
    for p in CORRS:
        name = "syn_%g" % p
        x, y = read_csv(os.path.join(out, name + "_train.csv"))
        xt, yt = read_csv(os.path.join(out, name + "_test.csv"))
        for model in ("mmoe", "sb"):
            m, sec = fit(syn_config(model), os.path.join(out, "%s_%s.safetensors" % (name, model)),
                         x, y, SYN_EPOCHS, "fixed", 1)
            with torch.no_grad():
                pred = m(xt)
            mse = ((pred - yt) ** 2).mean(0).tolist()
            res["%s_%s" % (name, model)] = {"test_mse": mse, "seconds_per_epoch": sec}
    x, y = read_csv(os.path.join(out, "bin_train.csv"))
    xt, yt = read_csv(os.path.join(out, "bin_test.csv"))
    prob = np.load(os.path.join(out, "bin_test_prob.npy"))
    res["bin_bayes_auc"] = [auc(prob[:, t], yt[:, t].numpy()) for t in range(2)]
    for weighting in ("uncertainty", "fixed"):
        m, sec = fit(BIN_CONFIG, os.path.join(out, "bin.safetensors"), x, y, BIN_EPOCHS, weighting, 2)
        with torch.no_grad():
            pred = m(xt).numpy()
        res["bin_" + weighting] = {"auc": [auc(pred[:, t], yt[:, t].numpy()) for t in range(2)],
                                   "seconds_per_epoch": sec}
    with open(os.path.join(out, "torch_results.json"), "w") as f:
        json.dump(res, f)
    print(json.dumps(res))


def check(out):
    with open(os.path.join(out, "bin_trained.safetensors"), "rb") as f:
        tensors, meta = load_safetensors(f.read())
    config = json.loads(meta["recsys"])
    model = MMoE(config).double()
    model.load_state_dict({k: v.double() for k, v in tensors.items()})
    xt, _ = read_csv(os.path.join(out, "bin_test.csv"))
    db = {}
    with open(os.path.join(out, "db_scores.csv")) as f:
        for row in csv.reader(f):
            db[int(row[0])] = [float(v) for v in row[1][1:-1].split(",")]
    with torch.no_grad():
        pred = model(xt.double()).numpy()
    err = max(abs(pred[i, t] - db[i][t]) for i in db for t in range(2))
    print(json.dumps({"export_max_abs_diff": err, "rows": len(db)}))


if __name__ == "__main__":
    {"gen": gen, "train": train, "check": check}[sys.argv[1]](sys.argv[2])
