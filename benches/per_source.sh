#!/usr/bin/env bash
# Per-source tuning table: each source's scan floor and grouped floor beside styrkort's own time
# for it (from its JSON log), and the run's other stages. For finding the source furthest from
# its floor; whole-run timings against the peer are benches/peer.sh's.
#
#   benches/per_source.sh ~/.cache/styrkort-bench-data/scale1000-parquet/pipeline.toml     # 3 runs
#   benches/per_source.sh PIPELINE.toml 5
#
# Uses the same Python venv as benches/peer.sh (duckdb and polars from PyPI; created on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
PIPELINE=${1:?usage: benches/per_source.sh PIPELINE.toml [RUNS]}
RUNS=${2:-3}
: "${CARGO_TARGET_DIR:=$HOME/.cache/styrkort-target}"
export CARGO_TARGET_DIR
VENV=${STYRKORT_BENCH_VENV:-$HOME/.cache/styrkort-bench-venv}
if ! "$VENV/bin/python" -c "import duckdb, polars" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet duckdb polars
fi
cargo build --release --quiet --bin styrkort
exec "$VENV/bin/python" benches/peer/per_source.py --bin "$CARGO_TARGET_DIR/release/styrkort" \
    --runs "$RUNS" "$PIPELINE"
