"""Compares two published runs table by table: identical bytes, or identical keys, strings and
integers with floats within a relative tolerance (summation order may legitimately change).

    python compare_runs.py RUN_DIR_A RUN_DIR_B [--rel 1e-12]
"""

import argparse
import os
import sys

import polars as pl

TABLES = ["indicator_values", "rejected_rows", "deviations", "goal_status", "actions", "signals"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rel", type=float, default=1e-12)
    a = ap.parse_args()
    failed = False
    for t in TABLES:
        pa, pb = (os.path.join(d, f"{t}.parquet") for d in (a.a, a.b))
        if open(pa, "rb").read() == open(pb, "rb").read():
            print(f"{t}: byte-identical")
            continue
        x, y = pl.read_parquet(pa), pl.read_parquet(pb)
        if x.schema != y.schema or x.height != y.height:
            print(f"{t}: DIFFERENT shape/schema {x.shape} {y.shape}")
            failed = True
            continue
        worst, bad = 0.0, []
        for c in x.columns:
            if x[c].dtype in (pl.Float64, pl.Float32):
                u, v = x[c], y[c]
                if not (u.is_null() == v.is_null()).all():
                    bad.append(f"{c} (nulls)")
                    continue
                both = pl.DataFrame({"u": u, "v": v}).drop_nulls()
                nan_same = (both["u"].is_nan() == both["v"].is_nan()).all()
                both = both.filter(~pl.col("u").is_nan())
                rel = ((both["u"] - both["v"]).abs() / both["u"].abs().clip(lower_bound=1e-300)).fill_nan(0)
                m = float(rel.max() or 0.0)
                worst = max(worst, m)
                if m > a.rel or not nan_same:
                    bad.append(f"{c} (rel {m:.3g})")
            elif not x[c].equals(y[c], check_names=True):
                bad.append(c)
        if bad:
            print(f"{t}: DIFFERENT in {', '.join(bad)}")
            failed = True
        else:
            print(f"{t}: equal; floats within {worst:.3g} relative")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
