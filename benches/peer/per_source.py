"""Per-source tuning table: each source's scan floor and grouped floor (scan_floor.py
--per-source) beside styrkort's own time for that source, from the "source computed" events of
its JSON log, and the run's other stages from its "stage done" events. Run by
benches/per_source.sh inside the bench venv.

    python per_source.py --bin target/release/styrkort PIPELINE.toml [--runs 3]

styrkort's figures are medians over the runs; the floors are the best of 3 per source (as
scan_floor.py measures them). Small sources are computed side by side in a run, so their times
include waiting for a core; the large ones run alone.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def floors(pipeline, grouped):
    """{source: ms} from scan_floor.py --per-source."""
    cmd = [sys.executable, os.path.join(HERE, "scan_floor.py"), pipeline, "--per-source"]
    if grouped:
        cmd.append("--grouped")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = {}
    for line in out.splitlines():
        name, ms = line.split("\t")
        result[name] = float(ms.removesuffix(" ms"))
    return result


def styrkort_runs(binary, pipeline, runs):
    """Per run: ({source: (ms, phase1_ms, rows_read)}, {stage: ms}) from the JSON log."""
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="styrkort-per-source-") as tmp:
            cmd = [binary, "run", pipeline, "--out", tmp, "--log-format", "json"]
            r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-3000:]}")
        sources, stages = {}, {}
        for line in r.stderr.splitlines():
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            fields = event.get("fields", {})
            if fields.get("message") == "source computed":
                name = event["span"]["source"]
                sources[name] = (fields["ms"], fields["phase1_ms"], fields["rows_read"])
            elif fields.get("message") == "stage done":
                stages[fields["stage"]] = fields["ms"]
        out.append((sources, stages))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the styrkort binary")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("pipeline")
    a = ap.parse_args()

    runs = styrkort_runs(a.bin, a.pipeline, a.runs)
    floor, grouped = floors(a.pipeline, False), floors(a.pipeline, True)
    med = statistics.median

    print(f"{a.pipeline}: styrkort medians of {a.runs} runs; floors the best of 3 per source (ms)")
    print()
    print("| source | rows | scan floor | grouped floor | styrkort (phase 1) | ÷ floor | ÷ grouped |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    names = sorted(runs[0][0], key=lambda n: -med(r[0][n][0] for r in runs))
    for name in names:
        ms = med(r[0][name][0] for r in runs)
        phase1 = med(r[0][name][1] for r in runs)
        rows = runs[0][0][name][2]
        f, g = floor.get(name), grouped.get(name)
        shown = lambda v: f"{v:,.0f}" if v is not None else "–"
        ratio = lambda base: f"{ms / base:.1f}" if base else "–"
        print(
            f"| {name} | {rows:,} | {shown(f)} | {shown(g)} | {ms:,.0f} ({phase1:,.0f}) | "
            f"{ratio(f)} | {ratio(g)} |"
        )
    print()
    stages = runs[0][1].keys()
    print("stages (median ms): " + ", ".join(f"{s} {med(r[1][s] for r in runs):,.0f}" for s in stages))


if __name__ == "__main__":
    main()
