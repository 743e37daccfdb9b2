#!/usr/bin/env bash
# dedup: events repeated by id within the window are dropped (and routed to
# `duplicates`), repeats after the window pass, events without an id pass.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-dedup.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
{
  for i in $(seq 1 200); do
    t=$((1700000000000 + i * 1000))
    echo "{\"type\":\"click\",\"ts\":$t,\"request\":\"r$i\",\"user\":\"u$((i % 7))\",\"item\":\"i1\",\"event_id\":\"e$i\"}"
    # every 4th event is delivered twice, 2 s later: a duplicate
    [ $((i % 4)) -eq 0 ] && echo "{\"type\":\"click\",\"ts\":$((t + 2000)),\"request\":\"r$i\",\"user\":\"u$((i % 7))\",\"item\":\"i1\",\"event_id\":\"e$i\"}"
    # events without an id always pass
    [ $((i % 10)) -eq 0 ] && echo "{\"type\":\"click\",\"ts\":$t,\"request\":\"x$i\",\"user\":\"u1\",\"item\":\"i2\"}"
  done
  # and event 10 comes again at the end, long past its 1-minute window
  echo "{\"type\":\"click\",\"ts\":1700000300000,\"request\":\"r10\",\"user\":\"u3\",\"item\":\"i1\",\"event_id\":\"e10\"}"
} >"$work/in.jsonl"
cat >"$work/job.yaml" <<YAML
job: dedup
parallelism: 2
state: { dir: $work/state }
watermark: { out_of_orderness: 5s, emit_every: 10 }
sources: { logs: { type: file, path: $work/in.jsonl } }
operators:
  - { id: collect, op: log_collector, from: logs }
  - { id: once, op: dedup, from: collect, window: 1m, duplicates: dups }
sinks:
  out: { type: file, path: $work/out.jsonl, from: once }
  dups: { type: file, path: $work/dups.jsonl }
YAML
"$bin/runnel" run "$work/job.yaml" 2>"$work/run.txt" || bad "the job failed"
n_out=$(wc -l <"$work/out.jsonl"); n_dup=$(wc -l <"$work/dups.jsonl"); n_in=$(wc -l <"$work/in.jsonl")
# 200 first copies + 1 repeat after the window + 20 without id; 50 duplicates
[ "$n_out" -eq 221 ] && ok "221 events passed" || bad "$n_out events passed, expected 221"
[ "$n_dup" -eq 50 ] && ok "50 duplicates dropped and routed" || bad "$n_dup duplicates, expected 50"
[ $((n_out + n_dup)) -eq "$n_in" ] && ok "every input line accounted for ($n_in)" || bad "lines lost"
[ "$(grep -c '"event_id":"e10"' "$work/out.jsonl")" -eq 2 ] && ok "a repeat after the window passes" ||
  bad "the repeat of e10 after the window"
grep -q "passed 201  duplicates 50  without_id 20" "$work/run.txt" && ok "counters" || { bad "counters"; grep once "$work/run.txt"; }
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
