#!/usr/bin/env bash
# Throughput benchmark of the log path. Generates N event lines of ~145 bytes
# in product.md's format (1 % of them broken), then runs, R times each:
#   (a) file -> log_collector -> file            (bench/jobs/collect.yaml)
#   (b) the same, re-keyed by user to 2 threads  (bench/jobs/rekey.yaml)
# and prints, per thread, records per CPU-second of that thread (medians over
# the runs; CPU time, not wall time, because shared machines are noisy).
#   bash bench/run.sh [N=2000000] [R=5]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
R=${2:-5}
bash scripts/build.sh build >/dev/null
tmp=$(mktemp -d /tmp/runnel-bench.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export BENCH_LOG=$tmp/log.jsonl BENCH_OUT=$tmp/out
build/rn_loggen --events "$N" --bad-fraction 0.01 --seed 1 --out "$BENCH_LOG" 2>"$tmp/gen.txt"
bytes=$(stat -c %s "$BENCH_LOG")
echo "input: $N lines, $((bytes / N)) bytes/line on average ($(cat "$tmp/gen.txt"))"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

run_case() { # name job
  local name=$1 job=$2
  : >"$tmp/$name.txt"
  for _ in $(seq "$R"); do
    cat "$BENCH_LOG" >/dev/null # page cache
    build/runnel run "$job" 2>&1 | grep ' thread chain=' >>"$tmp/$name.txt"
  done
  echo "($name) $(basename "$job"): median over $R runs, per thread"
  awk '{for(i=1;i<=NF;i++){split($i,kv,"="); v[kv[1]]=kv[2]}; print v["chain"]"/"v["subtask"]" "v["head"]}' \
    "$tmp/$name.txt" | sort -u | while read -r key head; do
    chain=${key%/*} sub=${key#*/}
    rate=$(grep " chain=$chain subtask=$sub " "$tmp/$name.txt" | sed 's/.*records_per_cpu_s=//' | median)
    cpu=$(grep " chain=$chain subtask=$sub " "$tmp/$name.txt" | sed 's/.* cpu_s=\([0-9.]*\).*/\1/' | median)
    printf '    thread %-22s %12.0f records/cpu-s   (cpu %.3f s)\n' "chain $chain [$sub] $head" "$rate" "$cpu"
  done
}
run_case a bench/jobs/collect.yaml
run_case b bench/jobs/rekey.yaml
