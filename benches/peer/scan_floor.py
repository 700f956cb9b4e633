"""The scan floor: polars reads each source's needed columns from the same files (dates parsed)
and sums or counts them, nothing else — the least any engine must do with these files. Needed:
the date and org columns and every declared column an indicator over the source names (in its
numerator, denominator, filter or breakdown, or the source's total_rows). A declared column no
indicator names is left out: styrkort does not read it either when a Parquet file's footer shows
that no row can be blank.

    python scan_floor.py PIPELINE.toml               # all sources in one streaming run (timed outside)
    python scan_floor.py PIPELINE.toml --per-source  # each source alone, best of 3, in ms
    python scan_floor.py PIPELINE.toml --grouped     # the grouped floor (below), all sources

`--per-source` is for tuning: set beside the `phase1_ms`/`ms` of styrkort's "source computed"
log lines (`styrkort run … --log-format json`), it shows which source is furthest from its floor.

`--grouped` is the least an aggregating engine must do: the same columns, grouped by the org
column's raw code and the calendar month of the date column, each summed or counted per group,
by polars' own streaming group-by. It leaves out all that styrkort does beyond one group-by (row
checks, codes mapped to units by date, filters, breakdowns, distinct counts, medians, the roll-up
over the org tree and periods), so styrkort cannot reach it either; it shows how much of
styrkort's time any group-by of these rows costs. A date column that polars does not read as a
date (a month written `2024-01`) is grouped by its text.
"""

import os
import re
import sys
import time
import tomllib

import polars as pl


def plans(path, grouped=False):
    """(source name, the floor's plan for it), in the pipeline's order; with `grouped`, per org
    code and month."""
    with open(path, "rb") as f:
        p = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(path))
    out = []
    for src in p["sources"]:
        named = {src["date_column"], src["org_column"]}
        texts = [src.get("total_rows", "")]
        for ind in p.get("indicators", []):
            if ind.get("source") == src["name"]:
                texts += [ind.get("filter", "")] + ind.get("breakdown", [])
            # A side is an expression over the indicator's source, or a table with its own
            # source and row filter (a cross-source indicator).
            for side in ("numerator", "denominator"):
                part = ind.get(side, "")
                if not isinstance(part, dict):
                    part = {"expr": part}
                if part.get("source", ind.get("source")) == src["name"]:
                    texts += [part.get("expr", ""), part.get("filter", "")]
        for text in texts:
            named.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text))
        cols = {
            c: (t if isinstance(t, str) else t["type"])
            for c, t in src["columns"].items()
            if c in named
        }
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
        if not grouped:
            out.append((src["name"], lf.select(exprs)))
            continue
        org, date = src["org_column"], src["date_column"]
        month = pl.col(date)
        if lf.collect_schema()[date].is_temporal():
            month = month.dt.month_start()
        keys = [pl.col(org).alias("__org"), month.alias("__month")]
        out.append((src["name"], lf.group_by(keys).agg(exprs)))
    return out


def main():
    path = sys.argv[1]
    grouped = "--grouped" in sys.argv[2:]
    # One row per plan, or (grouped) at least one group.
    def check(df):
        assert df.height >= 1 if grouped else df.height == 1

    if "--per-source" in sys.argv[2:]:
        for name, plan in plans(path, grouped):
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                check(plan.collect(engine="streaming"))
                best = min(best, time.perf_counter() - started)
            print(f"{name}\t{best * 1000:.0f} ms", flush=True)
        return
    for df in pl.collect_all([plan for _, plan in plans(path, grouped)], engine="streaming"):
        check(df)


if __name__ == "__main__":
    main()
