#!/usr/bin/env bash
# Nexmark on runnel: runs q0, q1, q2, q5 and q11 (bench/nexmark/q*.yaml) on N
# generated events at 1 and 2 worker threads, R times each, and prints per
# query (medians over the runs):
#   events/CPU-s   N over the whole process's CPU time (user + sys): events
#                  per core, the figure Flink's Nexmark results publish as
#                  "Throughput/Cores"
#   slowest thread the thread with the fewest records per CPU-second of its own
#                  (from the end-of-run summary), and that figure
#   wall           seconds, start to end (noisy on a shared machine)
#   Flink/core     Flink 1.13's published Throughput/Cores for the query
#                  (nexmark/nexmark README: 100 M events, 8 task managers on
#                  3 workers of 8 cores; docs/performance.md#nexmark), and
#                  runnel's events/CPU-s over it.
#   bash bench/nexmark/run.sh [N=300000] [R=3]      (QUERIES="q5 q11": only those)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-300000}
R=${2:-3}
bash scripts/build.sh build >/dev/null
tmp=$(mktemp -d /tmp/runnel-nexmark.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
declare -A flink=([q0]=155020 [q1]=157940 [q2]=175210 [q5]=22140 [q11]=39700)
echo "events: $N per run, $R runs per figure (medians)"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
printf '%-4s %7s %13s %-30s %7s %11s %7s\n' query threads events/CPU-s "slowest thread (records/CPU-s)" wall Flink/core ratio
for q in ${QUERIES:-q0 q1 q2 q5 q11}; do
  for p in 1 2; do
    : >"$tmp/cpu" && : >"$tmp/wall" && : >"$tmp/threads"
    for _ in $(seq "$R"); do
      # CPU time of the process (user + sys, all its threads) from the shell's
      # `times`, to the millisecond; wall from the clock
      t0=$(date +%s.%N)
      (build/runnel run "bench/nexmark/$q.yaml" --set sources.events.events="$N" \
        --set parallelism="$p" >"$tmp/out" 2>&1; times >"$tmp/times")
      t1=$(date +%s.%N)
      grep ' thread chain=' "$tmp/out" >"$tmp/run"
      tail -1 "$tmp/times" | tr -d 's' | tr 'm' ' ' |
        awk -v n="$N" '{print n / ($1 * 60 + $2 + $3 * 60 + $4)}' >>"$tmp/cpu"
      awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}' >>"$tmp/wall"
      # the slowest thread of the run: fewest records per CPU-second (sinks of a
      # few records excluded)
      awk '{for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            if (v["records"] >= 1000) print v["records_per_cpu_s"], v["head"]}' "$tmp/run" |
        sort -g | head -1 >>"$tmp/threads"
    done
    cpu=$(median <"$tmp/cpu")
    slow=$(cut -d' ' -f1 "$tmp/threads" | median)
    name=$(sort -k2 "$tmp/threads" | awk '{print $2}' | uniq -c | sort -rn | head -1 | awk '{print $2}')
    printf '%-4s %7s %13.0f %-30s %7.2f %11s %6.1fx\n' "$q" "$p" "$cpu" "$name ($(printf '%.0f' "$slow"))" \
      "$(median <"$tmp/wall")" "${flink[$q]}" "$(awk -v a="$cpu" -v b="${flink[$q]}" 'BEGIN {print a / b}')"
  done
done
