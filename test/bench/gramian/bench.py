"""Benchmark recsys.gramian against the cost of reading the rows and against numpy.

For each k: builds an N x k real[] table, then times (best of 3)
  scan      SELECT count(v)                       (reading the rows, nothing else)
  serial    SELECT recsys.gramian(v)              (no parallel workers)
  parallel  the same with 2 workers
  numpy     X.T @ X on the same data, float64, OPENBLAS_NUM_THREADS=1 (the math alone)
  export    fetching the rows into Python (the 'export to numpy' way), plus numpy
and prints the ratios.  Run through `make bench`.
"""
import io
import os
import platform
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402
import psycopg2  # noqa: E402

ROWS = int(os.environ.get("GRAMIAN_ROWS", "1000000"))
DIMS = [int(d) for d in os.environ.get("GRAMIAN_DIMS", "64 16").split()]
REPEAT = 3


def best(cur, sql, settings=()):
    """Best wall time of a statement over REPEAT runs."""
    times = []
    for _ in range(REPEAT):
        for s in settings:
            cur.execute(s)
        t = time.perf_counter()
        cur.execute(sql)
        cur.fetchall()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    conn = psycopg2.connect("")
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SHOW shared_buffers")
    shared_buffers = cur.fetchone()[0]
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"machine: {cpu}, {os.cpu_count()} cores; {platform.platform()}")
    print(f"rows {ROWS}, shared_buffers {shared_buffers}, numpy {np.__version__}")
    serial = ["SET max_parallel_workers_per_gather = 0"]
    par = ["SET max_parallel_workers_per_gather = 2", "SET parallel_setup_cost = 0",
           "SET parallel_tuple_cost = 0", "SET min_parallel_table_scan_size = 0"]
    for k in DIMS:
        t = f"bench_vectors_{k}"
        cur.execute(f"DROP TABLE IF EXISTS {t}")
        cur.execute(f"""CREATE TABLE {t} AS SELECT i, ARRAY(SELECT random()::real
                        FROM generate_series(1, {k}) WHERE i > 0) AS v
                        FROM generate_series(1, {ROWS}) i""")
        cur.execute(f"VACUUM ANALYZE {t}")
        cur.execute(f"SELECT pg_size_pretty(pg_table_size('{t}'))")
        size = cur.fetchone()[0]

        scan = best(cur, f"SELECT count(v) FROM {t}", serial)
        agg = best(cur, f"SELECT recsys.gramian(v) FROM {t}", serial)
        agg2 = best(cur, f"SELECT recsys.gramian(v) FROM {t}", par)

        t0 = time.perf_counter()
        buf = io.StringIO()
        cur.copy_expert(f"COPY (SELECT array_to_string(v, ',') FROM {t}) TO STDOUT", buf)
        buf.seek(0)
        x = np.loadtxt(buf, delimiter=",", dtype=np.float32).reshape(ROWS, k).astype(np.float64)
        export = time.perf_counter() - t0
        blas = min(_timed(lambda: x.T @ x) for _ in range(REPEAT))
        cur.execute(f"SELECT recsys.gramian(v) FROM {t}")
        g = np.array(cur.fetchone()[0])
        err = np.linalg.norm(g - x.T @ x) / np.linalg.norm(x.T @ x)

        limit = scan + blas
        print(f"\nk = {k}: table {size}")
        print(f"  scan count(v)          {scan:8.3f} s")
        print(f"  numpy X.T@X (1 thread) {blas:8.3f} s")
        print(f"  gramian serial         {agg:8.3f} s   = {agg / limit:.2f} x (scan + BLAS)   target <= 1.2")
        print(f"  gramian 2 workers      {agg2:8.3f} s   speed-up {agg / agg2:.2f} x")
        print(f"  export + numpy         {export + blas:8.3f} s   = {(export + blas) / agg:.1f} x the serial aggregate")
        print(f"  relative error vs numpy {err:.1e}")
        cur.execute(f"DROP TABLE {t}")


def _timed(f):
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
