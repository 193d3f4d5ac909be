#!/usr/bin/python3
"""Reference data for the feature-spec pgTAP suite (test/features.sql).

Adult-style rows of our own (numeric, text, bigint, boolean, text[] and real[] columns with
NULLs; rare values for min_count, more genres than max_size; unseen values in the held-out
rows), and an independent numpy/pandas-style implementation of fitting a spec (statistics,
vocabularies ordered by count then value).  Writes OUTDIR/features_ref.sql with:

  fx_train, fx_test       the rows
  fx_ref                  the specs (as given, and as fitted here), the config and weights of
                          a PyTorch model with an embedding bag, built on the spec fitted here
  fx_test_arrays          held-out rows encoded here with spec A (features real[], categorical int[])
  fx_test_torch           scores of the PyTorch model on the held-out rows, through the Python
                          helper of doc/features.md (read from the doc and run as it is written)
  fx_grad                 gradients of the first training step of that model on fx_train
                          (float64 autograd, nn.EmbeddingBag(mode='mean'))

Usage: features.py OUTDIR
"""
import collections
import json
import math
import os
import re
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from mmoe_module import MMoE, save_safetensors  # noqa: E402

torch.set_num_threads(1)

# the documented helper, exactly as doc/features.md has it
DOC = open(os.path.join(HERE, "..", "..", "doc", "features.md")).read()
HELPER = re.search(r"```python\n(# recsys_features\.py.*?)```", DOC, re.S).group(1)
helper = {}
exec(HELPER, helper)

rng = np.random.RandomState(23)
WORKCLASS = ["Private"] * 12 + ["Self-emp"] * 3 + ["Gov"] * 3 + ["Never-worked"]
GENRES = ["drama", "comedy", "action", "horror", "romance", "scifi", "doc", "anime"]


def rows(n, test):
    out = []
    for i in range(n):
        r = {"id": i + 1}
        r["age"] = None if rng.rand() < 0.05 else int(rng.randint(17, 91))
        r["capital_gain"] = None if rng.rand() < 0.05 else (
            0.0 if rng.rand() < 0.7 else float(np.round(np.exp(rng.normal(7, 1.2)), 2)))
        r["hours"] = None if rng.rand() < 0.05 else float(np.round(rng.uniform(1, 99), 1))
        r["fnlwgt"] = None if rng.rand() < 0.05 else float(np.round(rng.normal(1.9e5, 1e5), 2))
        if rng.rand() < 0.05:
            r["workclass"] = None
        elif test and rng.rand() < 0.1:
            r["workclass"] = "Unseen-work"
        elif not test and i < 3:
            r["workclass"] = "Without-pay"      # rare: under min_count, so out of vocabulary
        else:
            r["workclass"] = WORKCLASS[rng.randint(len(WORKCLASS))]
        r["education"] = int(rng.randint(1, 17))
        r["sex"] = None if rng.rand() < 0.05 else bool(rng.rand() < 0.6)
        if rng.rand() < 0.05:
            r["genres"] = None
        else:
            k = rng.randint(0, 5)
            g = [GENRES[min(int(rng.exponential(2.5)), 7)] for _ in range(k)]
            g = [None if rng.rand() < 0.03 else x for x in g]
            if test and rng.rand() < 0.1:
                g.append("western")
            r["genres"] = g
        r["emb"] = None if rng.rand() < 0.05 else [float(np.float32(x)) for x in rng.normal(0, 1, 3)]
        r["clicked"] = bool(rng.rand() < 0.4)
        r["income"] = float(np.round(rng.normal(2, 1), 3))
        out.append(r)
    return out


TRAIN = rows(600, False)
TEST = rows(200, True)

SPEC_A = {"numeric": ["age", {"column": "capital_gain", "transform": "log1p_standardize"},
                      {"column": "hours", "transform": "minmax", "null_value": 40},
                      "fnlwgt"],
          "categorical": [{"column": "workclass", "min_count": 5, "dim": 3},
                          {"column": "education", "dim": 3}, {"column": "sex", "dim": 2}],
          "vector": ["emb"]}
SPEC_B = dict(SPEC_A, multi_categorical=[{"column": "genres", "dim": 4, "max_size": 6}])
VTYPE = {"workclass": "text", "education": "int", "sex": "bool", "genres": "text"}
CONFIG = {"kind": "mmoe", "experts": {"count": 3, "hidden": [8]},
          "tasks": [{"name": "click", "type": "binary", "tower": [4]},
                    {"name": "income", "type": "regression"}]}


def fit(spec, data):
    """Fit a spec the way doc/features.md describes, independently of recsys."""
    out = {"numeric": [], "categorical": [], "multi_categorical": [], "vector": []}
    for kind in out:
        for e in spec.get(kind, []):
            e = {"column": e} if isinstance(e, str) else dict(e)
            col = [r[e["column"]] for r in data]
            if kind == "numeric":
                e.setdefault("transform", "standardize")
                x = np.array([v for v in col if v is not None], np.float64)
                s = np.log1p(x) if e["transform"] == "log1p_standardize" else x
                e.update(mean=float(s.mean()), std=float(s.std()), min=float(x.min()), max=float(x.max()),
                         count=len(x), nulls=len(col) - len(x))
            elif kind == "vector":
                e["length"] = len(next(v for v in col if v is not None))
            else:
                e.setdefault("dim", 8)
                e.setdefault("min_count", 1)
                e.setdefault("max_size", 100000)
                vals = [v for v in col if v is not None] if kind == "categorical" else \
                    [x for v in col if v is not None for x in v if x is not None]
                nulls = sum(v is None for v in col) if kind == "categorical" else \
                    sum(1 if v is None else sum(x is None for x in v) for v in col)
                counts = collections.Counter(vals)
                key = (lambda v: v.encode()) if VTYPE[e["column"]] == "text" else (lambda v: v)
                order = sorted(counts, key=lambda v: (-counts[v], key(v)))
                kept = [v for v in order if counts[v] >= e["min_count"]][:e["max_size"]]
                e.update(type=VTYPE[e["column"]], vocab=kept, count=len(vals), nulls=nulls,
                         oov=len(vals) - sum(counts[v] for v in kept))
            out[kind].append(e)
    out["fitted"] = {"rows": len(data)}
    return out


FIT_A = fit(SPEC_A, TRAIN)
FIT_B = fit(SPEC_B, TRAIN)
CONFIG_B = dict(CONFIG, features=FIT_B)

# model B: PyTorch's initialisation, float32, on the spec fitted here
torch.manual_seed(5)
module = MMoE(helper["model_config"](CONFIG_B)).eval()
weights = save_safetensors(module.state_dict(), {"recsys": json.dumps(CONFIG_B)})
torch_scores = helper["predict"](module, CONFIG_B, TEST)

# the first training step's gradients (fixed weights 1: mean BCE + mean squared error), float64
m64 = MMoE(helper["model_config"](CONFIG_B)).double()
m64.load_state_dict({k: v.double() for k, v in module.state_dict().items()})
dense, cat, bags = helper["encode"](FIT_B, TRAIN)
out = m64(torch.from_numpy(dense).double(), torch.from_numpy(cat), bags=bags)
y_click = torch.tensor([float(r["clicked"]) for r in TRAIN], dtype=torch.float64)
y_income = torch.tensor([r["income"] for r in TRAIN], dtype=torch.float64)
loss = torch.nn.functional.binary_cross_entropy(out[:, 0], y_click) + ((out[:, 1] - y_income) ** 2).mean()
loss.backward()
GRADS = {n: t.grad.reshape(-1).tolist() for n, t in m64.named_parameters()}

# held-out rows encoded with spec A here
dense_a, cat_a, _ = helper["encode"](FIT_A, TEST)


def lit(v, t):
    if v is None:
        return "NULL"
    if t == "text[]":
        return "ARRAY[%s]::text[]" % ", ".join("NULL" if x is None else "'%s'" % x for x in v) if v else "'{}'::text[]"
    if t == "real[]":
        return "'{%s}'::real[]" % ",".join(repr(float(x)) for x in v)
    if t == "text":
        return "'%s'" % v
    if t == "bool":
        return "true" if v else "false"
    return repr(v)


COLS = [("id", "int"), ("age", "int"), ("capital_gain", "float8"), ("hours", "float8"),
        ("fnlwgt", "numeric"), ("workclass", "text"), ("education", "bigint"), ("sex", "bool"),
        ("genres", "text[]"), ("emb", "real[]"), ("clicked", "bool"), ("income", "float8")]


def table(name, data):
    s = "CREATE TABLE %s (%s);\n" % (name, ", ".join("%s %s" % c for c in COLS))
    s += "INSERT INTO %s VALUES\n" % name
    s += ",\n".join("(%s)" % ", ".join(lit(r[c], t) for c, t in COLS) for r in data) + ";\n"
    return s


def dollar(x):
    return "$j$" + json.dumps(x) + "$j$"


with open(os.path.join(sys.argv[1], "features_ref.sql"), "w") as f:
    f.write(table("fx_train", TRAIN))
    f.write(table("fx_test", TEST))
    f.write("CREATE TABLE fx_ref (config jsonb, spec_a jsonb, spec_b jsonb, fit_a jsonb, fit_b jsonb, "
            "config_b jsonb, weights_b bytea);\n")
    f.write("INSERT INTO fx_ref VALUES (%s, %s, %s, %s, %s, %s, '\\x%s');\n" % (
        dollar(CONFIG), dollar(SPEC_A), dollar(SPEC_B), dollar(FIT_A), dollar(FIT_B), dollar(CONFIG_B),
        weights.hex()))
    f.write("CREATE TABLE fx_test_arrays (id int, features real[], categorical int[]);\nINSERT INTO fx_test_arrays VALUES\n")
    f.write(",\n".join("(%d, '{%s}', '{%s}')" % (r["id"], ",".join(repr(float(x)) for x in dense_a[i]),
                                                 ",".join(str(int(x)) for x in cat_a[i]))
                       for i, r in enumerate(TEST)) + ";\n")
    f.write("CREATE TABLE fx_test_torch (id int, scores float8[]);\nINSERT INTO fx_test_torch VALUES\n")
    f.write(",\n".join("(%d, '{%s}')" % (r["id"], ",".join(repr(float(x)) for x in torch_scores[i]))
                       for i, r in enumerate(TEST)) + ";\n")
    f.write("CREATE TABLE fx_grad (tensor text, grad float8[]);\nINSERT INTO fx_grad VALUES\n")
    f.write(",\n".join("('%s', '{%s}')" % (n, ",".join(repr(x) for x in g)) for n, g in sorted(GRADS.items())) + ";\n")
