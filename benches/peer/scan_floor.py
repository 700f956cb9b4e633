"""The scan floor: polars reads each source's declared columns from the same files (dates
parsed) and sums or counts them, nothing else — the least any engine must do with these files.

    python scan_floor.py PIPELINE.toml               # all sources in one streaming run (timed outside)
    python scan_floor.py PIPELINE.toml --per-source  # each source alone, best of 3, in ms

`--per-source` is for tuning: set beside the `phase1_ms`/`ms` of styrkort's "source computed"
log lines (`styrkort run … --log-format json`), it shows which source is furthest from its floor.
"""

import os
import sys
import time
import tomllib

import polars as pl


def plans(path):
    """(source name, the floor's plan for it), in the pipeline's order."""
    with open(path, "rb") as f:
        p = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(path))
    out = []
    for src in p["sources"]:
        cols = {c: (t if isinstance(t, str) else t["type"]) for c, t in src["columns"].items()}
        file = os.path.join(base, src["path"])
        if src["format"] == "csv":
            lf = pl.scan_csv(file, try_parse_dates=True)
        else:
            lf = pl.scan_parquet(file)
        exprs = []
        for c, t in cols.items():
            if t in ("float", "int"):
                exprs.append(pl.col(c).cast(pl.Float64).sum().alias(c))
            else:
                exprs.append(pl.col(c).count().alias(c))
        out.append((src["name"], lf.select(exprs)))
    return out


def main():
    path = sys.argv[1]
    if "--per-source" in sys.argv[2:]:
        for name, plan in plans(path):
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                assert plan.collect(engine="streaming").height == 1
                best = min(best, time.perf_counter() - started)
            print(f"{name}\t{best * 1000:.0f} ms", flush=True)
        return
    for df in pl.collect_all([plan for _, plan in plans(path)], engine="streaming"):
        assert df.height == 1


if __name__ == "__main__":
    main()
