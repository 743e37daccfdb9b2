#!/usr/bin/env bash
# Recovery after kill -9 of the main job: the simulator writes SESSIONS
# sessions; the main job (jobs/guess-you-like.yaml, following its log) reads
# the first half, and once a checkpoint has completed it is killed with
# SIGKILL. Then the job is started again (it restores that checkpoint), the
# second half of the log is appended at the same moment, and the time from
# the start of the process to the first record processed (the collector's
# records_in above zero on /api/v1/job, polled every 10 ms) is printed, R times.
#   bash bench/run_recovery.sh [SESSIONS=20000] [R=3]
set -euo pipefail
cd "$(dirname "$0")/.."
sessions=${1:-20000}
R=${2:-3}
bash scripts/build.sh build >/dev/null
command -v curl >/dev/null || { echo "curl missing"; exit 1; }
tmp=$(mktemp -d /tmp/runnel-bench-recovery.XXXXXX)
job=
trap '[ -n "$job" ] && kill -9 $job 2>/dev/null; rm -rf "$tmp"' EXIT
build/rn_sim --policy popularity --sessions "$sessions" --seed 7 --out "$tmp/all.jsonl" \
  --embeddings "$tmp/embeddings.txt" 2>/dev/null
n=$(wc -l <"$tmp/all.jsonl")
echo "input: $n events; machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
port=$((20000 + RANDOM % 20000))
run_job() { # $1: --fresh or nothing
  RUNNEL_LOG="$tmp/log.jsonl" RUNNEL_FOLLOW=true RUNNEL_VAR="$tmp/var" RUNNEL_OUT="$tmp/out" \
    RUNNEL_MODELS="$tmp/models" RUNNEL_EMBEDDINGS="$tmp/embeddings.txt" \
    RUNNEL_HTTP=127.0.0.1:$port RUNNEL_SERVE=127.0.0.1:0 \
    build/runnel run jobs/guess-you-like.yaml $1 >>"$tmp/job.txt" 2>&1 &
  job=$!
}
collect_in() {
  curl -s --max-time 1 "http://127.0.0.1:$port/api/v1/job" 2>/dev/null |
    grep -o '"id":"collect"[^}]*' | grep -o '"records_in":[0-9]*' | head -1 | cut -d: -f2
}
for r in $(seq "$R"); do
  rm -rf "$tmp/var" "$tmp/out" "$tmp/models"
  head -n $((n / 2)) "$tmp/all.jsonl" >"$tmp/log.jsonl"
  run_job --fresh
  # Wait for a completed checkpoint (its manifest), then SIGKILL.
  for _ in $(seq 1200); do
    ls "$tmp"/var/checkpoints/*/chk-*/_manifest.json >/dev/null 2>&1 && break
    sleep 0.1
  done
  kill -9 $job; wait $job 2>/dev/null || true
  ck=$(ls -d "$tmp"/var/checkpoints/*/chk-* | sort -t- -k2 -n | tail -1)
  t0=$(date +%s%N)
  run_job ""
  tail -n +$((n / 2 + 1)) "$tmp/all.jsonl" >>"$tmp/log.jsonl"
  t1=
  for _ in $(seq 3000); do
    c=$(collect_in || true)
    if [ -n "$c" ] && [ "$c" -gt 0 ]; then t1=$(date +%s%N); break; fi
    sleep 0.01
  done
  kill -TERM $job; wait $job 2>/dev/null || true
  job=
  [ -n "$t1" ] || { echo "run $r: no record processed after the restart"; tail -5 "$tmp/job.txt"; exit 1; }
  echo "run $r: restored $(basename "$ck") ($(du -sm "$ck" | cut -f1) MB); process start to first" \
       "record processed: $(( (t1 - t0) / 1000000 )) ms"
done
