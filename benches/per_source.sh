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
PIPELINE=$(realpath "${1:?usage: benches/per_source.sh PIPELINE.toml [RUNS]}")
cd "$(dirname "$0")/.."
RUNS=${2:-3}
source benches/peer/env.sh
exec "$VENV/bin/python" benches/peer/per_source.py --bin "$CARGO_TARGET_DIR/release/styrkort" \
    --runs "$RUNS" "$PIPELINE"
