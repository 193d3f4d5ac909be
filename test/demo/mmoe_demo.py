#!/usr/bin/python3
"""Write the safetensors file of the demo's small PyTorch MMoE ranker (seeded, config in
__metadata__.recsys) to test/demo/ranker.safetensors, which is committed so that the demo
needs neither Python nor PyTorch.  Run it again only to change the demo model."""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from mmoe_module import MMoE, save_safetensors  # noqa: E402

CONFIG = {"kind": "mmoe", "input_dim": 8,
          "experts": {"count": 4, "hidden": [16, 8], "activation": "relu"},
          "gate": {"type": "noisy_top_k", "k": 2},
          "tasks": [{"name": "click", "type": "binary", "tower": [8]},
                    {"name": "watch_time", "type": "regression", "tower": [8]}],
          "categorical": [{"name": "device", "vocab": 3, "dim": 2}],
          "shallow_tower": {"position_buckets": 10},
          "dropout": 0.1}

torch.manual_seed(42)
model = MMoE(CONFIG)
blob = save_safetensors(model.state_dict(), {"recsys": json.dumps(CONFIG), "trained_by": "demo"})
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ranker.safetensors")
with open(out, "wb") as f:
    f.write(blob)
