#!/usr/bin/env bash
# Crash test of the closed loop: rn_sim ranks every page with the model version the learner
# published for event time t - lag (--policy model:DIR, docs/simulator.md) and writes the log
# that a runnel job follows (log_collector -> online_joiner -> experience_collector ->
# value_advantage_learner, deterministic mode, a version every 10 min of event time,
# checkpoints every 200 ms, parallelism 2).
#
#   reference    one run without crashes: the sim's log and summary, the model store
#   crash run    the same, but a supervisor kills the job with SIGKILL at 4 random points (one
#                of them as soon as the store has a new version, so while versions are being
#                published) and stops it once with SIGTERM, restarting it each time without
#                --fresh; the sim waits for the versions it needs meanwhile (--model-wait)
#   checks       the log and summary are byte-identical; the stores hold the same version ids
#                with byte-identical .safetensors and .json files, the final version
#                included; the job restored a checkpoint at each of the 5 restarts; no dead
#                letters
#   parallelism  the job at parallelism 1, bounded, over the reference log publishes
#                byte-identical versions for every boundary the reference's watermark passed
#
# Both runs end with SIGTERM once the job has caught up with the whole log (its learner's
# watermark is the log's last event time minus the 5 s out-of-orderness, minus 1 ms), so that
# every version the log calls for has been published.
#
# The interruption points (numbers of versions in the store, and delays) come from bash's
# $RANDOM seeded with CRASH_SEED (printed; set it to rerun a failure). Run by ctest with
# RUNNEL_SRC and RUNNEL_BIN. One PASS/FAIL line per check, then "N passed, M failed"; exits 1
# if anything failed.
set -u
cd "${RUNNEL_SRC:?}" || exit 1
bin=${RUNNEL_BIN:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/runnel-crash-learner.XXXXXX")
simpid='' jobpid=''
trap '[ -n "$jobpid" ] && kill -9 "$jobpid" 2>/dev/null; [ -n "$simpid" ] && kill "$simpid" 2>/dev/null;
      rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit
}

SESSIONS=${SESSIONS:-30000}
seed=${CRASH_SEED:-$(((RANDOM << 15) | RANDOM))}
RANDOM=$seed
echo "interruption points from CRASH_SEED=$seed; $SESSIONS sessions"
SIM=("$bin/rn_sim" --sessions "$SESSIONS" --seed 11 --model-lag 3600 --model-period 600
  --model-wait 60 --policy "model:$work/run/models" --out "$work/run/log.jsonl"
  --embeddings "$work/run/emb.txt" --summary-json "$work/run/sum.json")

# Every run works in $work/run (the store's path is in the sim's summary), moved aside after.
cat >"$work/job.yaml" <<YAML
job: crash-learner
parallelism: 2
state: { dir: $work/run/state }
checkpoint: { dir: $work/run/ckpt, interval: 200ms, retain: 2 }
watermark: { out_of_orderness: 5s, idle_timeout: 30s }
http: { listen: 127.0.0.1:0 }
sources:
  logs: { type: file, path: $work/run/log.jsonl, follow: "\${FOLLOW:-true}", poll_interval: 5ms }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
  - { id: join, op: online_joiner, from: collect, window: 30m, rewards: { click: 1.0, pay: 5.0 } }
  - { id: experience, op: experience_collector, from: join, history: 10, session_gap: 30m,
      label_delay: 30m, embeddings: $work/run/emb.txt }
  - { id: learn, op: value_advantage_learner, from: experience, embeddings: $work/run/emb.txt,
      model_store: $work/run/models, publish_event_time: 10m,
      deterministic: "\${DETERMINISTIC:-true}" }
sinks:
  rejected: { type: file, path: $work/run/rejected.jsonl }
YAML

now_ms() { date +%s%3N; }

# poll_until SECONDS CMD...: runs CMD every 5 ms until it succeeds; 1 after the deadline.
poll_until() {
  local end=$(($(now_ms) + $1 * 1000))
  shift
  until "$@"; do
    [ "$(now_ms)" -lt "$end" ] || return 1
    sleep 0.005
  done
}

n_versions() { find "$work/run/models" -maxdepth 1 -name 'v*.json' 2>/dev/null | wc -l; }
at_least_versions() { [ "$(n_versions)" -ge "$1" ]; }
latest_ckpt() { # the highest completed checkpoint id (0: none)
  local best=0 m id
  for m in "$work"/run/ckpt/crash-learner/chk-*/_manifest.json; do
    [ -f "$m" ] || continue
    id=${m%/_manifest.json}
    id=${id##*chk-}
    [ "$id" -gt "$best" ] && best=$id
  done
  echo "$best"
}
new_ckpt() { [ "$(latest_ckpt)" -gt "$1" ]; }
sim_running() { kill -0 "$simpid" 2>/dev/null; }
have_log() { [ -s "$work/run/log.jsonl" ] || ! sim_running; }

starts=0
start_job() { # [--fresh]
  starts=$((starts + 1))
  "$bin/runnel" run "$work/job.yaml" "$@" >>"$work/run/job.out" \
    2>"$work/run/job.$starts.err" &
  jobpid=$!
}

start_sim() {
  rm -rf "$work/run"
  mkdir -p "$work/run"
  "${SIM[@]}" 2>"$work/run/sim.err" &
  simpid=$!
  # The embeddings are written before the first line of the log.
  poll_until 30 have_log || bad "the sim wrote no log"
}

# The job's learner has caught up with the finished log: its watermark is the last event
# time minus out_of_orderness minus 1.
caught_up() {
  local url last
  url=$(grep -o 'http://[0-9.:]*' "$work/run/job.$starts.err" | head -n 1)
  last=$(grep -o '"last_ts":[0-9]*' "$work/run/sum.json" | cut -d: -f2)
  [ -n "$url" ] && [ -n "$last" ] || return 1
  curl -s --max-time 2 "$url/api/v1/job" | python3 -c '
import json, sys
j = json.load(sys.stdin)
wm = [o["watermark"] for o in j["operators"] if o["id"] == "learn"][0]
sys.exit(0 if isinstance(wm, int) and wm >= int(sys.argv[1]) - 5001 else 1)' "$last" 2>/dev/null
}

# Waits for the sim, then for the job to catch up, then stops the job with SIGTERM.
end_run() { # label
  wait "$simpid"
  local rc=$?
  simpid=''
  t_sim=$(($(now_ms) - t0))
  [ "$rc" -eq 0 ] || bad "$1: rn_sim exit $rc: $(tail -n 3 "$work/run/sim.err")"
  poll_until 60 caught_up || bad "$1: the job did not catch up with the log"
  kill -TERM "$jobpid"
  wait "$jobpid"
  rc=$?
  jobpid=''
  [ "$rc" -eq 0 ] || bad "$1: the job exited $rc after SIGTERM: $(tail -n 3 "$work/run/job.$starts.err")"
}

# ---- the reference -------------------------------------------------------------------------
t0=$(now_ms)
start_sim
start_job --fresh
end_run reference
t_ref=$t_sim
mv "$work/run" "$work/ref"
n_ref=$(find "$work/ref/models" -name 'v*.json' | wc -l)
echo "reference: $(grep -o 'lines=[0-9]*' "$work/ref/sim.err"), $n_ref versions, the sim ran ${t_ref} ms"
[ "$n_ref" -ge 10 ] || bad "reference: only $n_ref versions"

# ---- the crash run -------------------------------------------------------------------------
# Five interruptions, placed by progress (so on a slow machine too): interruption k (0-based)
# comes once the store holds a random number of versions in the k-th of five equal parts of
# 5 %..85 % of the reference's versions (the sim ends near 94 %), and not before the run has
# completed a new checkpoint since the last restart, so that every restart has progress to
# restore. Kills 0, 2 and 4 then wait a further random 0..299 ms; kill 1 comes at once, as
# the version appears: while the learner is publishing. Interruption 3 is a SIGTERM stop
# instead of a kill: a stopped job's final checkpoint must not hold anything learnt beyond
# its watermark either. Each is followed by a restart without --fresh.
t0=$(now_ms)
start_sim
start_job --fresh
kills=0 stops=0
for k in 0 1 2 3 4; do
  target=$((n_ref * (5 + 16 * k) / 100 + RANDOM % (n_ref * 16 / 100 + 1)))
  before=$(latest_ckpt)
  poll_until 60 new_ckpt "$before" || bad "no checkpoint completes after restart $k"
  poll_until 60 at_least_versions "$target" || bad "the store does not reach $target versions"
  if [ "$k" -eq 1 ]; then
    nv=$(n_versions)
    poll_until 60 at_least_versions $((nv + 1)) || bad "no version after $nv"
    what="as version $(n_versions) appeared"
  else
    delay=$((RANDOM % 300))
    sleep "0.$(printf %03d "$delay")"
    what="$delay ms after version $target"
  fi
  if [ "$k" -eq 3 ]; then
    kill -TERM "$jobpid"
    wait "$jobpid" || bad "the job exited $? after SIGTERM"
    stops=$((stops + 1))
    echo "  SIGTERM at $(($(now_ms) - t0)) ms, $what; $(n_versions) versions in the store"
  else
    kill -9 "$jobpid"
    wait "$jobpid" 2>/dev/null
    kills=$((kills + 1))
    echo "  kill -9 at $(($(now_ms) - t0)) ms, $what; $(n_versions) versions in the store"
  fi
  start_job
done
end_run "crash run"
echo "crash run: $kills kills, $stops stop, the sim ran ${t_sim} ms"

# ---- checks --------------------------------------------------------------------------------
[ "$kills" -eq 4 ] && [ "$stops" -eq 1 ] && ok "killed the job $kills times, stopped it once" ||
  bad "$kills kills, $stops stops"
restores=$(cat "$work"/run/job.*.err | grep -c 'restoring from')
[ "$restores" -eq 5 ] && ok "all $restores restarts restored a checkpoint" ||
  bad "$restores restores for 5 restarts"
cmp -s "$work/ref/log.jsonl" "$work/run/log.jsonl" &&
  ok "the sim's log is byte-identical ($(wc -l <"$work/run/log.jsonl") lines)" ||
  bad "the sim's log differs: $(cmp "$work/ref/log.jsonl" "$work/run/log.jsonl" 2>&1 | head -n 1)"
cmp -s "$work/ref/sum.json" "$work/run/sum.json" && ok "the sim's summary is byte-identical" ||
  bad "the sim's summary differs"

ids() { find "$1" -maxdepth 1 \( -name 'v*.json' -o -name 'v*.safetensors' \) -printf '%f\n' | sort; }
if [ "$(ids "$work/ref/models")" = "$(ids "$work/run/models")" ]; then
  ok "the same $n_ref version ids (.json and .safetensors) in both stores"
else
  bad "the stores hold different versions: $(diff <(ids "$work/ref/models") <(ids "$work/run/models") | head -n 5 | tr '\n' ' ')"
fi
differ=''
for f in $(ids "$work/ref/models"); do
  cmp -s "$work/ref/models/$f" "$work/run/models/$f" || differ="$differ $f"
done
[ -z "$differ" ] && ok "every version file is byte-identical" ||
  bad "version files differ:$(echo "$differ" | cut -c 1-300)"
last=$(ids "$work/ref/models" | grep safetensors | tail -n 1)
[ -n "$last" ] && cmp -s "$work/ref/models/$last" "$work/run/models/$last" &&
  ok "the final version $last is byte-identical" || bad "the final version ${last:-?} differs"
dead=0
for d in ref run; do
  [ -s "$work/$d/rejected.jsonl" ] && dead=$((dead + $(wc -l <"$work/$d/rejected.jsonl")))
done
[ "$dead" -eq 0 ] && ok "no dead letters" || bad "$dead dead letters"

# ---- parallelism 1, bounded, over the reference log --------------------------------------
# Every reference version published as the watermark passed a boundary (event_time a multiple
# of 10 min, up to the reference's final watermark; not the one published at the stop) must
# come out byte-identical.
rm -rf "$work/run"
mkdir -p "$work/run"
cp "$work/ref/log.jsonl" "$work/ref/emb.txt" "$work/run/"
FOLLOW=false "$bin/runnel" run "$work/job.yaml" --quiet --fresh --set parallelism=1 \
  2>"$work/p1.err" || bad "parallelism 1: the job failed: $(tail -n 3 "$work/p1.err")"
wm=$(($(grep -o '"last_ts":[0-9]*' "$work/ref/sum.json" | cut -d: -f2) - 5001))
n=0 differ=''
for j in "$work"/ref/models/v*.json; do
  et=$(grep -o '"event_time":-\?[0-9]*' "$j" | cut -d: -f2)
  [ "$et" -le "$wm" ] && [ $((et % 600000)) -eq 0 ] || continue
  b=$(basename "$j" .json)
  n=$((n + 1))
  cmp -s "$j" "$work/run/models/$b.json" &&
    cmp -s "$work/ref/models/$b.safetensors" "$work/run/models/$b.safetensors" || differ="$differ $b"
done
[ "$n" -ge 10 ] && [ -z "$differ" ] &&
  ok "parallelism 1 (bounded): the $n versions up to the reference's watermark are byte-identical" ||
  bad "parallelism 1: $n versions compared, differing:$(echo "$differ" | cut -c 1-300)"

finish
