#!/usr/bin/env bash
# Phase 1 on polars, in-process DataFusion and a local Ballista cluster (1 scheduler + 2
# executors), side by side on the synthetic municipality in Parquet; medians and peak RSS.
#
#   benches/engines.sh                 # scales 100 and 1000, 3 runs
#   benches/engines.sh "100" 5         # SCALES RUNS
#
# Builds styrkort with `--features distributed`; the Python venv and generated data are the
# peer benchmark's (benches/peer.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$HOME/.cache/styrkort-target}"
export CARGO_TARGET_DIR
SCALES=${1:-"100 1000"}
RUNS=${2:-3}
DATA=${STYRKORT_BENCH_DATA:-$HOME/.cache/styrkort-bench-data}
VENV=${STYRKORT_BENCH_VENV:-$HOME/.cache/styrkort-bench-venv}
if ! "$VENV/bin/python" -c "import duckdb, polars" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet duckdb polars
fi
cargo build --release --quiet --features distributed --bin styrkort
cd benches/peer
exec "$VENV/bin/python" engines.py --bin "$CARGO_TARGET_DIR/release/styrkort" \
    --scales "$SCALES" --runs "$RUNS" --data "$DATA"
