#!/usr/bin/env bash
# One reproducible run of the closed loop: simulated users ranked by the model
# versions that the main job (jobs/guess-you-like.yaml) learns from their own log.
#
#   bash scripts/closed-loop.sh DIR SEED SESSIONS [runnel --set ...]
#
# build/rn_sim --policy model:DIR/models ranks each page at event time t with the
# version the learner published for event time t - 1 h (rounded down to its 10 min
# publishing period), waiting for it; the job follows the log the simulator writes
# (log_collector -> online_joiner -> experience_collector -> value_advantage_learner,
# deterministic mode). So the same seed and settings give the same bytes, however fast
# either side runs. Writes DIR/{log.jsonl,sim.txt,summary.json,returns.txt,job.txt,
# models/}; prints the simulator's summary line. Needs build/ (scripts/build.sh).
# Environment: RUNNEL_GAMMA (default 0.9) and any other RUNNEL_* of the job; SIM_ARGS
# (extra simulator options, e.g. "--users 2000"); SIM_MODELS (the model store the simulator
# ranks with, default DIR/models; a distilled student's store, with SIM_ARGS
# "--model-embeddings ITS_TABLE"); RUNNEL_BIN (the build directory, default build);
# RUNNEL_JOB (the job file, default jobs/guess-you-like.yaml).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 DIR SEED SESSIONS [--set key=value ...]" >&2; exit 2; }
dir=$1 seed=$2 sessions=$3
bin=${RUNNEL_BIN:-build}
shift 3
rm -rf "$dir"
mkdir -p "$dir"
# The simulator writes the world's item-embedding table first (renamed into place
# when complete), then ranks at random until the first version is due; the job
# starts once the table is there and follows the log.
: >"$dir/log.jsonl"
# shellcheck disable=SC2086
"$bin/rn_sim" --policy "model:${SIM_MODELS:-$dir/models}" --sessions "$sessions" --seed "$seed" ${SIM_ARGS:-} \
  --model-lag 3600 --model-period 600 --model-wait 120 --out "$dir/log.jsonl" \
  --embeddings "$dir/embeddings.txt" --summary-json "$dir/summary.json" \
  --returns "$dir/returns.txt" 2>"$dir/sim.txt" &
sim=$!
trap 'kill -TERM $sim $job 2>/dev/null || true' EXIT INT TERM
job=
for _ in $(seq 600); do
  [ -f "$dir/embeddings.txt" ] && break
  kill -0 $sim 2>/dev/null || break
  sleep 0.05
done
RUNNEL_LOG="$dir/log.jsonl" RUNNEL_FOLLOW=true RUNNEL_VAR="$dir/var" RUNNEL_OUT="$dir/out" \
  RUNNEL_MODELS="$dir/models" RUNNEL_EMBEDDINGS="$dir/embeddings.txt" \
  RUNNEL_HTTP=${RUNNEL_HTTP:-127.0.0.1:0} RUNNEL_SERVE=${RUNNEL_SERVE:-127.0.0.1:0} \
  "$bin/runnel" run "${RUNNEL_JOB:-jobs/guess-you-like.yaml}" --fresh "$@" 2>"$dir/job.txt" &
job=$!
if ! wait $sim; then
  cat "$dir/sim.txt" >&2
  tail -5 "$dir/job.txt" >&2
  exit 1
fi
kill -TERM $job
wait $job || true
trap - EXIT INT TERM
grep -o 'mean_session_return=.*' "$dir/sim.txt"
