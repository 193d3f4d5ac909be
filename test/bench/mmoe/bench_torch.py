#!/usr/bin/python3
"""Write a benchmark MMoE as safetensors and time PyTorch on one thread: the batched float32
forward (the module, and a fused form), one row a call, and "top 10 per user" (batched
scoring of every candidate plus numpy argpartition per user of 100 candidates), and the
bytes of weights one row reads (test/bench/mmoe/readbw.c turns them into a bound).

Models: "bench" (input 128, 8 experts of [256, 128], 2 tasks with towers [64]) and
"small" (input 32, 4 experts of [64, 32], 2 tasks with towers [16]).

Usage: bench_torch.py OUTDIR ROWS [MODEL]  (writes OUTDIR/mmoe_MODEL.safetensors, prints JSON)
"""
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ref"))
from mmoe_module import MMoE, save_safetensors  # noqa: E402

CONFIGS = {
    "bench": {"kind": "mmoe", "input_dim": 128,
              "experts": {"count": 8, "hidden": [256, 128], "activation": "relu"},
              "gate": {"type": "softmax"},
              "tasks": [{"name": "click", "type": "binary", "tower": [64]},
                        {"name": "watch_time", "type": "regression", "tower": [64]}]},
    "small": {"kind": "mmoe", "input_dim": 32,
              "experts": {"count": 4, "hidden": [64, 32], "activation": "relu"},
              "gate": {"type": "softmax"},
              "tasks": [{"name": "click", "type": "binary", "tower": [16]},
                        {"name": "watch_time", "type": "regression", "tower": [16]}]},
}
PER_USER = 100
TOP = 10
TASK_WEIGHTS = (0.7, 0.3)


def fused_forward(model):
    """The same model with the experts fused into one matmul (layer 1) and one bmm per later
    layer: a stronger PyTorch baseline than the module's loop over experts."""
    w1 = torch.cat([e[0].weight for e in model.experts])          # [n*h1, d]
    b1 = torch.cat([e[0].bias for e in model.experts])
    rest = [(torch.stack([e[l].weight.T for e in model.experts]),    # [n, in, out]
             torch.stack([e[l].bias for e in model.experts]).unsqueeze(1))
            for l in range(1, len(model.experts[0]))]
    gw = torch.cat([g.weight for g in model.gates])                  # [T*n, d]
    gb = torch.cat([g.bias for g in model.gates])
    n = len(model.experts)
    t = len(model.gates)

    def forward(x):
        b = x.shape[0]
        h = torch.relu(torch.addmm(b1, x, w1.T)).view(b, n, -1).transpose(0, 1)  # [n, B, h1]
        for w, bias in rest:
            h = torch.relu(torch.baddbmm(bias, h, w))
        g = torch.softmax(torch.addmm(gb, x, gw.T).view(b, t, n), dim=-1)        # [B, T, n]
        mix = torch.einsum("btn,nbh->tbh", g, h)
        out = []
        for k, tower in enumerate(model.towers):
            y = mix[k]
            for layer in tower[:-1]:
                y = torch.relu(layer(y))
            y = tower[-1](y)[:, 0]
            out.append(torch.sigmoid(y) if model.config["tasks"][k]["type"] == "binary" else y)
        return torch.stack(out, dim=1)

    return forward


def main(outdir, rows, name):
    config = CONFIGS[name]
    torch.manual_seed(7)
    torch.set_num_threads(1)
    model = MMoE(config).eval()
    with open(os.path.join(outdir, "mmoe_%s.safetensors" % name), "wb") as f:
        f.write(save_safetensors(model.state_dict(), {"recsys": json.dumps(config)}))
    rows = rows // PER_USER * PER_USER
    x = torch.randn(rows, config["input_dim"])
    weight_bytes = 4 * sum(p.numel() for p in model.parameters())
    result = {"model": name, "torch_version": torch.__version__, "threads": torch.get_num_threads(),
              "rows": rows, "weight_bytes_per_row": weight_bytes}
    with torch.inference_mode():
        fused = fused_forward(model)
        assert torch.allclose(fused(x[:64]), model(x[:64]), atol=1e-5)
        best_fn, best_batch, best_rate = None, None, 0.0
        for fname, fn in (("module", model), ("fused", fused)):
            for batch in (256, 1024, 4096):
                fn(x[:batch])  # warm up
                t0 = time.perf_counter()
                for i in range(0, rows, batch):
                    fn(x[i:i + batch])
                rate = rows / (time.perf_counter() - t0)
                result["rows_per_s_%s_batch_%d" % (fname, batch)] = rate
                if rate > best_rate:
                    best_fn, best_batch, best_rate = fn, batch, rate
        result["rows_per_s_best"] = best_rate
        # top 10 per user: score every candidate with the fastest batched form, then
        # argpartition each user's 100 scores and sort the 10 kept
        w = torch.tensor(TASK_WEIGHTS)
        t0 = time.perf_counter()
        scores = np.empty(rows, dtype=np.float32)
        for i in range(0, rows, best_batch):
            scores[i:i + best_batch] = (best_fn(x[i:i + best_batch]) @ w).numpy()
        per_user = scores.reshape(-1, PER_USER)
        part = np.argpartition(-per_user, TOP, axis=1)[:, :TOP]
        kept = np.take_along_axis(per_user, part, axis=1)
        order = np.argsort(-kept, axis=1, kind="stable")
        top = np.take_along_axis(part, order, axis=1)
        result["rows_per_s_top10_per_user"] = rows / (time.perf_counter() - t0)
        result["top10_users"] = int(top.shape[0])
        t0 = time.perf_counter()
        n1 = min(rows, 20000)
        for i in range(n1):
            model(x[i:i + 1])
        result["rows_per_s_module_batch_1"] = n1 / (time.perf_counter() - t0)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "bench")
