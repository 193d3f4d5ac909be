"""Reference PyTorch MMoE whose state_dict follows recsys's import contract.

Tensor names (PyTorch nn.Linear layout: weight [out, in], bias [out]):

  experts.{i}.{l}.weight|bias       expert i, linear layer l (each followed by ReLU)
  gates.{t}.weight|bias             [n_experts, input], one gate per task
  gates.{t}.noise.weight            noisy_top_k only, used in training only
  towers.{t}.{l}.weight|bias        hidden layers (ReLU), then a last layer to 1 output
  embeddings.{name}.weight          [vocab, dim] per categorical feature
  latent_cross.weight|bias          [h_last, context_dim], [h_last]
  shallow.position.weight           [P + 1, n_tasks]; row P = missing position

Also a small safetensors writer/reader (the format: 8-byte little-endian header
length, JSON header, raw little-endian data), so that no package beyond
Debian's python3-torch is needed.
"""
import json
import struct

import numpy as np
import torch
from torch import nn

DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
}


class NoisyGate(nn.Module):
    """Shazeer et al.'s noisy top-k gate; at serving there is no noise."""

    def __init__(self, d, n, k):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n, d) * 0.5)
        self.bias = nn.Parameter(torch.randn(n) * 0.5)
        self.noise = nn.Linear(d, n, bias=False)
        self.k = k

    def forward(self, z):
        logits = z @ self.weight.T + self.bias
        top = torch.topk(logits, self.k, dim=-1)
        masked = torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)
        return torch.softmax(masked, dim=-1)


class SoftmaxGate(nn.Linear):
    def forward(self, z):
        return torch.softmax(super().forward(z), dim=-1)


class MMoE(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        cats = config.get("categorical", [])
        bags = config.get("multi_categorical", [])
        self.input_width = config["input_dim"] + sum(c["dim"] for c in cats) + sum(c["dim"] for c in bags)
        hidden = config["experts"]["hidden"]
        n = config["experts"]["count"]
        if cats or bags:
            # embedding bags (mean) share the embeddings.{name}.weight names of the format
            self.embeddings = nn.ModuleDict({c["name"]: nn.Embedding(c["vocab"], c["dim"]) for c in cats})
            for c in bags:
                self.embeddings[c["name"]] = nn.EmbeddingBag(c["vocab"], c["dim"], mode="mean")
        widths = [self.input_width] + hidden
        self.experts = nn.ModuleList(
            nn.ModuleList(nn.Linear(widths[l], widths[l + 1]) for l in range(len(hidden))) for _ in range(n))
        gate = config.get("gate", {"type": "softmax"})
        tasks = config["tasks"]
        if gate["type"] == "noisy_top_k":
            self.gates = nn.ModuleList(NoisyGate(self.input_width, n, gate["k"]) for _ in tasks)
        else:
            self.gates = nn.ModuleList(SoftmaxGate(self.input_width, n) for _ in tasks)
        towers = []
        for t in tasks:
            tw = [hidden[-1]] + t.get("tower", []) + [1]
            towers.append(nn.ModuleList(nn.Linear(tw[l], tw[l + 1]) for l in range(len(tw) - 1)))
        self.towers = nn.ModuleList(towers)
        if "latent_cross" in config:
            self.latent_cross = nn.Linear(config["latent_cross"]["context_dim"], hidden[-1])
        if "shallow_tower" in config:
            p = config["shallow_tower"]["position_buckets"]
            self.shallow = nn.ModuleDict({"position": nn.Embedding(p + 1, len(tasks))})

    def dropout_units(self):
        """Hidden units in MC-dropout order: experts (i, l, j), then hidden tower layers (t, l, j)."""
        u = 0
        sites = {}
        for i, expert in enumerate(self.experts):
            for l, layer in enumerate(expert):
                sites[("e", i, l)] = u
                u += layer.out_features
        for t, tower in enumerate(self.towers):
            for l, layer in enumerate(tower[:-1]):
                sites[("t", t, l)] = u
                u += layer.out_features
        return u, sites

    def gate_weights(self, features, categorical=None):
        return [g(self.input(features, categorical)) for g in self.gates]

    def input(self, features, categorical=None, bags=None):
        parts = [features]
        for k, c in enumerate(self.config.get("categorical", [])):
            parts.append(self.embeddings[c["name"]](categorical[:, k]))
        for k, c in enumerate(self.config.get("multi_categorical", [])):
            ids, offsets = bags[k]
            parts.append(self.embeddings[c["name"]](ids, offsets))
        return torch.cat(parts, dim=1)

    def forward(self, features, categorical=None, context=None, position=None, masks=None, bags=None):
        """features [B, d]; categorical [B, ncat] long; context [B, c]; position [B] long with
        -1 = missing; masks: None or a function (site, rows, width) -> multiplier [B, width];
        bags: per multi_categorical feature (flat ids, offsets) as nn.EmbeddingBag takes them."""
        z = self.input(features, categorical, bags)
        outs = []
        for i, expert in enumerate(self.experts):
            h = z
            for l, layer in enumerate(expert):
                h = torch.relu(layer(h))
                if masks is not None:
                    h = h * masks(("e", i, l), h.shape[1])
            outs.append(h)
        e = torch.stack(outs, dim=1)  # [B, n, h]
        if hasattr(self, "latent_cross"):
            cross = 1.0 + self.latent_cross(context)
        res = []
        for t, task in enumerate(self.config["tasks"]):
            g = self.gates[t](z)
            h = (g.unsqueeze(2) * e).sum(dim=1)
            if hasattr(self, "latent_cross"):
                h = cross * h
            tower = self.towers[t]
            for l, layer in enumerate(tower[:-1]):
                h = torch.relu(layer(h))
                if masks is not None:
                    h = h * masks(("t", t, l), h.shape[1])
            logit = tower[-1](h)[:, 0]
            if hasattr(self, "shallow"):
                p = self.config["shallow_tower"]["position_buckets"]
                pos = torch.where(position < 0, torch.full_like(position, p), position)
                logit = logit + self.shallow["position"].weight[pos, t]
            res.append(torch.sigmoid(logit) if task["type"] == "binary" else logit)
        return torch.stack(res, dim=1)


def splitmix_uniform(seed, n):
    """The n-th SplitMix64 output of stream seed, top 24 bits as [0, 1) (n: uint64 array)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed & 0xFFFFFFFFFFFFFFFF) + (n + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float64) / 16777216.0


def mc_masks(model, rate, seed, samples):
    """The masks recsys.predict_mc draws: unit u of sample s kept iff U(seed, s*U + u) >= rate."""
    units, sites = model.dropout_units()

    def masks(site, width):
        base = sites[site]
        s = np.arange(samples, dtype=np.uint64)[:, None]
        j = np.arange(width, dtype=np.uint64)[None, :]
        keep = splitmix_uniform(seed, s * np.uint64(units) + np.uint64(base) + j) >= rate
        return torch.from_numpy(keep.astype(np.float64) / (1.0 - rate))

    return masks


def save_safetensors(tensors, metadata=None, dtypes=None):
    """Write tensors (name -> torch tensor) as safetensors; dtypes maps names to F32/F64/F16/BF16."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name in sorted(tensors):
        dt = (dtypes or {}).get(name, "F32")
        t = tensors[name].detach().to(DTYPES[dt][0]).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if dt == "BF16" else t.numpy().tobytes()
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def load_safetensors(buf):
    """Read safetensors bytes with the reference implementation's checks; returns (tensors, metadata)."""
    (n,) = struct.unpack("<Q", buf[:8])
    assert n <= len(buf) - 8 and buf[8:9] == b"{"
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    data = buf[8 + n:]
    metadata = header.pop("__metadata__", None)
    assert metadata is None or all(isinstance(v, str) for v in metadata.values())
    pos = 0
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, end = info["data_offsets"]
        assert begin == pos and end >= begin, name
        torch_dtype, size = DTYPES[info["dtype"]]
        count = int(np.prod(info["shape"], dtype=np.int64)) if info["shape"] else 1
        assert (end - begin) == count * size, name
        raw = bytearray(data[begin:end])
        if info["dtype"] == "BF16":
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if count else torch.zeros(0, dtype=torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=torch_dtype) if count else torch.zeros(0, dtype=torch_dtype)
        out[name] = t.reshape(info["shape"])
        pos = end
    assert pos == len(data)
    return out, metadata


def jsonb_text(v):
    """Render a JSON value as PostgreSQL's jsonb output does (keys by length, then bytes)."""
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(json.dumps(k) + ": " + jsonb_text(v[k]) for k in keys) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(jsonb_text(x) for x in v) + "]"
    return json.dumps(v)


def canonical_safetensors(tensors, dtypes, config, metadata=None):
    """The bytes recsys.export_model gives: wider dtypes first then by name, compact header with
    __metadata__ first (keys sorted, config as jsonb text under "recsys"), padded to 8 bytes."""
    meta = dict(metadata or {})
    meta["recsys"] = jsonb_text(config)
    items = sorted(tensors, key=lambda k: (-DTYPES[dtypes.get(k, "F32")][1], k))
    parts = ['"__metadata__":{' + ",".join(json.dumps(k) + ":" + json.dumps(meta[k]) for k in sorted(meta)) + "}"]
    blobs = []
    offset = 0
    for name in items:
        dt = dtypes.get(name, "F32")
        t = tensors[name].detach().to(DTYPES[dt][0]).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if dt == "BF16" else t.numpy().tobytes()
        shape = ",".join(str(s) for s in t.shape)
        parts.append(json.dumps(name) + ':{"dtype":"%s","shape":[%s],"data_offsets":[%d,%d]}'
                     % (dt, shape, offset, offset + len(raw)))
        blobs.append(raw)
        offset += len(raw)
    h = ("{" + ",".join(parts) + "}").encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)
