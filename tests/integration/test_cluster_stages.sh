#!/usr/bin/env bash
# Cluster jobs cut into stages (docs/cluster.md, "Stages"), on `runnel
# dev-kafka` with 3 worker processes.
#
# 1. A job that re-keys (log_collector keyed by the topic's user partitioning,
#    then key_by item): the coordinator cuts it before key_by into two stages
#    joined by the internal topic <job>.by_item.repartition. The committed
#    output of the cluster run, sorted, must equal `runnel run` of the same job
#    file in one process.
#    The job is bounded (stop_at_end): every first-stage task writes end
#    markers into the internal topic after its last commit, the second stage
#    ends on them, and the job reaches state finished by itself.
#    The same job again with one worker killed with SIGKILL mid-run: the
#    output must miss nothing (the mock makes the internal topic at least once)
#    and the job must still finish.
# 2. The learner as its own stage (the shipped jobs/cluster-recs.yaml):
#    collector -> joiner -> experience collector and inference run per
#    partition; the learner (a singleton) is one task reading the experience
#    topic and publishing versions to cluster-recs.models, which the inference
#    tasks follow: the version an inference task reports on its status API must
#    be one the learner published.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-clstage.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/kafka_lib.sh"
. "$RUNNEL_SRC/tests/integration/cluster_lib.sh"
trap 'stop_cluster; stop_kafka; rm -rf "$work"' EXIT

start_kafka "events:4"
# The shipped job reads its settings from the environment of the cluster's processes.
export RUNNEL_KAFKA=$BOOT RUNNEL_VAR=$work/recs RUNNEL_EMBEDDINGS=$work/emb.txt RUNNEL_LOG_TOPIC=events \
  RUNNEL_WINDOW=1m # the simulated log spans ~20 min of event time
"$bin/rn_sim" --sessions 600 --candidates 10 --seed 5 --out "$work/sim.jsonl" \
  --embeddings "$work/emb.txt" 2>/dev/null || { bad "rn_sim"; exit 1; }
produce_by_user "$work/sim.jsonl" events || bad "kcat produce"

cat >"$work/rekey.yaml" <<YAML
job: rekey
state: { dir: $work/rekey/state }
checkpoint: { dir: $work/rekey/ckpt, interval: 300ms }
sources:
  logs: { type: kafka, brokers: "$BOOT", topics: events, stop_at_end: true, partitioned_by: user,
          properties: { fetch.wait.max.ms: 10 } }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
  - { id: by_item, op: key_by, from: collect, key: item }
  - { id: clicks, op: filter, from: by_item, types: [click, pay] }
sinks:
  out: { type: file, path: $work/rekey/out/clicks.jsonl, from: clicks }
  rejected: { type: file, path: $work/rekey/out/rejected.jsonl }
YAML

# ---- the one-process run -------------------------------------------------------------------
sed "s|$work/rekey/|$work/ref/|g; s|^job: rekey|job: ref|" "$work/rekey.yaml" >"$work/ref.yaml"
"$bin/runnel" run "$work/ref.yaml" >"$work/ref.out" 2>&1 || bad "one-process run: $(tail -3 "$work/ref.out")"
want=$(grep -c . "$work/ref/out/clicks.jsonl")
[ "$want" -gt 100 ] && ok "one process: $want clicks and pays" || bad "one process: $want lines"

# ---- the cluster run ---------------------------------------------------------------------
start_cluster 3
rn submit "$work/rekey.yaml" >"$work/submit.out" 2>&1 || bad "submit: $(cat "$work/submit.out")"
stages=$(job_field rekey stages)
tasks=$(job_field rekey tasks_total)
[ "$stages" = 2 ] && [ "$tasks" -eq 8 ] && ok "cut into $stages stages, $tasks tasks (4 + 4 partitions)" ||
  bad "stages $stages, tasks $tasks"
rn status rekey | python3 -c '
import json, sys
t = {x["task"]: x["stage"] for x in json.load(sys.stdin)["tasks"]}
sys.exit(0 if t.get("p0") == 0 and t.get("s1p3") == 1 else 1)' &&
  ok "tasks p0..p3 read the input, s1p0..s1p3 the repartition topic" || bad "task names: $(rn status rekey)"
committed() { cat "$work/$1"/out/clicks.*.jsonl 2>/dev/null | sort; }
# No cancel: the second stage learns the end of the input from the end markers.
wait_job rekey finished 60 && ok "the bounded two-stage job finished by itself" ||
  bad "state $(job_field rekey state) ($(rn status rekey | python3 -c '
import json, sys
print(" ".join(t["task"] + ":" + t["state"] for t in json.load(sys.stdin)["tasks"]))'))"
if cmp -s <(committed rekey) <(sort "$work/ref/out/clicks.jsonl"); then
  ok "the cluster's committed output equals the one-process run ($want lines, sorted)"
else
  bad "cluster: $(committed rekey | wc -l) lines, one process $want"
fi
ls "$work"/rekey/out/clicks.s1p*.jsonl >/dev/null 2>&1 && ! ls "$work"/rekey/out/clicks.p*.jsonl >/dev/null 2>&1 &&
  ok "the clicks come out of the second stage's tasks" || bad "output files: $(ls "$work/rekey/out")"
n=$(kcat_count rekey.by_item.repartition)
[ "$n" -gt "$want" ] && ok "the internal topic rekey.by_item.repartition carries $n messages" ||
  bad "internal topic: $n messages"
# Each of the 4 first-stage tasks wrote one end marker into each of the 4 partitions.
m=$(kcat_dump rekey.by_item.repartition '%s\n' | grep -a -c '^RNE1')
[ "$m" -ge 16 ] && ok "$m end markers on the internal topic (4 tasks x 4 partitions, or more after a retry)" ||
  bad "$m end markers on the internal topic"

# `partitions:` belongs where a stage starts: on another operator the submit is refused.
sed "s|^job: rekey|job: rekeyp|; s|dead_letter: rejected }|dead_letter: rejected, partitions: 3 }|" \
  "$work/rekey.yaml" >"$work/parts.yaml"
if ! rn submit "$work/parts.yaml" >"$work/o" 2>"$work/e" &&
  grep -q "parts.yaml:[0-9]*:[0-9]*: 'partitions' applies where a stage of a cluster job starts .*'collect' starts none" "$work/e"; then
  ok "refused: $(cat "$work/e")"
else
  bad "partitions on collect: $(cat "$work/o" "$work/e")"
fi

# ---- the same job with a worker killed mid-run ------------------------------------------------
# Each stage task restores its own checkpoint. On the mock (no transaction markers) the
# internal topic is at least once across the kill: nothing may be missing, and a record
# the killed upstream task had sent after its last checkpoint may come out twice.
sed "s|$work/rekey/|$work/kill/|g; s|^job: rekey|job: rekill|; s|stop_at_end: true,|stop_at_end: true, max_rate: 300,|" \
  "$work/rekey.yaml" >"$work/kill.yaml"
rn submit "$work/kill.yaml" >/dev/null 2>&1 || bad "submit rekill"
for i in $(seq 100); do
  [ "$(job_field rekill cluster_checkpoint)" -ge 1 ] && break
  sleep 0.1
done
victim=$(worker_pid 1)
kill -9 "$victim" && ok "killed worker 1 (pid $victim) mid-run"
wait_job rekill finished 90 && ok "the job finished by itself after the kill" ||
  bad "after the kill: state $(job_field rekill state)"
restarts=$(rn status rekill | python3 -c 'import json,sys; print(sum(t["restarts"] for t in json.load(sys.stdin)["tasks"]))')
got=$(cat "$work"/kill/out/clicks.*.jsonl 2>/dev/null | wc -l)
if cmp -s <(cat "$work"/kill/out/clicks.*.jsonl | sort -u) <(sort -u "$work/ref/out/clicks.jsonl"); then
  ok "after the kill ($restarts task restarts) nothing is missing: $got lines, $((got - want)) written twice"
else
  bad "after the kill: $got lines, distinct ones differ from the one-process run's"
fi

# ---- the learner as its own stage: the shipped jobs/cluster-recs.yaml ---------------------
rn submit jobs/cluster-recs.yaml >"$work/submit2.out" 2>&1 || bad "submit: $(cat "$work/submit2.out")"
grep -q "job cluster-recs submitted: 5 tasks in 2 stages over 3 workers" "$work/submit2.out" &&
  ok "submit: $(cat "$work/submit2.out")" || bad "submit said: $(cat "$work/submit2.out")"
[ "$(job_field cluster-recs stages)" = 2 ] && [ "$(job_field cluster-recs tasks_total)" -eq 5 ] &&
  ok "the learner is a stage of its own: 4 partition tasks + 1 learner task" ||
  bad "stages $(job_field cluster-recs stages), tasks $(job_field cluster-recs tasks_total)"
# The version the inference operator of task p0 serves, from that task's own status API.
served() {
  local page
  page=$(rn status cluster-recs | python3 -c '
import json, sys
print([t["page"] for t in json.load(sys.stdin)["tasks"] if t["task"] == "p0"][0])' 2>/dev/null)
  [ -n "$page" ] || { echo 0; return; }
  curl -s "${page%/}/api/v1/job" | python3 -c '
import json, sys
ops = json.load(sys.stdin)["operators"]
print([o["metrics"]["model_version"] for o in ops if o["id"] == "rank"][0])' 2>/dev/null || echo 0
}
published() { kcat_dump cluster-recs.models '%k\n' | grep -c '^cluster-recs$'; }
v=0
for i in $(seq 600); do
  v=$(served)
  [ "$v" -ge 1 ] && [ "$v" -eq "$(published)" ] && break
  sleep 0.1
done
v=$(served)
n=$(published)
[ "$v" -ge 1 ] && [ "$v" -eq "$n" ] &&
  ok "inference task p0 serves version $v, the last of the $n the learner published to cluster-recs.models" ||
  bad "inference serves version $v, $n versions on the topic"
[ "$(kcat_count cluster-recs.learn.repartition)" -gt 0 ] &&
  ok "experiences travel on cluster-recs.learn.repartition" || bad "no experiences on the internal topic"
learner_out=$(rn status cluster-recs | python3 -c '
import json, sys
print(" ".join(t["task"] + ":" + t["state"] for t in json.load(sys.stdin)["tasks"] if t["stage"] == 1))')
[ "$learner_out" = "s1p0:running" ] && ok "one learner task: $learner_out" || bad "learner tasks: $learner_out"
rn cancel cluster-recs >/dev/null 2>&1 && wait_job cluster-recs canceled 30 && ok "canceled" || bad "cancel"
finish_cluster
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
