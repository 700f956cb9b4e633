"""Phase 1 on each engine, side by side: polars, DataFusion in-process, and a Ballista cluster
(one scheduler and two executors, started by `styrkort cluster` in its own process) — the same
pipeline over the same Parquet files, as whole processes under /usr/bin/time -v. Checks first
that every engine publishes the same indicator values as polars.

The cluster's own wall time and peak RSS cover its whole life (all runs); the table reports
its peak RSS beside the client's, since on one machine both count.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import duckdb

from bench import AS_OF, generator_fingerprint, open_text, timed


def same_values(a, b):
    con = duckdb.connect()
    q = f"""
      SELECT count(*) FROM (
        (SELECT * EXCLUDE (numerator, denominator, value) FROM read_parquet('{a}')
         EXCEPT SELECT * EXCLUDE (numerator, denominator, value) FROM read_parquet('{b}'))
        UNION ALL
        (SELECT * EXCLUDE (numerator, denominator, value) FROM read_parquet('{b}')
         EXCEPT SELECT * EXCLUDE (numerator, denominator, value) FROM read_parquet('{a}')))"""
    keys_differ = con.execute(q).fetchone()[0]
    nums = con.execute(f"""
      SELECT count(*) FROM read_parquet('{a}') x JOIN read_parquet('{b}') y
        USING (indicator_id, org_unit_id, grain, period, segment)
      WHERE NOT (x.numerator IS NOT DISTINCT FROM y.numerator
                 OR abs(x.numerator - y.numerator) <= 1e-12 * greatest(abs(x.numerator), 1))
         OR NOT (x.denominator IS NOT DISTINCT FROM y.denominator
                 OR abs(x.denominator - y.denominator) <= 1e-12 * greatest(abs(x.denominator), 1))
    """).fetchone()[0]
    cells = con.execute(f"SELECT count(*) FROM read_parquet('{a}')").fetchone()[0]
    if keys_differ or nums:
        sys.exit(f"{b} differs from {a}: {keys_differ} rows by keys/status, {nums} by numbers")
    return cells


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--scales", default="100 1000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--data", required=True)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="styrkort-engines-")
    cluster_log = os.path.join(work, "cluster.log")
    cluster_out = open(os.path.join(work, "cluster.out"), "w+")
    # Its own process group: /usr/bin/time ignores SIGINT, so the stop goes to the group.
    cluster = subprocess.Popen(["/usr/bin/time", "-v", a.bin, "cluster", "--executors", "2", "--slots", "1"],
                               stdout=cluster_out, stderr=open(cluster_log, "w"), start_new_session=True)
    url = None
    for _ in range(200):
        cluster_out.seek(0)
        text = cluster_out.read().strip()
        if text.startswith("ballista://"):
            url = text.splitlines()[0]
            break
        time.sleep(0.1)
    if url is None:
        cluster.kill()
        sys.exit("the cluster did not start:\n" + open(cluster_log).read()[-2000:])
    rows = []
    try:
        for scale in a.scales.split():
            data = os.path.join(a.data, f"scale{scale}-parquet")
            pipeline = os.path.join(data, "pipeline.toml")
            stamp = os.path.join(data, ".generated-from")
            current = generator_fingerprint()
            if not os.path.exists(pipeline) or open_text(stamp) != current:
                print(f"generating scale {scale} (parquet) into {data} …", flush=True)
                shutil.rmtree(data, ignore_errors=True)
                subprocess.run([a.bin, "generate", "--scale", scale, "--format", "parquet", "--out", data],
                               check=True, stdout=subprocess.DEVNULL)
                with open(stamp, "w") as f:
                    f.write(current)
            engines = {"polars": "polars", "datafusion": "datafusion", "ballista": url}
            outs = {k: os.path.join(work, k) for k in engines}
            cmds = {k: [a.bin, "run", pipeline, "--as-of", AS_OF, "--out", outs[k], "--engine", e]
                    for k, e in engines.items()}
            for k in engines:
                shutil.rmtree(outs[k], ignore_errors=True)
                timed(cmds[k], os.path.join(work, f"check-{k}.log"))
            values = {k: os.path.join(outs[k], "uddevalla", "latest", "indicator_values.parquet") for k in engines}
            for k in ("datafusion", "ballista"):
                cells = same_values(values["polars"], values[k])
            print(f"scale {scale}: the engines publish the same {cells} indicator values", flush=True)
            times = {k: [] for k in engines}
            for i in range(a.runs):
                for k in engines:
                    shutil.rmtree(outs[k], ignore_errors=True)
                    times[k].append(timed(cmds[k], os.path.join(work, f"{k}.log")))
                print(f"  run {i + 1}: " + ", ".join(
                    f"{k} {v[-1][0]:.2f} s / {v[-1][1]:.2f} GB" for k, v in times.items()), flush=True)
            rows.append((scale, {k: (statistics.median(t for t, _ in v), max(r for _, r in v))
                                 for k, v in times.items()}))
    finally:
        os.killpg(cluster.pid, signal.SIGINT)
        cluster.wait()
    cluster_rss = None
    for line in open(cluster_log):
        if "Maximum resident set size" in line:
            cluster_rss = int(line.rsplit(" ", 1)[1]) / 1024 / 1024
    shutil.rmtree(work, ignore_errors=True)
    print()
    print("| scale | polars s | polars GB | DataFusion s | DataFusion GB | Ballista s | Ballista client GB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for scale, m in rows:
        p, d, b = m["polars"], m["datafusion"], m["ballista"]
        print(f"| {scale} | {p[0]:.2f} | {p[1]:.2f} | {d[0]:.2f} | {d[1]:.2f} | {b[0]:.2f} | {b[1]:.2f} |")
    print(f"\nmedians of {a.runs} runs; GB = the largest peak RSS of those runs (/usr/bin/time -v).")
    if cluster_rss is not None:
        print(f"Ballista cluster process (scheduler + 2 executors, all runs): peak RSS {cluster_rss:.2f} GB")


if __name__ == "__main__":
    main()
