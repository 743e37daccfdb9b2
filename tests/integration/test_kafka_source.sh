#!/usr/bin/env bash
# The `kafka` source against `runnel dev-kafka` (librdkafka's mock cluster),
# fed by kcat:
#   1. it reads a topic into the same output as the file source on the same
#      lines, and dead-letters bad messages with topic/partition/offset (the
#      offset kcat finds the same message at);
#   2. kill -9 mid-run and restart (also at another parallelism): the restore
#      continues at the checkpointed offsets, and the committed output is
#      identical to an uninterrupted run;
#   3. an idle partition does not hold the watermark back (with
#      watermark.idle_timeout), and does hold it without;
#   4. the consumer lag shows on /metrics while it reads.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-ksrc.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/kafka_lib.sh"
trap 'stop_kafka; rm -rf "$work"' EXIT

start_kafka "events:4,crash:8,idle:2"

# kcat sends no empty messages for empty lines: leave those out of the input.
"$bin/rn_loggen" --events 20000 --users 2000 --bad-fraction 0.01 --seed 3 --out "$work/raw.jsonl" \
  2>/dev/null || { bad "loggen"; exit 1; }
grep -av '^$' "$work/raw.jsonl" >"$work/in.jsonl"
kcat -P -q -b "$BOOT" -t events -l "$work/in.jsonl" || bad "kcat produce"

# ---- 1. same output as the file source ---------------------------------------------------
cat >"$work/file.yaml" <<YAML
job: ksrc-file
sources:
  logs: { type: file, path: $work/in.jsonl }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
sinks:
  out: { type: file, path: $work/file/out.jsonl, from: collect }
  rejected: { type: file, path: $work/file/rejected.jsonl }
YAML
cat >"$work/kafka.yaml" <<YAML
job: ksrc-kafka
parallelism: 2
sources:
  logs: { type: kafka, brokers: "$BOOT", topics: events, stop_at_end: true }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
sinks:
  out: { type: file, path: $work/kafka/out.jsonl, from: collect }
  rejected: { type: file, path: $work/kafka/rejected.jsonl }
YAML
"$bin/runnel" run "$work/file.yaml" --quiet || bad "file run"
timeout 60 "$bin/runnel" run "$work/kafka.yaml" --quiet || bad "kafka run"
n_out=$(wc -l <"$work/kafka/out.jsonl")
n_rej=$(wc -l <"$work/kafka/rejected.jsonl")
cmp -s <(sort "$work/file/out.jsonl") <(sort "$work/kafka/out.jsonl") &&
  ok "kafka source: $n_out events, identical to the file source's" ||
  bad "kafka source output differs: $n_out events, file $(wc -l <"$work/file/out.jsonl")"
strip='s/"where":"[^"]*","offset":[0-9]*,//'
cmp -s <(sed "$strip" "$work/file/rejected.jsonl" | sort) <(sed "$strip" "$work/kafka/rejected.jsonl" | sort) &&
  [ "$n_rej" -gt 100 ] && ok "the same $n_rej dead letters" || bad "dead letters differ ($n_rej)"
[ $((n_out + n_rej)) -eq "$(wc -l <"$work/in.jsonl")" ] && ok "every message out or dead-lettered" ||
  bad "messages lost: $n_out + $n_rej of $(wc -l <"$work/in.jsonl")"
# A dead letter names topic/partition and offset: kcat finds the same message there.
checked=0 wrong=0
while IFS=' ' read -r part off data; do
  got=$(kcat -C -q -b "$BOOT" -t events -p "$part" -o "$off" -c 1 -f '%s' 2>/dev/null | base64 -w0)
  [ "$got" = "$data" ] || wrong=$((wrong + 1))
  checked=$((checked + 1))
done < <(python3 -c '
import json, sys, base64
for l in list(open(sys.argv[1]))[:20]:
    d = json.loads(l)
    topic, part = d["where"].split("/")
    raw = base64.b64decode(d["data_base64"]) if "data_base64" in d else d["data"].encode()
    if d["length"] == len(raw) and topic == "events":
        print(part, d["offset"], base64.b64encode(raw).decode())
' "$work/kafka/rejected.jsonl")
[ "$checked" -ge 10 ] && [ "$wrong" -eq 0 ] &&
  ok "dead letters name topic/partition/offset ($checked looked up with kcat)" ||
  bad "dead-letter positions: $wrong of $checked wrong"

# ---- 2. kill -9 and restore --------------------------------------------------------------
"$bin/rn_loggen" --events 60000 --users 5000 --out-of-order 1000 --bad-fraction 0.001 --seed 5 \
  2>/dev/null | grep -av '^$' >"$work/crash.jsonl"
kcat -P -q -b "$BOOT" -t crash -l "$work/crash.jsonl" || bad "kcat produce (crash)"
JOBNAME=kcrash OUTPUTS="counts rejected" HEAD=counts
cat >"$work/job.yaml" <<YAML
job: kcrash
parallelism: 2
max_parallelism: 64
state: { dir: $work/var/state }
checkpoint: { dir: $work/var/ckpt, interval: 300ms, retain: 2 }
watermark: { out_of_orderness: 2s, idle_timeout: 0 }
sources:
  logs: { type: kafka, brokers: "$BOOT", topics: crash, stop_at_end: true, max_rate: "\${RATE:-0}" }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
  - { id: counts, op: window_count, from: collect, key: user, size: 10s, slide: 5s }
sinks:
  out: { type: file, path: $work/var/out/counts.jsonl, from: counts }
  rejected: { type: file, path: $work/var/out/rejected.jsonl }
YAML
make_reference
[ "$(wc -l <"$work/ref-counts.txt")" -gt 1000 ] || bad "reference too small"
rm -rf "$work/var"
RATE=10000 "$bin/runnel" run "$work/job.yaml" --quiet &
pid=$!
for i in $(seq 200); do [ "$(latest)" -ge 2 ] && break; sleep 0.05; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
at=$(latest)
[ "$at" -ge 2 ] && ok "killed after checkpoint $at" || bad "no checkpoint before the kill"
timeout 120 "$bin/runnel" run "$work/job.yaml" 2>"$work/restart.txt" >/dev/null || bad "restart failed"
grep -q "restor" "$work/restart.txt" && ok "the restart restored a checkpoint" ||
  bad "the restart did not restore: $(head -3 "$work/restart.txt")"
compare "kill -9 mid-run"
# The same at parallelism 2, restarted at 3: partitions move between
# subtasks, and their offsets with them.
rm -rf "$work/var"
RATE=10000 "$bin/runnel" run "$work/job.yaml" --quiet &
pid=$!
for i in $(seq 200); do [ "$(latest)" -ge 2 ] && break; sleep 0.05; done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
timeout 120 "$bin/runnel" run "$work/job.yaml" --set parallelism=3 --quiet || bad "restart at 3 failed"
compare "kill -9 at parallelism 2, restart at 3"

# ---- 3. an idle partition does not hold the watermark ------------------------------------
# Events only in partition 0 of `idle`; partition 1 stays empty. One subtask
# reads both. Unbounded, then stopped: a stop does not flush event time, so
# windows come out only if the watermark moved.
grep -a '"type":"click"' "$work/crash.jsonl" | head -3000 >"$work/p0.jsonl"
kcat -P -q -b "$BOOT" -t idle -p 0 -l "$work/p0.jsonl" || bad "kcat produce (idle)"
idle_run() { # idle_timeout output
  cat >"$work/idle.yaml" <<YAML
job: kidle
watermark: { out_of_orderness: 1s, idle_timeout: $1, emit_every: 64 }
sources:
  logs: { type: kafka, brokers: "$BOOT", topics: idle }
operators:
  - { id: collect, op: log_collector, from: logs }
  - { id: counts, op: window_count, from: collect, key: user, size: 10s, slide: 10s }
sinks:
  out: { type: file, path: $2, from: counts, flush_interval: 100ms, buffer: 4KiB }
YAML
  "$bin/runnel" run "$work/idle.yaml" --quiet &
  local p=$! i
  for i in $(seq 60); do [ -s "$2" ] && break; sleep 0.1; done
  kill -TERM $p 2>/dev/null
  wait $p 2>/dev/null
}
idle_run 500ms "$work/idle-on.jsonl"
idle_run 0 "$work/idle-off.jsonl"
n_on=$(wc -l <"$work/idle-on.jsonl" 2>/dev/null || echo 0)
n_off=$(wc -l <"$work/idle-off.jsonl" 2>/dev/null || echo 0)
[ "$n_on" -gt 0 ] && ok "idle partition skipped after idle_timeout: $n_on windows fired" ||
  bad "no window fired with an idle partition and idle_timeout 500ms"
[ "$n_off" -eq 0 ] && ok "without idle_timeout the empty partition holds the watermark" ||
  bad "$n_off windows fired although a partition never had data (idle_timeout 0)"

# ---- 4. consumer lag on /metrics ---------------------------------------------------------
cat >"$work/lag.yaml" <<YAML
job: klag
http: { listen: "127.0.0.1:0" }
sources:
  logs: { type: kafka, brokers: "$BOOT", topics: crash, max_rate: 2000 }
sinks:
  out: { type: discard, from: logs }
YAML
"$bin/runnel" run "$work/lag.yaml" >"$work/lag.out" 2>&1 &
pid=$!
lag=0
for i in $(seq 60); do
  addr=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/lag.out" | head -1)
  if [ -n "$addr" ]; then
    lag=$(curl -s "$addr/metrics" | awk '/name="lag"/ {print int($NF); exit}')
    [ "${lag:-0}" -gt 1000 ] && break # the first figure may come before every partition is known
  fi
  sleep 0.1
done
kill -TERM $pid 2>/dev/null
wait $pid 2>/dev/null
[ "${lag:-0}" -gt 1000 ] && ok "consumer lag on /metrics: $lag messages" ||
  bad "no consumer lag on /metrics (${lag:-none}; $(head -2 "$work/lag.out"))"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
