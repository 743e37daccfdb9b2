#!/usr/bin/env bash
# The coordinator survives its own restart. A coordinator (`runnel coordinator`
# on a fixed port) and 2 `runnel worker` processes run the recommendation
# pipeline (log_collector -> online_joiner) from Kafka (`runnel dev-kafka`, fed
# by kcat). The coordinator is killed with SIGKILL mid-run and started again
# on the same --dir:
#   1. workers that kept heartbeating are re-adopted: the job is listed, no
#      task restarts, the job finishes, and its committed output (sorted)
#      equals an uninterrupted run's;
#   2. a worker killed while the coordinator was down: its tasks resume on the
#      other worker from their checkpoints, the output is the same again;
#   3. a savepoint pending when the coordinator is killed ends (failed); after
#      a restart a savepoint and a cancel work; finished and canceled jobs stay
#      listed across a further restart;
#   4. a corrupt state file stops the start with an error naming it, and is
#      kept aside.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-clrestart.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/kafka_lib.sh"
. "$RUNNEL_SRC/tests/integration/cluster_lib.sh"

COORD="" W0="" W1=""
stop_all() {
  local p
  for p in $W0 $W1 $COORD; do kill "$p" 2>/dev/null; done
  for p in $W0 $W1 $COORD; do wait "$p" 2>/dev/null; done
}
trap 'stop_all; stop_kafka; rm -rf "$work"' EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$PORT

start_coordinator() {
  "$bin/runnel" coordinator --listen "$ADDR" --dir "$work/coord" --heartbeat-timeout 3s \
    >>"$work/coord.out" 2>>"$work/coord.err" &
  COORD=$!
  local i
  for i in $(seq 100); do curl -sf "http://$ADDR/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "the coordinator did not start: $(tail -3 "$work/coord.err")" >&2
  exit 1
}
start_worker() { # slot
  "$bin/runnel" worker --coordinator "$ADDR" --slot "$1" --dir "$work/w$1" --heartbeat 200ms \
    2>>"$work/worker$1.err" &
  eval "W$1=\$!"
}
alive_workers() { rn workers | awk '$4 == "yes"' | wc -l; }

start_kafka "events:4"
"$bin/rn_sim" --sessions 1200 --candidates 10 --seed 11 --out "$work/sim.jsonl" \
  --embeddings "$work/emb.txt" 2>/dev/null || { bad "rn_sim"; exit 1; }
produce_by_user "$work/sim.jsonl" events || bad "kcat produce"
produced=$(kcat_count events)

same_output() { # run
  local f
  for f in events samples rejected; do
    if cmp -s <(committed ref $f) <(committed "$1" $f); then
      ok "$1: $f identical to the uninterrupted run's ($(committed "$1" $f | wc -l) lines)"
    else
      bad "$1: $f has $(committed "$1" $f | wc -l) lines, uninterrupted $(committed ref $f | wc -l)"
    fi
  done
}
restarts() { rn status "$1" | python3 -c 'import json,sys; print(sum(t["restarts"] for t in json.load(sys.stdin)["tasks"]))'; }
wait_ckpt() { # id
  local i
  for i in $(seq 200); do
    [ "$(job_field "$1" cluster_checkpoint 2>/dev/null || echo 0)" -ge 1 ] && return 0
    sleep 0.1
  done
  return 1
}
kill_coordinator() {
  kill -9 "$COORD" && wait "$COORD" 2>/dev/null
  COORD=""
}

start_coordinator
start_worker 0
start_worker 1
for i in $(seq 100); do [ "$(alive_workers)" -ge 2 ] && break; sleep 0.1; done

# ---- the reference: no faults ----------------------------------------------------------------
recs_job ref 150
rn submit "$work/ref.yaml" >/dev/null || bad "submit ref"
wait_job recs-ref finished 90 && ok "uninterrupted run finished" || bad "uninterrupted: $(job_field recs-ref state)"
n=$(committed ref events | wc -l)
r=$(committed ref rejected | wc -l)
[ $((n + r)) -eq "$produced" ] && ok "uninterrupted: $n events + $r dead letters = $produced produced" ||
  bad "uninterrupted: $n + $r of $produced"

# ---- 1. kill -9 the coordinator mid-run; the workers keep running -------------------------------
recs_job adopt 150
recs_job long 150 false
rn submit "$work/adopt.yaml" >/dev/null || bad "submit adopt"
rn submit "$work/long.yaml" >/dev/null || bad "submit long"
wait_ckpt recs-adopt || bad "no cluster checkpoint before the kill"
wait_ckpt recs-long || bad "recs-long: no cluster checkpoint"
kill_coordinator && ok "killed the coordinator with SIGKILL"
[ -s "$work/coord/state.json" ] && ok "its job table is on disk" || bad "no state.json"
sleep 0.5
kill -0 "$W0" && kill -0 "$W1" && ok "both workers outlive it" || bad "a worker died with the coordinator"
start_coordinator
listed=$(rn list)
grep -q "recs-adopt" <<<"$listed" && grep -q "recs-ref" <<<"$listed" && grep -q "recs-long" <<<"$listed" &&
  ok "runnel list after the restart shows every job" || bad "runnel list after the restart: $listed"
st=$(job_field recs-adopt state)
[ "$st" = running ] && ok "recs-adopt is running after the restart (it came mid-run)" || bad "recs-adopt is $st"
[ "$(job_field recs-ref state)" = finished ] && ok "the finished job stays finished" || bad "recs-ref: $(job_field recs-ref state)"
wait_job recs-adopt finished 90 && ok "recs-adopt finished" || bad "recs-adopt: $(job_field recs-adopt state)"
[ "$(restarts recs-adopt)" -eq 0 ] && ok "no task of recs-adopt restarted: the workers were re-adopted" ||
  bad "recs-adopt: $(restarts recs-adopt) task restarts"
grep -q "task recs-adopt/p0 started" "$work/worker0.err" "$work/worker1.err" &&
  [ "$(cat "$work/worker0.err" "$work/worker1.err" | grep -c 'task recs-adopt/.* started')" -eq 4 ] &&
  ok "each of the 4 tasks was started once" ||
  bad "task starts: $(cat "$work/worker0.err" "$work/worker1.err" | grep -c 'task recs-adopt/.* started')"
same_output adopt

# ---- 2. a worker dies while the coordinator is down ---------------------------------------------
recs_job gone 150
rn submit "$work/gone.yaml" >/dev/null || bad "submit gone"
wait_ckpt recs-gone || bad "recs-gone: no cluster checkpoint before the kill"
kill_coordinator
kill -9 "$W1" && wait "$W1" 2>/dev/null
W1=""
ok "killed the coordinator and worker 1 with SIGKILL"
start_coordinator
wait_job recs-gone finished 90 && ok "recs-gone finished on the remaining worker" ||
  bad "recs-gone: $(job_field recs-gone state)"
[ "$(restarts recs-gone)" -ge 1 ] && ok "$(restarts recs-gone) tasks resumed from their checkpoints" ||
  bad "recs-gone: no task restarted"
same_output gone

# ---- 3. savepoint and cancel after a restart; terminal jobs stay listed -----------------------------
# A savepoint needs every task running: recs-long's tasks of the lost worker
# may still be starting on the other one.
wait_running() {
  for i in $(seq 300); do
    [ "$(job_field recs-long tasks_running)" = 4 ] && return 0
    sleep 0.1
  done
  return 1
}
wait_running || bad "recs-long: not every task running"
# A savepoint the coordinator dies during ends (failed, or completed if it
# was quick), never pending for ever, and the job can take the next one.
rn savepoint recs-long --no-wait >/dev/null || bad "savepoint --no-wait"
kill_coordinator
start_coordinator
sp_status() { rn status recs-long | python3 -c 'import json,sys; s=json.load(sys.stdin)["savepoints"]; print(s[0]["status"] if s else "none")'; }
for i in $(seq 100); do [ "$(sp_status)" != pending ] && break; sleep 0.1; done
st=$(sp_status)
[ "$st" = failed ] || [ "$st" = completed ] && ok "the savepoint pending at the kill ended: $st" ||
  bad "the savepoint pending at the kill is $st"
wait_running || bad "recs-long: not every task running after the second restart"
out=$(rn savepoint recs-long 2>&1) && ok "savepoint after the restart: $out" || bad "savepoint: $out"
sp=$(sed -n 's/.*completed: \(.*\)$/\1/p' <<<"$out")
[ -n "$sp" ] && [ -s "$sp" ] && ok "the savepoint's record exists" || bad "no savepoint record '$sp'"
out=$(rn cancel recs-long 2>&1) && ok "cancel after the restart: $out" || bad "cancel: $out"
wait_job recs-long canceled 30 || bad "recs-long: $(job_field recs-long state)"
kill "$COORD" && wait "$COORD" 2>/dev/null
start_coordinator
states=$(rn list | awk '$1 ~ /^recs-/ { print $1 "=" $2 }' | sort | tr '\n' ' ')
[ "$states" = "recs-adopt=finished recs-gone=finished recs-long=canceled recs-ref=finished " ] &&
  ok "after a further restart: $states" || bad "after a further restart: $states"

# ---- 4. a corrupt state file -----------------------------------------------------------------
kill "$COORD" && wait "$COORD" 2>/dev/null
COORD=""
printf '{"format":1,"next_worker_id":3,"jobs":[{"name":"x"' >"$work/coord/state.json"
"$bin/runnel" coordinator --listen "$ADDR" --dir "$work/coord" >/dev/null 2>"$work/corrupt.err" &
cpid=$!
rc=0
wait "$cpid" || rc=$?
msg=$(cat "$work/corrupt.err")
[ "$rc" -eq 1 ] && grep -q "state.json: the saved job table cannot be read back" <<<"$msg" &&
  ok "a corrupt state file stops the start: $msg" || bad "corrupt state file: rc $rc: $msg"
aside=$(ls "$work"/coord/state.json.corrupt-* 2>/dev/null | head -1)
[ -n "$aside" ] && grep -q '"name":"x"' "$aside" && grep -qF "$aside" <<<"$msg" &&
  ok "the corrupt file is kept aside, and the message names it" || bad "the corrupt file was not kept: '$aside'"

if grep -q "Sanitizer" "$work"/*.err; then bad "a sanitizer report"; grep -h -A20 Sanitizer "$work"/*.err | head -40; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
