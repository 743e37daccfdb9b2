#!/usr/bin/env bash
# Joiner benchmark: generated traffic with 10 items per impression, 5 % click
# per item, 1 % pay per item (20 % of clicks), 1,000,000 users with Zipf(1.0)
# activity, a 30-minute window, checkpoints every 10 s; the online joiner runs
# on 1 and on 2 threads (JOIN_PARALLELISM, default "1 2"). Prints records per
# CPU-second of each joiner thread (median of R runs' thread figures) for a
# state cache that holds everything (1 GiB) and one that does not (64 MiB),
# and RocksDB's db_bench for 1 KiB values (a request's state is about that
# size) in the same run. With BASE=DIR (a build directory of another commit,
# e.g. main's), each run of this build is paired with a run of DIR/runnel on
# the same input, alternating (this build first), and the ratio of medians is
# printed.
#   [BASE=DIR] [JOIN_PARALLELISM="1 2"] bash bench/run_joiner.sh [EVENTS=2000000] [R=3]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
R=${2:-3}
bash scripts/build.sh build >/dev/null
tmp=$(mktemp -d /tmp/runnel-bench-join.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export BENCH_LOG=$tmp/log.jsonl BENCH_OUT=$tmp/out
build/rn_loggen --events "$N" --users 1000000 --zipf 1.0 --items-per-impression 10 \
  --click-rate 0.05 --pay-rate 0.2 --seed 9 --out "$BENCH_LOG" 2>/dev/null
echo "input: $N events, $(($(stat -c %s "$BENCH_LOG") / N)) bytes/line; machine: $(nproc) cores," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
median() { sort -n | awk '{a[NR]=$1} END {printf "%d\n", (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
builds=(build)
[ -n "${BASE:-}" ] && builds=(build "$BASE")
for p in ${JOIN_PARALLELISM:-1 2}; do
for cache in 1GiB 64MiB; do
  for i in "${!builds[@]}"; do : >"$tmp/rates.$i.txt"; done
  for _ in $(seq "$R"); do
    for i in "${!builds[@]}"; do
      BENCH_CACHE=$cache "${builds[$i]}/runnel" run bench/jobs/joiner.yaml --fresh \
        --set parallelism="$p" 2>&1 |
        grep ' head=join ' | sed 's/.*records_per_cpu_s=//' >>"$tmp/rates.$i.txt"
    done
  done
  for i in "${!builds[@]}"; do
    echo "joiner (${builds[$i]}), $p thread(s), cache $cache: median $(median <"$tmp/rates.$i.txt")" \
         "records per CPU-second per thread (all: $(tr '\n' ' ' <"$tmp/rates.$i.txt"))"
  done
  if [ -n "${BASE:-}" ]; then
    echo "  ratio this build / base: $(awk -v a="$(median <"$tmp/rates.0.txt")" \
      -v b="$(median <"$tmp/rates.1.txt")" 'BEGIN {printf "%.2f", a / b}')"
  fi
done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
if command -v db_bench >/dev/null; then
  db_bench --benchmarks=fillrandom,readrandom --num=300000 --key_size=22 --value_size=1024 \
    --disable_wal=1 --compression_type=lz4 --cache_size=33554432 --threads=1 --batch_size=100 \
    --db="$tmp/db_bench" 2>&1 | grep -E '^(fillrandom|readrandom)'
fi
