#!/usr/bin/env bash
# window_count before and after it became a case of the generic `window`
# operator, side by side: N events (rn_loggen) through log_collector into
# window_count (10 s windows every 5 s, keyed by user, parallelism 1), and the
# same counts through `window` (aggregates {count: count}), R runs each,
# alternating; prints the window thread's records per CPU-second (medians).
#   bash bench/run_window.sh [BASELINE_BUILD_DIR] [N=1000000] [R=5]
# BASELINE_BUILD_DIR: the build directory of another checkout (say the commit
# before the change) whose runnel runs the window_count job too.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-}
N=${2:-1000000}
R=${3:-5}
bash scripts/build.sh build >/dev/null
tmp=$(mktemp -d /tmp/runnel-bench-window.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
build/rn_loggen --events "$N" --users 100000 --seed 3 --out "$tmp/in.jsonl" 2>/dev/null
job() { # op-line
  cat <<YAML
job: bench_window
parallelism: 1
state: { dir: $tmp/state }
sources:
  logs: { type: file, path: $tmp/in.jsonl }
operators:
  - { id: collect, op: log_collector, from: logs }
  - $1
sinks:
  out: { type: discard, from: counts }
YAML
}
job "{ id: counts, op: window_count, from: collect, key: user, size: 10s, slide: 5s }" >"$tmp/wc.yaml"
job "{ id: counts, op: window, from: collect, key: user, size: 10s, slide: 5s, aggregates: { count: count } }" >"$tmp/w.yaml"
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
rate() { grep ' head=counts ' | sed 's/.*records_per_cpu_s=\([0-9]*\).*/\1/'; }
: >"$tmp/base" && : >"$tmp/wc" && : >"$tmp/w"
for _ in $(seq "$R"); do
  [ -z "$base" ] || "$base/runnel" run "$tmp/wc.yaml" 2>&1 | rate >>"$tmp/base"
  build/runnel run "$tmp/wc.yaml" 2>&1 | rate >>"$tmp/wc"
  build/runnel run "$tmp/w.yaml" 2>&1 | rate >>"$tmp/w"
done
echo "events: $N, $R runs each; window thread, records per CPU-second (median)"
[ -z "$base" ] || echo "window_count, baseline ($base): $(median <"$tmp/base")"
echo "window_count, this build:            $(median <"$tmp/wc")"
echo "window {count: count}, this build:   $(median <"$tmp/w")"
