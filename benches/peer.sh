#!/usr/bin/env bash
# Peer benchmark: styrkort against DuckDB (and polars' scan floor) on the synthetic municipality,
# as whole processes, side by side, medians and peak RSS. Checks the answers are equal first.
#
#   benches/peer.sh                          # scales 10 and 100, CSV and Parquet, 3 runs
#   benches/peer.sh "100 1000" "parquet" 3   # SCALES FORMATS RUNS
#
# Creates a Python venv with duckdb and polars (from PyPI) on first use; generated data is kept
# in $STYRKORT_BENCH_DATA (default ~/.cache/styrkort-bench-data; scale 1000 CSV is ~3 GB).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALES=${1:-"10 100"}
FORMATS=${2:-"csv parquet"}
RUNS=${3:-3}
DATA=${STYRKORT_BENCH_DATA:-$HOME/.cache/styrkort-bench-data}
source benches/peer/env.sh
exec "$VENV/bin/python" benches/peer/bench.py --bin "$CARGO_TARGET_DIR/release/styrkort" \
    --scales "$SCALES" --formats "$FORMATS" --runs "$RUNS" --data "$DATA"
