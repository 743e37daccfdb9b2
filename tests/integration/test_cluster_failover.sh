#!/usr/bin/env bash
# The recommendation pipeline (log_collector -> online_joiner) on a cluster of
# 3 worker processes reading the simulator's log from Kafka (`runnel
# dev-kafka`, fed by kcat): one run without faults; one where a worker is
# killed with SIGKILL mid-run and `runnel cluster start` restarts it. The
# committed output of the second, sorted, must equal the first's, and every
# message produced must have come out once (as an event or a dead letter).
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-clfail.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/kafka_lib.sh"
. "$RUNNEL_SRC/tests/integration/cluster_lib.sh"
trap 'stop_cluster; stop_kafka; rm -rf "$work"' EXIT

start_kafka "events:4"
"$bin/rn_sim" --sessions 1200 --candidates 10 --seed 11 --out "$work/sim.jsonl" \
  --embeddings "$work/emb.txt" 2>/dev/null || { bad "rn_sim"; exit 1; }
produce_by_user "$work/sim.jsonl" events || bad "kcat produce"
produced=$(kcat_count events)
[ "$produced" -eq "$(grep -c . "$work/sim.jsonl")" ] && ok "kcat produced the simulator's $produced events" ||
  bad "kcat produced $produced of $(grep -c . "$work/sim.jsonl")"


start_cluster 3

# ---- 1. no faults ------------------------------------------------------------------------
recs_job ref
rn submit "$work/ref.yaml" >/dev/null || bad "submit ref"
wait_job recs-ref finished 60 && ok "uninterrupted run finished" || bad "uninterrupted run: $(job_field recs-ref state)"
n=$(committed ref events | wc -l)
[ "$n" -eq "$produced" ] && ok "uninterrupted: all $n events out" || bad "uninterrupted: $n events of $produced"

# ---- 2. kill -9 one worker mid-run ---------------------------------------------------------
recs_job kill
rn submit "$work/kill.yaml" >/dev/null || bad "submit kill"
# Wait until the job has made progress and completed checkpoints, then kill.
for i in $(seq 100); do
  [ "$(job_field recs-kill cluster_checkpoint)" -ge 1 ] && break
  sleep 0.1
done
victim=$(worker_pid 1)
kill -9 "$victim" && ok "killed worker 1 (pid $victim) at cluster checkpoint $(job_field recs-kill cluster_checkpoint)"
state_at_kill=$(job_field recs-kill state)
[ "$state_at_kill" = running ] && ok "the kill came mid-run" || bad "the job was already $state_at_kill"
wait_job recs-kill finished 60 && ok "the run with a kill finished" || bad "run with a kill: $(job_field recs-kill state)"
restarts=$(rn status recs-kill | python3 -c 'import json,sys; print(sum(t["restarts"] for t in json.load(sys.stdin)["tasks"]))')
[ "$restarts" -ge 1 ] && ok "$restarts tasks restarted on another process" || bad "no task restarted"
[ -n "$(worker_pid 1)" ] && [ "$(worker_pid 1)" != "$victim" ] && ok "cluster start restarted worker 1" ||
  bad "worker 1 was not restarted"

for f in events samples rejected; do
  if cmp -s <(committed ref $f) <(committed kill $f); then
    ok "$f: committed output identical to the uninterrupted run's ($(committed kill $f | wc -l) lines)"
  else
    bad "$f: $(committed kill $f | wc -l) lines, uninterrupted $(committed ref $f | wc -l)"
  fi
done
n=$(committed kill events | wc -l)
r=$(committed kill rejected | wc -l)
[ $((n + r)) -eq "$produced" ] && [ "$(committed kill samples | wc -l)" -gt 100 ] &&
  ok "every offset consumed: $n events + $r dead letters = $produced produced" ||
  bad "consumed $n + $r of $produced"
finish_cluster
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
