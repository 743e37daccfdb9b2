#!/usr/bin/env bash
# Records through Kafka between two runnel jobs, as the stages of a cluster job
# meet (`kafka` sink `format: record` -> `kafka_records` source), on `runnel
# dev-kafka`: job A parses the log and writes its events keyed by item; job B
# reads them back as events and re-keys them by item. B's output, sorted, must
# equal a one-process run of the same graph; a message that is not a record
# goes to B's dead letters with its topic, partition and offset.
# End markers (docs/cluster.md, "The end of a bounded job"): two writers W1 and
# W2 (`end_markers: true`) feed topic `ends`; a reader with `end_markers: 2`
# keeps running after W1 ended, is stopped and restarted from its checkpoint
# (which must remember W1's markers: they are not read again), and ends by
# itself once W2 ended, having read both writers' events exactly once.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-krec.XXXXXX)
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"
. "$RUNNEL_SRC/tests/integration/kafka_lib.sh"
trap 'stop_kafka; rm -rf "$work"' EXIT

start_kafka "mid:4,ends:3"
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
# ---- end markers, across a restart of the reader --------------------------------------------
for w in w1 w2; do
  cat >"$work/$w.yaml" <<YAML
job: writer-$w
checkpoint: { dir: $work/$w/ckpt, interval: 300ms }
state: { dir: $work/$w/state }
sources:
  logs: { type: file, path: examples/data/logs.jsonl }
operators:
  - { id: collect, op: log_collector, from: logs }
sinks:
  ends: { type: kafka, brokers: "$BOOT", topic: ends, key: item, format: record,
          mode: exactly_once, transactional_id_prefix: $w, end_markers: true, from: collect }
YAML
done
cat >"$work/reader.yaml" <<YAML
job: reader
checkpoint: { dir: $work/reader/ckpt, interval: 200ms }
state: { dir: $work/reader/state }
sources:
  ends: { type: kafka_records, brokers: "$BOOT", topics: ends, record_type: event, end_markers: 2 }
operators:
  - { id: by_item, op: key_by, from: ends, key: item }
sinks:
  out: { type: file, path: $work/reader/out.jsonl, from: by_item }
YAML
"$bin/runnel" run "$work/w1.yaml" >"$work/w1.out" 2>&1 || bad "writer w1: $(tail -3 "$work/w1.out")"
"$bin/runnel" run "$work/reader.yaml" >"$work/r1.out" 2>&1 &
rpid=$!
for i in $(seq 600); do
  [ "$(cat "$work"/reader/out*.jsonl 2>/dev/null | wc -l)" -ge "$n" ] && break
  sleep 0.1
done
sleep 1 # a few more checkpoints, past W1's markers
if kill -0 "$rpid" 2>/dev/null; then
  ok "the reader has W1's $n events and keeps running (W2 has not ended)"
else
  bad "the reader ended after one of two writers: $(tail -3 "$work/r1.out")"
fi
kill -TERM "$rpid" 2>/dev/null
wait "$rpid" 2>/dev/null
"$bin/runnel" run "$work/w2.yaml" >"$work/w2.out" 2>&1 || bad "writer w2: $(tail -3 "$work/w2.out")"
m=$(kcat_dump ends '%s\n' | grep -a -c '^RNE1')
[ "$m" -eq 6 ] && ok "each writer wrote one end marker into each of the 3 partitions" || bad "$m end markers"
if timeout 60 "$bin/runnel" run "$work/reader.yaml" >"$work/r2.out" 2>&1; then
  ok "the restarted reader ended by itself on both writers' markers"
else
  bad "the restarted reader did not end: $(tail -3 "$work/r2.out")"
fi
grep -q "restoring from" "$work/r2.out" && ok "it restored its checkpoint" || bad "no restore: $(head -3 "$work/r2.out")"
if cmp -s <(sort "$work/ref.jsonl" "$work/ref.jsonl") <(sort "$work/reader/out.jsonl"); then
  ok "the reader's output is both writers' events, each once ($((2 * n)) lines)"
else
  bad "the reader wrote $(grep -c . "$work/reader/out.jsonl") lines, want $((2 * n))"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
