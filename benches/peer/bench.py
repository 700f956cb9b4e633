"""Peer benchmark driver (run by benches/peer.sh inside its venv).

For each scale and format: generates the synthetic municipality once (cached), checks that the
DuckDB peer's indicator values equal styrkort's, then times whole processes side by side —
styrkort, the DuckDB peer, the scan floor (polars reading the needed columns and summing
them, nothing else) and the grouped floor (the same, grouped by org code and month: one
group-by, see scan_floor.py) — over several runs, with /usr/bin/time -v for wall time and peak
RSS. Prints one table: medians, the ratios to DuckDB and to both floors, peak RSS.
"""

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
AS_OF = "2025-01-01"


def timed(cmd, log):
    """Runs cmd under /usr/bin/time -v; returns (wall seconds, peak RSS in GB)."""
    with open(log, "w") as err:
        r = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.DEVNULL, stderr=err)
    text = open(log).read()
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{text[-3000:]}")
    wall = rss = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Elapsed (wall clock)"):
            parts = line.rsplit(" ", 1)[1].split(":")
            wall = sum(float(p) * 60 ** i for i, p in enumerate(reversed(parts)))
        if line.startswith("Maximum resident set size"):
            rss = int(line.rsplit(" ", 1)[1]) / 1024 / 1024
    return wall, rss


def check_equal(styrkort_values, peer_values):
    """Every styrkort cell with rows is in the peer's output with the same n_rows and numbers
    (1e-9 relative), and the peer has no extra cells for the units styrkort reports."""
    con = duckdb.connect()
    q = f"""
      WITH s AS (SELECT indicator_id, org_unit_id, grain, period, segment,
                        numerator AS s_num, denominator AS s_den, n_rows AS s_n
                 FROM read_parquet('{styrkort_values}') WHERE n_rows > 0),
           reported AS (SELECT DISTINCT indicator_id, org_unit_id FROM read_parquet('{styrkort_values}')),
           p AS (SELECT indicator_id, org_unit_id, grain, period, segment,
                        numerator AS p_num, denominator AS p_den, n_rows AS p_n
                 FROM read_parquet('{peer_values}') JOIN reported USING (indicator_id, org_unit_id)),
           j AS (SELECT * FROM s FULL OUTER JOIN p USING (indicator_id, org_unit_id, grain, period, segment)),
           d AS (SELECT *,
                   s_n IS NULL OR p_n IS NULL AS missing,
                   s_n <> p_n AS n_differs,
                   NOT (s_num IS NOT DISTINCT FROM p_num
                        OR abs(s_num - p_num) <= 1e-9 * greatest(abs(s_num), 1)) AS num_differs,
                   NOT (s_den IS NOT DISTINCT FROM p_den
                        OR abs(s_den - p_den) <= 1e-9 * greatest(abs(s_den), 1)) AS den_differs
                 FROM j)
      SELECT count(*), count(*) FILTER (WHERE missing), count(*) FILTER (WHERE n_differs),
             count(*) FILTER (WHERE num_differs), count(*) FILTER (WHERE den_differs)
      FROM d"""
    cells, missing, n_diff, num_diff, den_diff = con.execute(q).fetchone()
    if missing or n_diff or num_diff or den_diff:
        sample = con.execute(
            q.split("SELECT count(*), count(*)")[0]
            + "SELECT * FROM d WHERE missing OR n_differs OR num_differs OR den_differs LIMIT 10"
        ).fetchall()
        for r in sample:
            print("  differs:", r)
        sys.exit(
            f"peer and styrkort differ: {cells} cells, {missing} missing on one side, "
            f"{n_diff} n_rows, {num_diff} numerators, {den_diff} denominators differ"
        )
    return cells


def generator_fingerprint():
    """A hash of what the generated data and pipeline come from: the generator's code and the
    fixture pipeline and tables it copies."""
    root = os.path.dirname(os.path.dirname(HERE))
    h = hashlib.sha256()
    paths = [os.path.join(root, "pipelines", "uddevalla.toml")]
    for folder in ("src/generate", "fixtures/uddevalla"):
        d = os.path.join(root, folder)
        paths += [os.path.join(d, f) for f in sorted(os.listdir(d))]
    for path in paths:
        if os.path.isfile(path):
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def open_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the styrkort binary")
    ap.add_argument("--scales", default="10 100")
    ap.add_argument("--formats", default="csv parquet")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", required=True, help="folder for generated data (kept between runs)")
    a = ap.parse_args()
    python = sys.executable
    rows = []
    work = tempfile.mkdtemp(prefix="styrkort-peer-")
    for scale in a.scales.split():
        for fmt in a.formats.split():
            data = os.path.join(a.data, f"scale{scale}-{fmt}")
            pipeline = os.path.join(data, "pipeline.toml")
            stamp = os.path.join(data, ".generated-from")
            current = generator_fingerprint()
            if not os.path.exists(pipeline) or open_text(stamp) != current:
                # Generated by another version of the generator or the fixture pipeline: again.
                print(f"generating scale {scale} ({fmt}) into {data} …", flush=True)
                shutil.rmtree(data, ignore_errors=True)
                subprocess.run([a.bin, "generate", "--scale", scale, "--format", fmt, "--out", data],
                               check=True, stdout=subprocess.DEVNULL)
                with open(stamp, "w") as f:
                    f.write(current)
            n_rows = duckdb.connect().execute(
                f"SELECT sum(n) FROM (" + " UNION ALL ".join(
                    f"SELECT count(*) AS n FROM {'read_parquet' if fmt == 'parquet' else 'read_csv'}('{os.path.join(data, f)}')"
                    for f in sorted(os.listdir(data))
                    if f.endswith(f".{fmt}") and f not in ("org_units.csv", "code_mapping.csv", "targets.csv", "actions.csv")
                ) + ")"
            ).fetchone()[0]
            out = os.path.join(work, "out")
            peer_out = os.path.join(work, "peer.parquet")
            styrkort_cmd = [a.bin, "run", pipeline, "--as-of", AS_OF, "--out", out]
            peer_cmd = [python, os.path.join(HERE, "duckdb_peer.py"), pipeline, "--as-of", AS_OF, "--out", peer_out]
            floor_cmd = [python, os.path.join(HERE, "scan_floor.py"), pipeline]
            grouped_cmd = floor_cmd + ["--grouped"]
            # Equality first: a benchmark of different answers means nothing.
            shutil.rmtree(out, ignore_errors=True)
            timed(styrkort_cmd, os.path.join(work, "check.log"))
            timed(peer_cmd, os.path.join(work, "check-peer.log"))
            cells = check_equal(os.path.join(out, "uddevalla", "latest", "indicator_values.parquet"), peer_out)
            print(f"scale {scale} {fmt}: {n_rows} rows; peer equals styrkort on {cells} cells", flush=True)
            times = {"styrkort": [], "duckdb": [], "floor": [], "grouped": []}
            commands = [("styrkort", styrkort_cmd), ("duckdb", peer_cmd), ("floor", floor_cmd),
                        ("grouped", grouped_cmd)]
            for i in range(a.runs):
                for name, cmd in commands:
                    shutil.rmtree(out, ignore_errors=True)
                    times[name].append(timed(cmd, os.path.join(work, f"{name}.log")))
                print(f"  run {i + 1}: " + ", ".join(
                    f"{k} {v[-1][0]:.2f} s / {v[-1][1]:.2f} GB" for k, v in times.items()), flush=True)
            med = {k: (statistics.median(t for t, _ in v), max(r for _, r in v)) for k, v in times.items()}
            rows.append((scale, fmt, n_rows, med))
    shutil.rmtree(work, ignore_errors=True)
    print()
    print("| scale | format | rows | styrkort s | styrkort GB | DuckDB s | DuckDB GB | scan floor s | grouped floor s "
          "| styrkort / DuckDB | styrkort / floor | styrkort / grouped |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for scale, fmt, n, m in rows:
        s, d, f, g = m["styrkort"], m["duckdb"], m["floor"], m["grouped"]
        print(f"| {scale} | {fmt} | {n:,} | {s[0]:.2f} | {s[1]:.2f} | {d[0]:.2f} | {d[1]:.2f} | {f[0]:.2f} | "
              f"{g[0]:.2f} | {s[0] / d[0]:.2f} | {s[0] / f[0]:.2f} | {s[0] / g[0]:.2f} |")
    print(f"\nmedians of {a.runs} runs; GB = the largest peak RSS of those runs (/usr/bin/time -v)")


if __name__ == "__main__":
    main()
