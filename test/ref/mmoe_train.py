#!/usr/bin/python3
"""Reference training steps for the train_mmoe pgTAP suite (test/mmoe_train.sql).

A small MMoE with every option on (categorical embeddings, noisy top-k gates trained
with noise and the load-balancing loss, expert dropout, hidden dropout, latent cross,
shallow position tower with position dropout, partly NULL labels) is built with the
documented PyTorch module (test/ref/mmoe_module.py) and trained in float64 by PyTorch's
autograd and torch.optim.Adam.  The random draws are recsys's: every mask and noise
value is MmoeDropoutUniform(seed, key * R + slot) (SplitMix64, see mmoe_module), with
key = epoch * rows + row and the slots documented in src/kernel/mmoe_backward.h, so the same
seed gives the same masks here and in the database.

Writes OUTDIR/mmoe_train_ref.sql: the config, the initial weights (safetensors, F32),
the rows, and for each run the losses per step, the gradients of the first step and
the parameters after the first Adam step (and after the last step).

Usage: mmoe_train.py OUTDIR
"""
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mmoe_module import MMoE, mc_masks, save_safetensors, splitmix_uniform  # noqa: E402

torch.set_num_threads(1)
torch.set_default_dtype(torch.float64)

CONFIG = {"kind": "mmoe", "input_dim": 5,
          "experts": {"count": 4, "hidden": [6, 5]},
          "gate": {"type": "noisy_top_k", "k": 2},
          "tasks": [{"name": "click", "type": "binary", "tower": [4]},
                    {"name": "rating", "type": "regression", "tower": [3]}],
          "categorical": [{"name": "device", "vocab": 4, "dim": 2}],
          "latent_cross": {"context_dim": 3},
          "shallow_tower": {"position_buckets": 5},
          "dropout": 0.2}
ROWS = 40
SEED = 7
LR = 0.01

# runs: name -> (options, loss weighting, task weights, epochs)
RUNS = {
    "all": ({"expert_dropout": 0.3, "position_dropout": 0.3, "balance_weight": 0.1}, "uncertainty", None, 6),
    "fixed": ({"expert_dropout": 0.3, "position_dropout": 0.3, "balance_weight": 0.1,
               "task_weights": [0.7, 1.5]}, "fixed", [0.7, 1.5], 3),
}


def uniforms(seed, keys, slots, start, count):
    """Draws [rows, count] at slots start.. of each row's key."""
    idx = (keys.astype(np.uint64)[:, None] * np.uint64(slots) + np.uint64(start)
           + np.arange(count, dtype=np.uint64)[None, :])
    return torch.from_numpy(splitmix_uniform(seed, idx))


def cv_squared(x):
    if x.shape[0] < 2:
        return torch.zeros(())
    return x.var(unbiased=False) / (x.mean() ** 2 + 1e-10)


def objective(model, log_vars, data, keys, opts, weighting, task_weights, stats=None):
    """The training objective of one step over the rows of data (float64 autograd)."""
    cfg = model.config
    units, sites = model.dropout_units()
    n = cfg["experts"]["count"]
    tasks = cfg["tasks"]
    T = len(tasks)
    P = cfg["shallow_tower"]["position_buckets"]
    k = cfg["gate"]["k"]
    slots = units + n + 1 + 2 * T * n
    rate = cfg.get("dropout", 0.0)
    features, cat, ctx, pos, labels = data

    def drop(h, site):
        if rate <= 0:
            return h
        keep = uniforms(SEED, keys, slots, sites[site], h.shape[1]) >= rate
        return h * keep / (1.0 - rate)

    z = model.input(features, cat)
    outs = []
    for i, expert in enumerate(model.experts):
        h = z
        for l, layer in enumerate(expert):
            h = drop(torch.relu(layer(h)), ("e", i, l))
        outs.append(h)
    e = torch.stack(outs, dim=1)
    pe = opts.get("expert_dropout", 0.0)
    keep_e = (uniforms(SEED, keys, slots, units, n) >= pe).double() if pe > 0 else torch.ones(len(keys), n)
    pp = opts.get("position_dropout", 0.1)
    dropped = uniforms(SEED, keys, slots, units + n, 1)[:, 0] < pp
    pos_used = torch.where((pos < 0) | dropped, torch.full_like(pos, P), pos)
    cross = 1.0 + model.latent_cross(ctx)
    bw = opts.get("balance_weight", 0.01)
    total = torch.zeros(())
    for t, task in enumerate(tasks):
        gate = model.gates[t]
        clean = z @ gate.weight.T + gate.bias
        raw = z @ gate.noise.weight.T
        sigma = torch.nn.functional.softplus(raw) + 1e-2
        u = uniforms(SEED, keys, slots, units + n + 1 + 2 * t * n, 2 * n)
        eps = torch.sqrt(-2.0 * torch.log(1.0 - u[:, 0::2])) * torch.cos(2.0 * math.pi * u[:, 1::2])
        noisy = clean + eps * sigma
        top = torch.topk(noisy, k + 1, dim=-1)
        masked = torch.full_like(noisy, float("-inf")).scatter(-1, top.indices[:, :k], top.values[:, :k])
        g = torch.softmax(masked, dim=-1)
        if bw > 0:
            imp = g.sum(0)
            thr_in = top.values[:, k:k + 1]
            thr_out = top.values[:, k - 1:k]
            is_in = noisy > thr_in
            den = math.sqrt(2.0) * sigma + 1e-20
            p_in = 0.5 * (1.0 + torch.erf((clean - thr_in) / den))
            p_out = 0.5 * (1.0 + torch.erf((clean - thr_out) / den))
            load = torch.where(is_in, p_in, p_out).sum(0)
            total = total + bw * (cv_squared(imp) + cv_squared(load))
        if pe > 0:
            s = (g * keep_e).sum(1, keepdim=True)
            gp = torch.where(s > 0, g * keep_e / torch.where(s > 0, s, torch.ones_like(s)), g)
        else:
            gp = g
        h = cross * (gp.unsqueeze(2) * e).sum(dim=1)
        tower = model.towers[t]
        for l, layer in enumerate(tower[:-1]):
            h = drop(torch.relu(layer(h)), ("t", t, l))
        logit = tower[-1](h)[:, 0] + model.shallow["position"].weight[pos_used, t]
        y = labels[:, t]
        mask = ~torch.isnan(y)
        if task["type"] == "binary":
            L = torch.nn.functional.binary_cross_entropy_with_logits(logit[mask], y[mask])
        else:
            L = ((logit[mask] - y[mask]) ** 2).mean()
        if stats is not None:
            stats.append(float(L))
        if weighting == "uncertainty":
            a = (1.0 if task["type"] == "binary" else 0.5) * torch.exp(-log_vars[t])
            total = total + a * L + 0.5 * log_vars[t]
        else:
            total = total + task_weights[t] * L
    return total


def sql_array(values):
    return "'{" + ",".join(repr(float(v)) for v in values) + "}'"


def main():
    out = sys.argv[1]
    torch.manual_seed(11)
    model = MMoE(CONFIG)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    blob = save_safetensors(state)
    # start from the float32 values the database reads
    model.load_state_dict({k: v.float().double() for k, v in state.items()})
    init = {k: v.detach().clone() for k, v in model.state_dict().items()}

    rng = np.random.default_rng(5)
    feats = rng.normal(size=(ROWS, 5)).astype(np.float32)
    cat = rng.integers(0, 4, size=(ROWS, 1))
    ctx = (rng.normal(size=(ROWS, 3)) * 0.5).astype(np.float32)
    pos = rng.integers(-1, 5, size=ROWS)  # -1 = NULL
    y1 = (rng.random(ROWS) < 0.4).astype(np.float64)
    y2 = rng.normal(size=ROWS).astype(np.float32).astype(np.float64)
    y1[rng.random(ROWS) < 0.15] = np.nan
    y2[rng.random(ROWS) < 0.15] = np.nan
    data = (torch.from_numpy(feats.astype(np.float64)), torch.from_numpy(cat), torch.from_numpy(ctx.astype(np.float64)),
            torch.from_numpy(pos), torch.from_numpy(np.stack([y1, y2], axis=1)))

    lines = ["CREATE TEMP TABLE mt_ref (config jsonb, weights bytea, seed bigint, lr float8);",
             "INSERT INTO mt_ref VALUES ('%s', '\\x%s', %d, %r);" % (json.dumps(CONFIG), blob.hex(), SEED, LR),
             "CREATE TEMP TABLE mt_rows (i int, f real[], cat int[], ctx real[], pos int, y1 float8, y2 float8);"]
    for r in range(ROWS):
        lines.append("INSERT INTO mt_rows VALUES (%d, %s, '{%d}', %s, %s, %s, %s);" % (
            r, sql_array(feats[r]), cat[r, 0], sql_array(ctx[r]), "NULL" if pos[r] < 0 else str(pos[r]),
            "NULL" if np.isnan(y1[r]) else repr(y1[r]), "NULL" if np.isnan(y2[r]) else repr(y2[r])))
    lines += ["CREATE TEMP TABLE mt_steps (run text, epoch int, loss float8, task_losses float8[], log_vars float8[]);",
              "CREATE TEMP TABLE mt_grads (run text, name text, grad float8[]);",
              "CREATE TEMP TABLE mt_params (run text, after_epoch int, name text, value float8[]);",
              "CREATE TEMP TABLE mt_scores (run text, i int, scores float8[]);",
              "CREATE TEMP TABLE mt_runs (run text, options jsonb, weighting text, epochs int);",
              "CREATE TEMP TABLE mt_mc (i int, mean float8[], variance float8[]);"]

    for run, (opts, weighting, task_weights, epochs) in RUNS.items():
        lines.append("INSERT INTO mt_runs VALUES ('%s', '%s', '%s', %d);" % (run, json.dumps(opts), weighting, epochs))
        model.load_state_dict(init)
        log_vars = torch.nn.Parameter(torch.zeros(2))
        params = list(model.parameters()) + [log_vars]
        optim = torch.optim.Adam(params, lr=LR)
        for ep in range(epochs):
            keys = np.arange(ROWS, dtype=np.uint64) + np.uint64(ep * ROWS)
            optim.zero_grad()
            stats = []
            loss = objective(model, log_vars, data, keys, opts, weighting, task_weights, stats)
            loss.backward()
            if ep == 0:
                for name, p in model.named_parameters():
                    lines.append("INSERT INTO mt_grads VALUES ('%s', '%s', %s);"
                                 % (run, name, sql_array(p.grad.flatten().numpy())))
                lines.append("INSERT INTO mt_grads VALUES ('%s', 'log_vars', %s);"
                             % (run, sql_array(log_vars.grad.numpy() if weighting == "uncertainty" else [0, 0])))
            optim.step()
            lines.append("INSERT INTO mt_steps VALUES ('%s', %d, %r, %s, %s);"
                         % (run, ep + 1, float(loss), sql_array(stats), sql_array(log_vars.detach().numpy())))
            if ep == 0 or ep == epochs - 1:
                for name, p in model.named_parameters():
                    lines.append("INSERT INTO mt_params VALUES ('%s', %d, '%s', %s);"
                                 % (run, ep + 1, name, sql_array(p.detach().flatten().numpy())))
        # serving scores of the trained model (no noise, no dropout, position as given)
        with torch.no_grad():
            scores = model(data[0], data[1], data[2], data[3])
        for r in range(ROWS):
            lines.append("INSERT INTO mt_scores VALUES ('%s', %d, %s);" % (run, r, sql_array(scores[r].numpy())))
        # MC dropout of the trained model: the masks recsys.predict_mc draws for 16 samples, seed 1
        if run == "all":
            masks = mc_masks(model, CONFIG["dropout"], 1, 16)
            with torch.no_grad():
                for r in range(ROWS):
                    y = model(*(a[r:r + 1].repeat(16, *([1] * (a.dim() - 1))) for a in data[:4]), masks)
                    lines.append("INSERT INTO mt_mc VALUES (%d, %s, %s);" % (
                        r, sql_array(y.mean(0).numpy()), sql_array(y.var(0, unbiased=False).numpy())))

    with open(os.path.join(out, "mmoe_train_ref.sql"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
