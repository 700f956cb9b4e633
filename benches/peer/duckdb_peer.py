"""The peer: the same indicators as a styrkort pipeline, computed by DuckDB.

Written the way a strong DuckDB user would: per source ONE query over the files that aggregates
at own unit × month (× segment) with GROUPING SETS — sums and counts for every indicator with
FILTER clauses, plus (unit, month, value) multiplicities for the distinct counts and medians —
then a roll-up of that small partial table over the org tree and the periods in SQL.

It reads the pipeline file for sources, columns, code mapping and indicator SQL, and writes the
cells that have rows: indicator_id, org_unit_id, grain, period, segment, numerator, denominator,
n_rows. It supports what the synthetic municipality's pipeline uses (sum, avg, count, count
distinct, min, max, median; filters; breakdowns; stock last/mean; rollup over rows) and refuses
anything else rather than guess.

    python duckdb_peer.py PIPELINE.toml --as-of 2025-01-01 --out peer_values.parquet
"""

import argparse
import datetime as dt
import os
import re
import sys
import tomllib

import duckdb

AGG = re.compile(r"\b(sum|avg|count|min|max|median)\s*\(", re.IGNORECASE)


def split_aggregates(text, states, prefix):
    """Replaces each aggregate call in `text` by a state column; returns the rewritten text."""
    out, pos = [], 0
    while True:
        m = AGG.search(text, pos)
        if not m:
            out.append(text[pos:])
            return "".join(out)
        depth, i = 1, m.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        func, arg = m.group(1).lower(), text[m.end() : i - 1].strip()
        name = f"{prefix}{len(states)}"
        if func == "count" and arg == "*":
            states.append((name, "count", None))
            ref = name
        elif func == "count" and arg.lower().startswith("distinct "):
            states.append((name, "distinct", arg[len("distinct ") :]))
            ref = name
        elif func == "avg":
            states.append((name + "s", "sum", arg))
            states.append((name + "c", "count", arg))
            ref = f"({name}s::DOUBLE / NULLIF({name}c, 0))"
        else:
            states.append((name, func, arg))
            ref = name
        out.append(text[pos : m.start()])
        out.append(ref)
        pos = i


def months_between(first, as_of):
    y, m = map(int, first.split("-"))
    start = y * 12 + m - 1
    last = as_of.year * 12 + as_of.month - 2
    return start, last


def periods(start, last):
    """(grain, label, month) for every month of every complete period in the run."""
    rows = []
    for mo in range(start, last + 1):
        y, m = divmod(mo, 12)
        rows.append(("month", f"{y:04d}-{m + 1:02d}", mo))
    for grain, size, fmt in [
        ("quarter", 3, lambda y, k: f"{y:04d}-Q{k}"),
        ("tertial", 4, lambda y, k: f"{y:04d}-T{k}"),
        ("year", 12, lambda y, k: f"{y:04d}"),
    ]:
        for y in range(start // 12, last // 12 + 1):
            for k in range(12 // size):
                a, b = y * 12 + k * size, y * 12 + k * size + size - 1
                if a >= start and b <= last:
                    rows += [(grain, fmt(y, k + 1), mo) for mo in range(a, b + 1)]
    for end in range(start, last + 1):
        y, m = divmod(end, 12)
        if y * 12 >= start:
            rows += [("ytd", f"{y:04d}-YTD{m + 1:02d}", mo) for mo in range(y * 12, end + 1)]
    return rows


SQL_TYPES = {"date": "DATE", "string": "VARCHAR", "int": "BIGINT", "float": "DOUBLE", "bool": "BOOLEAN"}


def source_rows(con, src, base, start, last):
    """SQL for a source's usable rows: typed, placed in the org (by date for mapped codes)."""
    cols = {c: (t if isinstance(t, str) else t["type"]) for c, t in src["columns"].items()}
    path = os.path.join(base, src["path"])
    if src["format"] == "csv":
        spec = ", ".join(f"'{c}': '{SQL_TYPES[t]}'" for c, t in cols.items())
        scan = f"read_csv('{path}', header = true, columns = {{{spec}}})"
    elif src["format"] == "parquet":
        scan = f"read_parquet('{path}')"
    else:
        sys.exit(f"peer: format {src['format']} not supported")
    typed = ", ".join(f"CAST(\"{c}\" AS {SQL_TYPES[t]}) AS \"{c}\"" for c, t in cols.items())
    date, org = src["date_column"], src["org_column"]
    if src.get("org_codes") == "mapping" or "codes" in src:
        place = (
            f"JOIN mapping mp ON mp.source = '{src.get('codes', src['name'])}' AND mp.code = r.\"{org}\" "
            f"AND r.\"{date}\" >= coalesce(mp.valid_from, DATE '0001-01-01') "
            f"AND r.\"{date}\" <= coalesce(mp.valid_to, DATE '9999-12-31') "
            f"JOIN units u ON u.id = mp.unit_id"
        )
    else:
        place = f"JOIN units u ON u.id = r.\"{org}\""
    month = f"(year(r.\"{date}\") * 12 + month(r.\"{date}\") - 1)"
    return (
        f"SELECT u.idx AS unit, {month} AS month, r.* FROM (SELECT {typed} FROM {scan}) r {place} "
        f"WHERE r.\"{date}\" IS NOT NULL AND {month} BETWEEN {start} AND {last}"
    )


def split_cross_source(indicators):
    """A cross-source indicator (numerator or denominator written as a table) becomes its two
    sides, `id::numerator` and `id::denominator`, each an indicator over its own source; the
    sides are put together per cell after phase 2, as styrkort does."""
    out, crossing = [], []
    for ind in indicators:
        num, den = ind["numerator"], ind.get("denominator")
        if not (isinstance(num, dict) or isinstance(den, dict)):
            out.append(ind)
            continue
        crossing.append(ind["id"])
        for side, agg in (("numerator", num), ("denominator", den)):
            if agg is None:
                continue
            agg = agg if isinstance(agg, dict) else {"expr": agg}
            s = {k: v for k, v in ind.items() if k not in ("numerator", "denominator", "filter", "source")}
            s.update(id=f"{ind['id']}::{side}", source=agg.get("source", ind.get("source")), numerator=agg["expr"])
            if "filter" in agg:
                s["filter"] = agg["filter"]
            out.append(s)
    return out, crossing


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pipeline")
    ap.add_argument("--as-of", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    a = ap.parse_args()
    with open(a.pipeline, "rb") as f:
        p = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(a.pipeline))
    start, last = months_between(p["periods"]["first"], dt.date.fromisoformat(a.as_of))
    con = duckdb.connect()
    con.execute(f"SET threads = {a.threads}")
    con.execute("SET preserve_insertion_order = false")

    org = os.path.join(base, p["org"]["units"])
    con.execute(
        f"CREATE TABLE units AS SELECT row_number() OVER (ORDER BY id) - 1 AS idx, id, parent_id "
        f"FROM read_csv('{org}', header = true, all_varchar = true)"
    )
    con.execute(
        """CREATE TABLE anc AS WITH RECURSIVE a(unit, ancestor, pid) AS (
             SELECT u.idx, u.idx, u.parent_id FROM units u
             UNION ALL
             SELECT a.unit, p.idx, p.parent_id FROM a JOIN units p ON p.id = a.pid)
           SELECT unit, ancestor FROM a"""
    )
    if "code_mapping" in p["org"]:
        mp = os.path.join(base, p["org"]["code_mapping"])
        con.execute(
            f"CREATE TABLE mapping AS SELECT source, code, unit_id, "
            f"TRY_CAST(valid_from AS DATE) AS valid_from, TRY_CAST(valid_to AS DATE) AS valid_to "
            f"FROM read_csv('{mp}', header = true, all_varchar = true)"
        )
    con.execute("CREATE TABLE periods(grain VARCHAR, period VARCHAR, month INTEGER)")
    con.executemany("INSERT INTO periods VALUES (?, ?, ?)", periods(start, last))

    declared = p["indicators"]
    p["indicators"], crossing = split_cross_source(declared)
    results, computed = [], []
    for src in p["sources"]:
        inds = [i for i in p["indicators"] if i["source"] == src["name"]]
        if not inds:
            continue
        dims = sorted({d for i in inds for d in i.get("breakdown", [])})
        projections, scalar_aggs, value_cols, plans = [], [], [], []
        for k, ind in enumerate(inds):
            if ind.get("rollup", "rows") != "rows" or "total_rows" in src:
                sys.exit(f"peer: indicator {ind['id']}: only rollup = rows is supported")
            f = f"f{k}"
            # A scope keeps only rows of units inside its subtrees, for every unit reported.
            scope = ind.get("scope")
            inside = "true"
            if scope:
                roots = [scope] if isinstance(scope, str) else scope
                ids = ", ".join(f"'{r}'" for r in roots)
                units_in = con.execute(
                    f"SELECT DISTINCT a.unit FROM anc a JOIN units r ON r.idx = a.ancestor "
                    f"WHERE r.id IN ({ids}) ORDER BY 1"
                ).fetchall()
                inside = f"unit IN ({', '.join(str(u[0]) for u in units_in)})"
            projections.append(
                f"coalesce(({ind.get('filter', 'true')}) AND {inside}, false) AS {f}"
            )
            states = []
            num = split_aggregates(ind["numerator"], states, f"s{k}_")
            den = split_aggregates(ind["denominator"], states, f"s{k}_") if "denominator" in ind else None
            scalar_aggs.append(f"count(*) FILTER (WHERE {f}) AS n{k}")
            sets = []
            for name, kind, arg in states:
                if kind in ("distinct", "median"):
                    projections.append(f"CASE WHEN {f} THEN ({arg}) END AS v_{name}")
                    value_cols.append(f"v_{name}")
                    sets.append((name, kind))
                elif kind == "count":
                    what = "*" if arg is None else arg
                    scalar_aggs.append(f"count({what}) FILTER (WHERE {f}) AS {name}")
                else:
                    scalar_aggs.append(f"{kind}({arg}) FILTER (WHERE {f}) AS {name}")
            merges = [f"sum(n{k}) AS n{k}"] + [
                f"{ {'sum': 'sum', 'count': 'sum', 'min': 'min', 'max': 'max'}[kind] }({name}) AS {name}"
                for name, kind, _ in states
                if kind not in ("distinct", "median")
            ]
            plans.append((ind, k, num, den, sets, merges))

        # Phase 1: one query over the files. Grouping sets give, in one scan, the partial
        # states per (unit, month) and per (unit, month, dim), and the multiplicity of each value
        # that a distinct count or median needs.
        rows_sql = source_rows(con, src, base, start, last)
        seg_sets = [()] + [(d,) for d in dims]
        sets_sql = [f"(unit, month{''.join(', ' + d for d in s)})" for s in seg_sets]
        for v in value_cols:
            sets_sql += [f"(unit, month{''.join(', ' + d for d in s)}, {v})" for s in seg_sets]
        group_cols = ", ".join(dims + value_cols)
        gid = ", ".join(["unit", "month"] + dims + value_cols)
        con.execute(
            f"CREATE OR REPLACE TABLE part AS SELECT unit, month{', ' + group_cols if group_cols else ''}, "
            f"GROUPING({gid}) AS gid, count(*) AS w, {', '.join(scalar_aggs)} "
            f"FROM (SELECT *, {', '.join(projections)} FROM ({rows_sql})) "
            f"GROUP BY GROUPING SETS ({', '.join(sets_sql)})"
        )
        cols = ["unit", "month"] + dims + value_cols

        def gid_of(present):
            bits = 0
            for c in cols:
                bits = bits * 2 + (0 if c in present else 1)
            return bits

        # Phase 2: roll the partial table up per indicator.
        for ind, k, num, den, sets, merges in plans:
            grains = ["month"] if ind.get("stock") else ind["grains"]
            glist = ", ".join(f"'{g}'" for g in grains)
            segs = [None] + [d for d in dims if d in ind.get("breakdown", [])]
            for d in segs:
                seg = "'total'" if d is None else f"'{d}=' || coalesce(CAST({d} AS VARCHAR), '(missing)')"
                present = {"unit", "month"} | ({d} if d else set())
                base_sel = (
                    f"SELECT a.ancestor, pe.grain, pe.period, {seg} AS segment, q.* FROM part q "
                    f"JOIN anc a ON a.unit = q.unit JOIN periods pe ON pe.month = q.month AND pe.grain IN ({glist})"
                )
                cell = (
                    f"SELECT ancestor, grain, period, segment, {', '.join(merges)} FROM ({base_sel} "
                    f"WHERE q.gid = {gid_of(present)}) GROUP BY ALL"
                )
                joins = ""
                for name, kind in sets:
                    v = f"v_{name}"
                    src_sets = f"{base_sel} WHERE q.gid = {gid_of(present | {v})} AND q.{v} IS NOT NULL"
                    if kind == "distinct":
                        agg = f"SELECT ancestor, grain, period, segment, count(DISTINCT {v}) AS {name} FROM ({src_sets}) GROUP BY ALL"
                    else:
                        agg = f"""SELECT ancestor, grain, period, segment,
                              (min(v) FILTER (WHERE cum > (tot - 1) // 2) + min(v) FILTER (WHERE cum > tot // 2)) / 2.0 AS {name}
                              FROM (SELECT *, sum(c) OVER (PARTITION BY ancestor, grain, period, segment ORDER BY v
                                                          ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
                                              sum(c) OVER (PARTITION BY ancestor, grain, period, segment) AS tot
                                    FROM (SELECT ancestor, grain, period, segment, {v} AS v, sum(w) AS c
                                          FROM ({src_sets}) GROUP BY ALL))
                              GROUP BY ALL"""
                    joins += f" LEFT JOIN ({agg}) {name} USING (ancestor, grain, period, segment)"
                fill = {name: f"coalesce({name}, 0)" for name, kind in sets if kind == "distinct"}

                def filled(expr):
                    for name, e in fill.items():
                        expr = re.sub(rf"\b{name}\b", e, expr)
                    return expr

                numerator = filled(num)
                denominator = filled(den) if den else "NULL"
                results.append(
                    f"SELECT '{ind['id']}' AS indicator_id, ancestor, grain, period, segment, "
                    f"CAST({numerator} AS DOUBLE) AS numerator, CAST({denominator} AS DOUBLE) AS denominator, "
                    f"n{k} AS n_rows, '{ind.get('stock', '')}' AS stock FROM ({cell}) c{joins}"
                )
        con.execute(f"CREATE TABLE v_{src['name']} AS {' UNION ALL '.join(results)}")
        computed.append(f"v_{src['name']}")
        results = []
    con.execute("CREATE TABLE raw AS " + " UNION ALL ".join(f"SELECT * FROM {t}" for t in computed))
    for iid in crossing:
        con.execute(
            f"""INSERT INTO raw SELECT '{iid}', ancestor, grain, period, segment, n.numerator,
                   d.numerator, coalesce(n.n_rows, 0), coalesce(n.stock, d.stock)
               FROM (SELECT * FROM raw WHERE indicator_id = '{iid}::numerator') n
               FULL JOIN (SELECT * FROM raw WHERE indicator_id = '{iid}::denominator') d
               USING (ancestor, grain, period, segment)"""
        )
    con.execute("DELETE FROM raw WHERE indicator_id LIKE '%::%'")
    # Stock measures: coarser periods from the months (the last month, or the mean over months
    # with rows), as the pipeline's stock rule says.
    stock_grains = {i["id"]: i["grains"] for i in declared if i.get("stock")}
    coarse = []
    for iid, grains in stock_grains.items():
        for g in grains:
            if g == "month":
                continue
            coarse.append(f"SELECT '{iid}' AS indicator_id, '{g}' AS grain")
    con.execute(
        "CREATE TABLE coarse AS " + (" UNION ALL ".join(coarse) if coarse else "SELECT NULL::VARCHAR AS indicator_id, NULL::VARCHAR AS grain WHERE false")
    )
    con.execute(
        """CREATE TABLE bounds AS SELECT grain, period, max(month) AS last_month FROM periods GROUP BY ALL"""
    )
    con.execute(
        f"""COPY (
          WITH flows AS (SELECT * EXCLUDE (stock) FROM raw WHERE stock = '' OR grain = 'month'),
          months AS (SELECT r.*, pe.month FROM raw r JOIN periods pe ON pe.grain = 'month' AND pe.period = r.period
                     WHERE r.stock <> '' AND r.grain = 'month'),
          spread AS (SELECT m.*, pe.grain AS cgrain, pe.period AS cperiod FROM months m
                     JOIN periods pe ON pe.month = m.month
                     JOIN coarse c ON c.indicator_id = m.indicator_id AND c.grain = pe.grain),
          last AS (SELECT s.indicator_id, s.ancestor, s.cgrain AS grain, s.cperiod AS period, s.segment,
                          s.numerator, s.denominator, s.n_rows
                   FROM spread s JOIN bounds b ON b.grain = s.cgrain AND b.period = s.cperiod
                   WHERE s.stock = 'last' AND s.month = b.last_month),
          mean AS (SELECT indicator_id, ancestor, cgrain AS grain, cperiod AS period, segment,
                          avg(numerator) AS numerator, avg(denominator) AS denominator, sum(n_rows) AS n_rows
                   FROM spread WHERE stock = 'mean' AND n_rows > 0 GROUP BY ALL),
          cells AS (SELECT * FROM flows UNION ALL SELECT * FROM last UNION ALL SELECT * FROM mean)
          SELECT c.indicator_id, u.id AS org_unit_id, c.grain, c.period, c.segment,
                 c.numerator, c.denominator, c.n_rows::BIGINT AS n_rows
          FROM cells c JOIN units u ON u.idx = c.ancestor WHERE c.n_rows > 0
          ORDER BY ALL
        ) TO '{a.out}' (FORMAT parquet)"""
    )


if __name__ == "__main__":
    main()
