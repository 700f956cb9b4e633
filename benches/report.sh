#!/usr/bin/env bash
# How long the controller's report takes to write and to render in headless Chromium, and its
# size — for the fixtures' run (or a run folder given as $1). Medians of RUNS (default 5).
#   bash benches/report.sh [RUN_DIR] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${CARGO_TARGET_DIR:=$HOME/.cache/styrkort-target}"
export CARGO_TARGET_DIR
cargo build --release --quiet
bin="$CARGO_TARGET_DIR/release/styrkort"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run_dir=${1:-}
if [ -z "$run_dir" ]; then
  "$bin" run pipelines/uddevalla.toml --out "$work/out" >/dev/null
  run_dir="$work/out/uddevalla/latest"
fi
runs=${2:-5}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body></body></html>' > "$work/empty.html"
write_s=(); render_s=(); empty_s=()
for _ in $(seq "$runs"); do
  t0=$(date +%s.%N)
  "$bin" report "$run_dir" -o "$work/rapport.html" >/dev/null
  t1=$(date +%s.%N)
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --user-data-dir="$work/profile" --dump-dom "file://$work/rapport.html" >/dev/null 2>&1
  t2=$(date +%s.%N)
  chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking \
    --user-data-dir="$work/profile" --dump-dom "file://$work/empty.html" >/dev/null 2>&1
  t3=$(date +%s.%N)
  write_s+=("$(echo "$t1 - $t0" | bc)"); render_s+=("$(echo "$t2 - $t1" | bc)"); empty_s+=("$(echo "$t3 - $t2" | bc)")
done
echo "report size: $(stat -c %s "$work/rapport.html") bytes"
echo "write  median of $runs: $(printf '%s\n' "${write_s[@]}" | median) s"
echo "render median of $runs (headless Chromium, load + DOM dump, browser start included): $(printf '%s\n' "${render_s[@]}" | median) s"
echo "empty page median of $runs (the browser's start alone): $(printf '%s\n' "${empty_s[@]}" | median) s"
