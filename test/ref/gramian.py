"""Reference Gramians computed by numpy, written as SQL for test/gramian.sql.

Usage: python3 gramian.py OUTDIR
"""
import os
import sys

import numpy as np


def sql_array(x):
    """Format a numpy vector or matrix as a SQL array literal."""
    if x.ndim == 1:
        return "{" + ",".join(repr(float(v)) for v in x) + "}"
    return "{" + ",".join(sql_array(r) for r in x) + "}"


def main(outdir):
    rng = np.random.default_rng(20261129)
    n, k = 700, 16
    # float32 vectors, as stored in real[] columns; weights of both signs
    v = rng.standard_normal((n, k)).astype(np.float32)
    w = rng.uniform(-1.0, 3.0, n)
    x = v.astype(np.float64)
    g = x.T @ x
    gw = x.T @ (w[:, None] * x)
    with open(os.path.join(outdir, "gramian.sql"), "w") as f:
        f.write("CREATE TEMP TABLE ref_vectors (i int, v real[], w float8);\n")
        f.write("INSERT INTO ref_vectors VALUES\n")
        f.write(",\n".join(
            f"({i}, '{sql_array(v[i])}', {w[i]!r})" for i in range(n)) + ";\n")
        f.write(f"CREATE TEMP TABLE ref_gramian AS SELECT '{sql_array(g)}'::float8[] AS g,"
                f" '{sql_array(gw)}'::float8[] AS gw;\n")


if __name__ == "__main__":
    main(sys.argv[1])
