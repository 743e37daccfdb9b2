#!/usr/bin/env bash
# The coordinator and workers without Kafka (so that it also runs under
# ThreadSanitizer, where librdkafka's mock cluster does not): a job that reads
# a file is one task. Submit it to 2 workers, kill -9 the worker that runs it
# (the task restarts on the other from its checkpoint), take a savepoint,
# rescale to 1 worker, cancel: every input line is committed exactly once.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-cllocal.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/cluster_lib.sh"
trap 'stop_cluster; rm -rf "$work"' EXIT

"$bin/rn_loggen" --events 4000 --users 100 --seed 1 --out "$work/in.jsonl" 2>/dev/null
lines=$(grep -c . "$work/in.jsonl")
cat >"$work/job.yaml" <<YAML
job: local
checkpoint: { dir: $work/ckpt, interval: 200ms }
state: { dir: $work/state }
sources:
  logs: { type: file, path: $work/in.jsonl, follow: true }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
sinks:
  out: { type: file, path: $work/out/out.jsonl, from: collect }
  rejected: { type: file, path: $work/out/rejected.jsonl }
YAML
start_cluster 2
rn submit "$work/job.yaml" >"$work/o" && grep -q "1 tasks over 2 workers" "$work/o" &&
  ok "a job without Kafka is one task" || bad "submit: $(cat "$work/o")"
wait_job local running 30 || bad "not running"
for i in $(seq 100); do
  [ "$(job_field local cluster_checkpoint)" -ge 1 ] && break
  sleep 0.1
done
owner=$(rn status local | python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks"][0]["worker"])')
slot=$(rn workers | awk -v w="$owner" '$1 == w { print $2 }')
kill -9 "$(worker_pid "$slot")"
for i in $(seq 100); do
  [ "$(rn status local | python3 -c 'import json,sys; t=json.load(sys.stdin)["tasks"][0]; print(t["state"], t["restarts"])')" = "running 1" ] && break
  sleep 0.1
done
[ $i -lt 100 ] && ok "killed the task's worker (slot $slot): the task runs again" || bad "no restart: $(rn status local)"
rn savepoint local >"$work/o" 2>&1 && ok "$(cat "$work/o")" || bad "savepoint: $(cat "$work/o")"
rn rescale local 1 >"$work/o" 2>&1 && ok "$(cat "$work/o")" || bad "rescale: $(cat "$work/o")"
rn cancel local >"$work/o" 2>&1 && ok "$(cat "$work/o")" || bad "cancel: $(cat "$work/o")"
n=$(cat "$work"/out/out.p0.jsonl "$work"/out/rejected.p0.jsonl | wc -l)
[ "$n" -eq "$lines" ] && ok "every input line committed once ($n)" || bad "$n lines committed of $lines"
finish_cluster
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
