#!/usr/bin/env bash
# Restore mid-window: a job with sliding windows (allowed lateness, so late
# records update fired windows; collect, avg) and session windows over 60,000
# out-of-order events, checkpointing every 0.3 s, is killed with SIGKILL at
# random points and restarted from its checkpoints; its committed output must
# equal (sorted) that of a run without crashes — the open windows, their
# collected values, the sessions and the timers all come back from the
# checkpoint. A last restart runs at another parallelism.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-winrestore.XXXXXX)
trap 'rm -rf "$work"' EXIT
JOBNAME=winrestore OUTPUTS="slide sess late" HEAD=slide
# 60,000 events at 20,000 a second: a run lasts long enough to be killed on a
# quiet machine too (at crash_lib's default rate it could finish first)
CRASH_RATE=20000
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"

"$bin/rn_loggen" --events 60000 --users 3000 --out-of-order 1000 --late-fraction 0.02 \
  --seed 5 --out "$work/in.jsonl" 2>/dev/null || { bad "loggen"; exit 1; }
cat >"$work/job.yaml" <<YAML
job: winrestore
parallelism: 2
max_parallelism: 64
state: { dir: $work/var/state, cache_size: 1MiB }
checkpoint: { dir: $work/var/ckpt, interval: 300ms, retain: 2 }
watermark: { out_of_orderness: 500ms, idle_timeout: 0 }
sources:
  logs: { type: file, path: $work/in.jsonl, max_rate: "\${RATE:-0}" }
operators:
  - { id: collect, op: log_collector, from: logs }
  - id: slide
    op: window
    from: collect
    key: user
    size: 10s
    slide: 5s
    allowed_lateness: 2s
    late: out_late
    aggregates: { n: count, spent: sum(amount), mean: avg(amount), "last": "collect(request, 4)" }
  - { id: sess, op: window, from: collect, key: user, session: 3s,
      aggregates: { n: count, top: max(amount) } }
sinks:
  out_slide: { type: file, path: $work/var/out/slide.jsonl, from: slide }
  out_sess: { type: file, path: $work/var/out/sess.jsonl, from: sess }
  out_late: { type: file, path: $work/var/out/late.jsonl }
YAML

make_reference
n_ref=$(wc -l <"$work/ref-slide.txt")
n_upd=$(grep -c '"update":true' "$work/ref-slide.txt")
n_sess=$(wc -l <"$work/ref-sess.txt")
[ "$n_ref" -gt 10000 ] && [ "$n_upd" -gt 0 ] && [ "$n_sess" -gt 5000 ] &&
  ok "reference: $n_ref sliding results ($n_upd updates), $n_sess sessions" ||
  bad "reference has too little output ($n_ref sliding, $n_upd updates, $n_sess sessions)"

crash_run "kill -9 at 3 random points" 2 3
crash_run "kills at parallelism 2, restart at 3" 3 2

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
