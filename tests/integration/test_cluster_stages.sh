#!/usr/bin/env bash
# Cluster jobs cut into stages (docs/cluster.md, "Stages"), on `runnel
# dev-kafka` with 3 worker processes.
#
# 1. A job that re-keys (log_collector keyed by the topic's user partitioning,
#    then key_by item): the coordinator cuts it before key_by into two stages
#    joined by the internal topic <job>.by_item.repartition. The committed
#    output of the cluster run, sorted, must equal `runnel run` of the same job
#    file in one process.
# 2. The learner as its own stage: collector -> joiner -> experience collector
#    and inference run per partition; the learner (a singleton) is one task
#    reading the experience topic and publishing versions to <job>.models,
#    which the inference tasks follow: impressions must carry versions the
#    learner published.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-clstage.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/kafka_lib.sh"
. "$RUNNEL_SRC/tests/integration/cluster_lib.sh"
trap 'stop_cluster; stop_kafka; rm -rf "$work"' EXIT

start_kafka "events:4"
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
for i in $(seq 600); do
  [ "$(committed rekey | wc -l)" -ge "$want" ] && break
  sleep 0.1
done
if cmp -s <(committed rekey) <(sort "$work/ref/out/clicks.jsonl"); then
  ok "the cluster's committed output equals the one-process run ($want lines, sorted)"
else
  bad "cluster: $(committed rekey | wc -l) lines, one process $want"
fi
ls "$work"/rekey/out/clicks.s1p*.jsonl >/dev/null 2>&1 && ! ls "$work"/rekey/out/clicks.p*.jsonl >/dev/null 2>&1 &&
  ok "the clicks come out of the second stage's tasks" || bad "output files: $(ls "$work/rekey/out")"
n=$(kcat_count rekey.by_item.repartition)
[ "$n" -gt "$want" ] && ok "the internal topic rekey.by_item.repartition carries $n records" ||
  bad "internal topic: $n messages"
[ "$(job_field rekey state)" = running ] && ok "the second stage keeps reading (unbounded)" ||
  bad "state $(job_field rekey state)"
rn cancel rekey >/dev/null 2>&1 && wait_job rekey canceled 30 && ok "canceled" || bad "cancel"

# ---- the learner as its own stage ------------------------------------------------------------
cat >"$work/learn.yaml" <<YAML
job: learnst
state: { dir: $work/learn/state }
checkpoint: { dir: $work/learn/ckpt, interval: 300ms }
sources:
  logs: { type: kafka, brokers: "$BOOT", topics: events, stop_at_end: true, max_rate: 2000,
          properties: { fetch.wait.max.ms: 10 } }
operators:
  - { id: collect, op: log_collector, from: logs }
  - { id: join, op: online_joiner, from: collect, window: 30m, rewards: { click: 1.0, pay: 5.0 } }
  - { id: exp, op: experience_collector, from: join, embeddings: $work/emb.txt }
  - { id: learn, op: value_advantage_learner, from: exp, embeddings: $work/emb.txt,
      deterministic: false, publish_every: 20, publish_interval: 1s,
      model_topic: learnst.models, model_brokers: "$BOOT" }
  - { id: rank, op: inference, from: collect, embeddings: $work/emb.txt,
      model_topic: learnst.models, model_brokers: "$BOOT", poll_interval: 100ms }
sinks:
  impressions: { type: file, path: $work/learn/out/impressions.jsonl, from: rank }
YAML
rn submit "$work/learn.yaml" >"$work/submit2.out" 2>&1 || bad "submit: $(cat "$work/submit2.out")"
[ "$(job_field learnst stages)" = 2 ] && [ "$(job_field learnst tasks_total)" -eq 5 ] &&
  ok "the learner is a stage of its own: 4 partition tasks + 1 learner task" ||
  bad "stages $(job_field learnst stages), tasks $(job_field learnst tasks_total)"
maxv() { cat "$work"/learn/out/impressions.p*.jsonl 2>/dev/null |
  python3 -c 'import json,sys; print(max([json.loads(l).get("model_version", 0) for l in sys.stdin] or [0]))'; }
for i in $(seq 600); do
  [ "$(maxv)" -ge 2 ] && break
  sleep 0.1
done
v=$(maxv)
published=$(kcat_dump learnst.models '%k\n' | grep -c '^learnst$')
[ "$v" -ge 2 ] && [ "$published" -ge "$v" ] &&
  ok "inference tasks ranked with version $v from learnst.models ($published versions published there)" ||
  bad "highest version in impressions $v, versions on the topic $published"
[ "$(kcat_count learnst.learn.repartition)" -gt 0 ] && ok "experiences travel on learnst.learn.repartition" ||
  bad "no experiences on the internal topic"
rn cancel learnst >/dev/null 2>&1 && wait_job learnst canceled 30 && ok "canceled" || bad "cancel"
finish_cluster
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
