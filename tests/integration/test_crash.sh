#!/usr/bin/env bash
# Crash test: a keyed, event-time windowed job over 200,000 events (out-of-order
# timestamps and late records) with checkpoints every 0.5 s is killed with
# SIGKILL at random points and restarted each time; its committed output must
# be byte-identical (after sorting) to a run without crashes. Then the same
# with kills in the middle of writing a checkpoint, and with a restart at
# parallelism 3 from checkpoints taken at 2.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-crash.XXXXXX)
trap 'rm -rf "$work"' EXIT
JOBNAME=crash OUTPUTS="counts late rejected" HEAD=counts
. "$RUNNEL_SRC/tests/integration/crash_lib.sh"

"$bin/rn_loggen" --events 200000 --users 20000 --out-of-order 1000 --late-fraction 0.01 \
  --bad-fraction 0.001 --seed 11 --out "$work/in.jsonl" 2>/dev/null || { bad "loggen"; exit 1; }
cat >"$work/job.yaml" <<YAML
job: crash
parallelism: 2
max_parallelism: 64
state: { dir: $work/var/state, cache_size: 2MiB }
checkpoint: { dir: $work/var/ckpt, interval: 500ms, retain: 2 }
watermark: { out_of_orderness: 2s, idle_timeout: 0 }
sources:
  logs: { type: file, path: $work/in.jsonl, max_rate: "\${RATE:-0}" }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
  - { id: counts, op: window_count, from: collect, key: user, size: 10s, slide: 5s, late: late }
sinks:
  out: { type: file, path: $work/var/out/counts.jsonl, from: counts }
  late: { type: file, path: $work/var/out/late.jsonl }
  rejected: { type: file, path: $work/var/out/rejected.jsonl }
YAML

make_reference
n_ref=$(wc -l <"$work/ref-counts.txt")
n_late=$(wc -l <"$work/ref-late.txt")
[ "$n_ref" -gt 50000 ] && [ "$n_late" -gt 100 ] && ok "reference: $n_ref windows, $n_late late events" ||
  bad "reference has too little output ($n_ref windows, $n_late late)"

crash_run "kill -9 at 6 random points" 2 6

# A kill in the middle of writing a checkpoint: after a task wrote part of
# its snapshot, and after every task acked but before the manifest.
rm -rf "$work/var"
RATE=60000 RUNNEL_FAULT=checkpoint:2:task "$bin/runnel" run "$work/job.yaml" --quiet 2>/dev/null
rc=$?
[ $rc -eq 137 ] && ok "fault in a task snapshot killed the process" || bad "fault (task): exit $rc"
[ -d "$work/var/ckpt/crash/chk-2" ] && [ ! -f "$work/var/ckpt/crash/chk-2/_manifest.json" ] &&
  ok "the half-written checkpoint has no manifest" || bad "half-written checkpoint state"
RATE=60000 RUNNEL_FAULT=checkpoint:4:manifest "$bin/runnel" run "$work/job.yaml" --quiet 2>/dev/null
rc=$?
[ $rc -eq 137 ] && ok "fault before the manifest killed the process" || bad "fault (manifest): exit $rc"
# The restart must pick the newest checkpoint that has a manifest, passing over the two
# half-written ones. Not --quiet: the "restoring from" line is what it prints.
last=$(ls "$work/var/ckpt/crash" | sed -n 's/^chk-\([0-9]*\)$/\1/p' | sort -n |
  while read -r id; do [ -f "$work/var/ckpt/crash/chk-$id/_manifest.json" ] && echo "$id"; done | tail -1)
RATE=60000 "$bin/runnel" run "$work/job.yaml" >/dev/null 2>"$work/restart.txt"
rc=$?
[ $rc -eq 0 ] && [ -n "$last" ] && grep -q "restoring from .*chk-$last (checkpoint $last)$" "$work/restart.txt" &&
  ok "the restart restored from chk-$last, the newest complete checkpoint" ||
  bad "restart after the faults: exit $rc, newest complete checkpoint '${last:-none}': $(grep -m1 'restoring\|error' "$work/restart.txt")"
compare "kills mid-checkpoint"

# Checkpoints at parallelism 2, restart at 3. Two kills at a slower replay: each
# run makes at most about 1.5 s of progress (a checkpoint, then up to 0.5 s), so
# the job cannot finish before the restart at 3 (it did once with three kills
# at 60,000 a second).
CRASH_RATE=40000 crash_run "kills at parallelism 2, restart at 3" 3 2

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
