#!/usr/bin/env bash
# The cluster's CLI against a running coordinator (`runnel cluster start`
# listening on 0.0.0.0, so that a token is required): an unreachable
# coordinator is named; calls that change something are refused without the
# token; an invalid job is refused with its YAML error; submit, list,
# status, workers, savepoint and cancel work; the cluster view, its JSON and
# /metrics show the workers and the job.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-clcli.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/kafka_lib.sh"
. "$RUNNEL_SRC/tests/integration/cluster_lib.sh"
trap 'stop_cluster; stop_kafka; rm -rf "$work"' EXIT

# ---- no coordinator --------------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin/runnel" list --coordinator 127.0.0.1:$port >"$work/o" 2>"$work/e"
rc=$?
[ $rc -eq 1 ] && grep -q "cannot reach the coordinator at 127.0.0.1:$port" "$work/e" &&
  ok "unreachable coordinator: exit 1, named" || bad "unreachable: rc $rc: $(cat "$work/e")"
"$bin/runnel" submit >/dev/null 2>&1
[ $? -eq 2 ] && ok "usage error: exit 2" || bad "usage error exit code"
"$bin/runnel" submit --help | grep -q "runnel submit JOB.yaml" && ok "submit --help prints its usage" ||
  bad "submit --help"

start_kafka "events:3"
"$bin/rn_loggen" --events 3000 --users 300 --seed 2 --out "$work/raw.jsonl" 2>/dev/null
produce_by_user "$work/raw.jsonl" events

start_cluster 2 --listen 0.0.0.0:0
tok="$work/cluster/token"
[ "$(stat -c %a "$tok" 2>/dev/null)" = 600 ] && [ "$(tr -d '\n' <"$tok" | wc -c)" -eq 64 ] &&
  ok "token generated on first start, mode 0600" || bad "token file: $(stat -c %a "$tok" 2>&1)"
[ "$(rn workers | awk '$4 == "yes"' | wc -l)" -eq 2 ] && ok "2 workers registered with the token" ||
  bad "workers: $(rn workers)"

cat >"$work/job.yaml" <<YAML
job: clicks
checkpoint: { dir: $work/ckpt, interval: 500ms }
state: { dir: $work/state }
sources:
  logs: { type: kafka, brokers: "$BOOT", topics: events, properties: { fetch.wait.max.ms: 10 } }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
sinks:
  out: { type: file, path: $work/out/out.jsonl, from: collect }
  rejected: { type: file, path: $work/out/rejected.jsonl }
YAML

# ---- without the token ------------------------------------------------------------------------
rn submit "$work/job.yaml" >"$work/o" 2>"$work/e"
rc=$?
[ $rc -eq 1 ] && grep -q "401" "$work/e" && grep -q "token" "$work/e" &&
  ok "submit without the token refused (401)" || bad "submit without token: rc $rc $(cat "$work/e")"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @"$work/job.yaml" \
  -H 'Authorization: Bearer 0000' "http://$ADDR/api/v1/jobs")
[ "$code" = 401 ] && ok "a wrong token is refused (401)" || bad "wrong token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$ADDR/api/v1/cluster/register" -d '{}')
[ "$code" = 401 ] && ok "a worker without the token cannot register" || bad "register without token: $code"
rn list >/dev/null && ok "reading needs no token" || bad "list without token"

export RUNNEL_TOKEN_FILE="$tok"
# ---- an invalid job ------------------------------------------------------------------------
sed 's/op: log_collector/op: log_colector/' "$work/job.yaml" >"$work/bad.yaml"
rn submit "$work/bad.yaml" >"$work/o" 2>"$work/e"
rc=$?
line=$(grep -n log_colector "$work/bad.yaml" | cut -d: -f1)
[ $rc -eq 1 ] && grep -q "$work/bad.yaml:$line:[0-9]*: unknown operator type 'log_colector'" "$work/e" &&
  ok "invalid job refused with its YAML error: $(head -c 120 "$work/e")" ||
  bad "invalid job: rc $rc: $(cat "$work/e")"

# ---- submit, list, status, workers --------------------------------------------------------------
rn submit "$work/job.yaml" >"$work/o" 2>"$work/e" &&
  grep -q "job clicks submitted: 3 tasks over 2 workers" "$work/o" && ok "submit: $(cat "$work/o")" ||
  bad "submit: $(cat "$work/o" "$work/e")"
rn submit "$work/job.yaml" >/dev/null 2>"$work/e"
[ $? -eq 1 ] && grep -q "already running" "$work/e" && ok "a second submit of a running job is refused" ||
  bad "second submit: $(cat "$work/e")"
for i in $(seq 100); do
  [ "$(cat "$work"/out/out.p*.jsonl 2>/dev/null | wc -l)" -ge 2900 ] && break
  sleep 0.1
done
rn list | grep -Eq '^clicks +running +- +2 +3/3' && ok "list: clicks running, 3/3 tasks on 2 workers" ||
  bad "list: $(rn list)"
rn status clicks | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["state"] == "running" and len(d["tasks"]) == 3, d
assert sorted(t["partition"] for t in d["tasks"]) == [0, 1, 2]
assert len({t["worker"] for t in d["tasks"]}) == 2' && ok "status: 3 tasks, one per partition, on 2 workers" ||
  bad "status: $(rn status clicks)"
rn status nosuch >/dev/null 2>"$work/e"
[ $? -eq 1 ] && grep -q "no job 'nosuch'" "$work/e" && ok "status of an unknown job: named" || bad "status nosuch"

# ---- savepoint ----------------------------------------------------------------------------------
rn savepoint clicks >"$work/o" 2>"$work/e"
sp=$(sed -n 's/^savepoint [0-9]* completed: //p' "$work/o")
[ -n "$sp" ] && python3 -c '
import json, os, sys
d = json.load(open(sys.argv[1]))
assert len(d["tasks"]) == 3
for t in d["tasks"]:
    assert os.path.exists(t["path"] + "/_manifest.json"), t' "$sp" &&
  ok "savepoint: $(cat "$work/o") (each task's savepoint complete)" || bad "savepoint: $(cat "$work/o" "$work/e")"

# ---- the cluster view -----------------------------------------------------------------------------
curl -s "http://$ADDR/metrics" | grep -q '^runnel_cluster_workers_alive 2$' &&
  curl -s "http://$ADDR/metrics" | grep -q 'runnel_cluster_task_records{job="clicks",task="p2"}' &&
  curl -s "http://$ADDR/metrics" | grep -q "^runnel_cluster_task_lag{job=\"clicks\",task=\"p1\"} 0$" &&
  ok "/metrics: workers alive and per-task figures" || bad "/metrics"
page=$(curl -s "http://$ADDR/plain") # the tables; "/" is the web UI (test_webui_cluster.sh)
wpage=$(rn workers | awk 'NR == 2 { print $NF }')
echo "$page" | grep -q "<h3>clicks" && echo "$page" | grep -q "href=\"$wpage\"" &&
  curl -s "$wpage" | grep -q "clicks" && ok "cluster view: jobs, and links to workers' pages ($wpage)" ||
  bad "cluster view"
curl -s "http://$ADDR/api/v1/workers" | python3 -c '
import json, sys
w = json.load(sys.stdin)["workers"]
assert sum(x["n_tasks"] for x in w if x["alive"]) == 3 and all("last_checkpoint" in x for x in w)' &&
  ok "workers JSON: tasks, rates, last checkpoint" || bad "workers JSON"

# ---- cancel --------------------------------------------------------------------------------------
rn cancel clicks >"$work/o" 2>"$work/e" && grep -q "job clicks canceled" "$work/o" &&
  rn list | grep -Eq '^clicks +canceled' && ok "cancel: $(cat "$work/o")" || bad "cancel: $(cat "$work/o" "$work/e")"
n=$(cat "$work"/out/out.p*.jsonl | wc -l)
r=$(cat "$work"/out/rejected.p*.jsonl | wc -l)
[ $((n + r)) -eq "$(kcat_count events)" ] && ok "after cancel every message is committed once ($n + $r)" ||
  bad "after cancel: $n + $r of $(kcat_count events)"
rn savepoint clicks >/dev/null 2>"$work/e"
[ $? -eq 1 ] && grep -q "is canceled" "$work/e" && ok "savepoint of a canceled job refused" || bad "savepoint canceled"
# ---- a job's own status page beyond loopback -------------------------------------------------
unset RUNNEL_TOKEN_FILE
printf '%s\n' "$(head -50 "$work/raw.jsonl")" >"$work/in.jsonl"
cat >"$work/one.yaml" <<YAML
job: one
http: { listen: 0.0.0.0:0 }
checkpoint: { dir: $work/one/ckpt, interval: 1h }
state: { dir: $work/one/state }
sources:
  logs: { type: file, path: $work/in.jsonl, follow: true }
operators:
  - { id: collect, op: log_collector, from: logs }
sinks:
  out: { type: file, path: $work/one/out.jsonl, from: collect }
YAML
"$bin/runnel" run "$work/one.yaml" --token-file "$work/one.token" 2>"$work/one.err" &
jpid=$!
for i in $(seq 100); do grep -q "status page at" "$work/one.err" && break; sleep 0.05; done
jaddr=$(sed -n 's|.*status page at http://\(.*\)/$|\1|p' "$work/one.err")
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$jaddr/api/v1/savepoints")
code2=$(curl -s -o /dev/null -w '%{http_code}' "http://$jaddr/api/v1/job")
[ "$code" = 401 ] && [ "$code2" = 200 ] && [ "$(stat -c %a "$work/one.token")" = 600 ] &&
  ok "a job's status page on 0.0.0.0: savepoint without the token 401, reading 200" ||
  bad "job page without token: POST $code, GET $code2"
RUNNEL_TOKEN_FILE="$work/one.token" "$bin/runnel" savepoint "$jaddr" >"$work/o" 2>&1 &&
  ok "with the token: $(cat "$work/o")" || bad "savepoint with token: $(cat "$work/o")"
kill "$jpid"; wait "$jpid"
finish_cluster
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
