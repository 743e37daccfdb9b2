#!/usr/bin/env bash
# The whole loop on one input: the main job (jobs/guess-you-like.yaml: file
# source -> log_collector -> online_joiner -> experience_collector ->
# value_advantage_learner -> model store, inference serving) run to the end of
# a log written beforehand by the simulator (popularity policy, SESSIONS
# sessions), not following it, so that the job's own work is what is timed.
# Prints, per run: events, the process's CPU (user + sys, /usr/bin/time) and
# peak RSS, events per CPU-second of the whole process, and each worker
# thread's CPU and records per CPU-second (the job's own per-thread figures,
# CLOCK_THREAD_CPUTIME_ID) with the busiest thread named. With BASE=DIR (a
# build directory of another commit) each run is paired with one of
# DIR/runnel on the same log, alternating.
# LOOP_SET="key=value ..." passes each as --set to every run (e.g. small caches:
# LOOP_SET="state.cache_size=4MiB state.block_cache=4MiB state.write_buffer=4MiB",
# to see the memory the job uses beyond them).
#   [BASE=DIR] [LOOP_SET=...] bash bench/run_loop.sh [SESSIONS=20000] [R=3] [PARALLELISM=2]
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-20000}
R=${2:-3}
par=${3:-2}
bash scripts/build.sh build >/dev/null
tmp=$(mktemp -d /tmp/runnel-bench-loop.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
build/rn_sim --policy popularity --sessions "$sessions" --seed 7 --out "$tmp/log.jsonl" \
  --embeddings "$tmp/embeddings.txt" 2>/dev/null
events=$(wc -l <"$tmp/log.jsonl")
echo "input: $events events ($sessions sessions); machine: $(nproc) cores, load average" \
     "$(cut -d' ' -f1-3 /proc/loadavg); parallelism $par"
builds=(build)
[ -n "${BASE:-}" ] && builds=("$BASE" build)
sets=()
for kv in ${LOOP_SET:-}; do sets+=(--set "$kv"); done
[ ${#sets[@]} -eq 0 ] || echo "with ${sets[*]}"
for _ in $(seq "$R"); do
  for b in "${builds[@]}"; do
    rm -rf "$tmp/var" "$tmp/out" "$tmp/models"
    RUNNEL_LOG="$tmp/log.jsonl" RUNNEL_FOLLOW=false RUNNEL_VAR="$tmp/var" RUNNEL_OUT="$tmp/out" \
      RUNNEL_MODELS="$tmp/models" RUNNEL_EMBEDDINGS="$tmp/embeddings.txt" \
      RUNNEL_HTTP=127.0.0.1:0 RUNNEL_SERVE=127.0.0.1:0 RUNNEL_PARALLELISM="$par" \
      /usr/bin/time -f 'TIME %e %U %S %M' "$b/runnel" run jobs/guess-you-like.yaml --fresh ${sets[@]+"${sets[@]}"} \
      >"$tmp/job.txt" 2>&1 || { tail -5 "$tmp/job.txt"; exit 1; }
    awk -v ev="$events" -v b="$b" '
      /^TIME / { wall = $2; cpu = $3 + $4; rss = $5 }
      / thread chain=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
                         t = f["head"] "/" f["subtask"]; th[t] = f["cpu_s"]; rate[t] = f["records_per_cpu_s"]
                         if (f["cpu_s"] > top) { top = f["cpu_s"]; topn = t } }
      END {
        printf "%s: wall %.2f s, CPU %.2f s, %d events per CPU-second of the process, peak RSS %d MiB\n",
               b, wall, cpu, ev / cpu, rss / 1024
        printf "  threads (CPU s, records per CPU-s):"
        for (t in th) printf " %s %.2f (%d)", t, th[t], rate[t]
        printf "\n  busiest: %s, %.2f CPU-s = %d events of the input per CPU-second of it\n",
               topn, top, ev / top
      }' "$tmp/job.txt"
  done
done
