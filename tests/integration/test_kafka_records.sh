#!/usr/bin/env bash
# Records through Kafka between two runnel jobs, as the stages of a cluster job
# meet (`kafka` sink `format: record` -> `kafka_records` source), on `runnel
# dev-kafka`: job A parses the log and writes its events keyed by item; job B
# reads them back as events and re-keys them by item. B's output, sorted, must
# equal a one-process run of the same graph; a message that is not a record
# goes to B's dead letters with its topic, partition and offset.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-krec.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/kafka_lib.sh"
trap 'stop_kafka; rm -rf "$work"' EXIT

start_kafka "mid:4"
cat >"$work/a.yaml" <<YAML
job: stage-a
checkpoint: { dir: $work/a/ckpt, interval: 300ms }
state: { dir: $work/a/state }
sources:
  logs: { type: file, path: examples/data/logs.jsonl }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
sinks:
  mid: { type: kafka, brokers: "$BOOT", topic: mid, key: item, format: record,
         mode: exactly_once, from: collect }
  rejected: { type: file, path: $work/a/rejected.jsonl }
YAML
cat >"$work/b.yaml" <<YAML
job: stage-b
checkpoint: { dir: $work/b/ckpt, interval: 300ms }
state: { dir: $work/b/state }
sources:
  mid: { type: kafka_records, brokers: "$BOOT", topics: mid, record_type: event,
         stop_at_end: true, dead_letter: bad }
operators:
  - { id: by_item, op: key_by, from: mid, key: item }
sinks:
  out: { type: file, path: $work/b/out.jsonl, from: by_item }
  bad: { type: file, path: $work/b/bad.jsonl }
YAML
cat >"$work/ref.yaml" <<YAML
job: ref
sources:
  logs: { type: file, path: examples/data/logs.jsonl }
operators:
  - { id: collect, op: log_collector, from: logs }
  - { id: by_item, op: key_by, from: collect, key: item }
sinks:
  out: { type: file, path: $work/ref.jsonl, from: by_item }
YAML

"$bin/runnel" run "$work/a.yaml" >"$work/a.out" 2>&1 && ok "job A wrote its events as records" ||
  bad "job A: $(tail -3 "$work/a.out")"
printf 'junk\tnot a record\n' | kcat -P -q -b "$BOOT" -t mid -p 2 -K '\t' || bad "kcat produce"
"$bin/runnel" run "$work/b.yaml" >"$work/b.out" 2>&1 && ok "job B read them back" ||
  bad "job B: $(tail -3 "$work/b.out")"
"$bin/runnel" run "$work/ref.yaml" >/dev/null 2>&1 || bad "reference run"
n=$(grep -c . "$work/ref.jsonl")
if [ "$n" -gt 1000 ] && cmp -s <(sort "$work/ref.jsonl") <(sort "$work/b/out.jsonl"); then
  ok "B's output equals the one-process run ($n events, sorted)"
else
  bad "B wrote $(grep -c . "$work/b/out.jsonl") events, the one-process run $n"
fi
if grep -q '"where":"mid/2"' "$work/b/bad.jsonl" && grep -q 'not a runnel record message' "$work/b/bad.jsonl" &&
  [ "$(grep -c . "$work/b/bad.jsonl")" -eq 1 ]; then
  ok "the message that is not a record is B's one dead letter, with its partition"
else
  bad "dead letters: $(cat "$work/b/bad.jsonl")"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
