# Sourced by benches/peer.sh and benches/per_source.sh (from the repository's root): the bench
# venv with duckdb and polars from PyPI (created on first use) and a current release build.
# Sets VENV and exports CARGO_TARGET_DIR.
: "${CARGO_TARGET_DIR:=$HOME/.cache/styrkort-target}"
export CARGO_TARGET_DIR
VENV=${STYRKORT_BENCH_VENV:-$HOME/.cache/styrkort-bench-venv}
if ! "$VENV/bin/python" -c "import duckdb, polars" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet duckdb polars
fi
cargo build --release --quiet --bin styrkort
