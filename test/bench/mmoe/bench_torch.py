#!/usr/bin/python3
"""Write the benchmark MMoE (input 128, 8 experts of [256, 128], 2 tasks with towers [64]) as
safetensors and time PyTorch's batched float32 forward of it on one thread.

Usage: bench_torch.py OUTDIR ROWS   (writes OUTDIR/mmoe_bench.safetensors, prints JSON)
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "ref"))
from mmoe_module import MMoE, save_safetensors  # noqa: E402

CONFIG = {"kind": "mmoe", "input_dim": 128,
          "experts": {"count": 8, "hidden": [256, 128], "activation": "relu"},
          "gate": {"type": "softmax"},
          "tasks": [{"name": "click", "type": "binary", "tower": [64]},
                    {"name": "watch_time", "type": "regression", "tower": [64]}]}


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


def main(outdir, rows):
    torch.manual_seed(7)
    torch.set_num_threads(1)
    model = MMoE(CONFIG).eval()
    with open(os.path.join(outdir, "mmoe_bench.safetensors"), "wb") as f:
        f.write(save_safetensors(model.state_dict(), {"recsys": json.dumps(CONFIG)}))
    x = torch.randn(rows, 128)
    result = {"torch_version": torch.__version__, "threads": torch.get_num_threads(), "rows": rows}
    with torch.inference_mode():
        fused = fused_forward(model)
        assert torch.allclose(fused(x[:64]), model(x[:64]), atol=1e-5)
        for name, fn in (("module", model), ("fused", fused)):
            for batch in (256, 1024, 4096):
                fn(x[:batch])  # warm up
                t0 = time.perf_counter()
                for i in range(0, rows, batch):
                    fn(x[i:i + batch])
                result["rows_per_s_%s_batch_%d" % (name, batch)] = rows / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        n1 = min(rows, 20000)
        for i in range(n1):
            model(x[i:i + 1])
        result["rows_per_s_module_batch_1"] = n1 / (time.perf_counter() - t0)
    result["rows_per_s_best"] = max(v for k, v in result.items() if k.startswith("rows_per_s_"))
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
