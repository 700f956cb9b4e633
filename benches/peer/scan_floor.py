"""The scan floor: polars reads each source's declared columns from the same files (dates
parsed) and sums or counts them, nothing else — the least any engine must do with these files.

    python scan_floor.py PIPELINE.toml
"""

import os
import sys
import tomllib

import polars as pl


def main():
    path = sys.argv[1]
    with open(path, "rb") as f:
        p = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(path))
    plans = []
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
        plans.append(lf.select(exprs))
    for df in pl.collect_all(plans, engine="streaming"):
        assert df.height == 1


if __name__ == "__main__":
    main()
