#!/usr/bin/python3
"""Reference side of test/twotower_export.sql: the PyTorch module of doc/two-tower.md
(read from the doc and run as it is written) rebuilds an exported two-tower model.

  twotower_export.py OUTDIR   writes OUTDIR/twotower_export_ref.sql: feature tables with
                              every kind of column (numeric under each transform, with
                              NULLs and a null_value; categorical text, int and boolean with
                              NULLs; multi-categorical with NULL arrays, NULL elements and
                              empty arrays; a vector column with NULLs) and interactions
  twotower_export.py check FILE
                              FILE (written by the suite through COPY TO PROGRAM, removed
                              here): {"model": base64 of recsys.export_model, "user"/"item":
                              [{"row": features, "index": training index or null,
                              "vector": stored vector}]}; prints per side the rows
                              compared and the largest |module - stored| (float64 module)
"""
import base64
import json
import os
import re
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DOC = open(os.path.join(HERE, "..", "..", "doc", "two-tower.md")).read()
MODULE = re.search(r"```python\n(# recsys_two_tower\.py.*?)```", DOC, re.S).group(1)
torch.set_num_threads(1)


def check(path):
    with open(path) as f:
        payload = json.load(f)
    os.unlink(path)
    env = {}
    exec(MODULE, env)
    model = env["TwoTower"].from_safetensors(base64.b64decode(payload["model"])).double()
    for side in ("user", "item"):
        rows = payload[side]
        out = getattr(model, side).vectors([r["row"] for r in rows], [r["index"] for r in rows])
        stored = torch.tensor([r["vector"] for r in rows], dtype=torch.float64)
        diff = float((out - stored).abs().max()) if out.shape == stored.shape else float("inf")
        print("%s\t%d\t%.17g" % (side, len(rows), diff))


def lit(x):
    if x is None:
        return "NULL"
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, str):
        return "'" + x.replace("'", "''") + "'"
    if isinstance(x, list):
        return "ARRAY[" + ", ".join(lit(e) for e in x) + "]" if x else "'{}'"
    return repr(x)


def write(out):
    rng = np.random.RandomState(24)
    lines = ["-- written by test/ref/twotower_export.py"]
    lines.append("CREATE TABLE tx_users (user_id bigint, age float8, income float8, hours real, "
                 "city text, level int, premium boolean, emb real[]);")
    for u in range(1, 81):
        age = None if u % 11 == 0 else float(rng.randint(18, 80))
        income = None if u % 13 == 0 else float(np.round(np.exp(rng.normal(10, 1)), 2))
        hours = None if u % 7 == 0 else float(np.float32(rng.uniform(0, 60)))
        city = None if u % 9 == 0 else ["paris", "lyon", "nice", "lille", "o'brien"][rng.randint(5)]
        level = [1, 2, 3, 40][rng.randint(4)]
        premium = None if u % 17 == 0 else bool(rng.rand() < 0.4)
        emb = None if u % 10 == 0 else [float(np.float32(x)) for x in rng.normal(0, 1, 3)]
        lines.append("INSERT INTO tx_users VALUES (%s);" % ", ".join(
            lit(x) for x in (u, age, income, hours, city, level, premium, emb)))
    lines.append("CREATE TABLE tx_items (item_id int, genre text, tags text[], codes int[], year float8);")
    for i in range(1, 51):
        genre = None if i % 12 == 0 else "g%d" % rng.randint(6)
        tags = None if i % 8 == 0 else [None if rng.rand() < 0.1 else "t%d" % rng.randint(9)
                                        for _ in range(rng.randint(0, 4))]
        codes = [int(x) for x in rng.randint(0, 5, rng.randint(1, 3))]
        year = float(rng.randint(1990, 2024))
        lines.append("INSERT INTO tx_items VALUES (%s);" % ", ".join(
            lit(x) for x in (i, genre, tags, codes, year)))
    # users 71..80 and items 43..50 have no interactions (cold rows)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.randint(1, 71, 900), rng.randint(1, 43, 900))})
    lines.append("CREATE TABLE tx_train (user_id int, item_id bigint);")
    lines.append("INSERT INTO tx_train VALUES %s;" % ", ".join("(%d, %d)" % p for p in pairs))
    with open(os.path.join(out, "twotower_export_ref.sql"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        write(sys.argv[1])
