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
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

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

# The reference: one run, no crash.
"$bin/runnel" run "$work/job.yaml" --quiet --fresh || bad "reference run"
for f in counts late rejected; do sort "$work/var/out/$f.jsonl" >"$work/ref-$f.txt"; done
n_ref=$(wc -l <"$work/ref-counts.txt")
n_late=$(wc -l <"$work/ref-late.txt")
[ "$n_ref" -gt 50000 ] && [ "$n_late" -gt 100 ] && ok "reference: $n_ref windows, $n_late late events" ||
  bad "reference has too little output ($n_ref windows, $n_late late)"

compare() { # label
  local same=1
  for f in counts late rejected; do
    [ -f "$work/var/out/$f.jsonl" ] || { same=0; continue; }
    sort "$work/var/out/$f.jsonl" | cmp -s - "$work/ref-$f.txt" || same=0
  done
  if [ $same -eq 1 ]; then ok "$1: committed output identical to the reference"; else
    bad "$1: output differs"; for f in counts late rejected; do
      echo "  $f: $(wc -l <"$work/var/out/$f.jsonl") lines, reference $(wc -l <"$work/ref-$f.txt")"; done; fi
}

# The highest completed checkpoint id so far (0: none).
latest() {
  local best=0 m id
  for m in "$work"/var/ckpt/crash/chk-*/_manifest.json; do
    [ -f "$m" ] || continue
    id=${m%/_manifest.json}; id=${id##*chk-}
    [ "$id" -gt "$best" ] && best=$id
  done
  echo "$best"
}

# Kills at random points — each after the run completed at least one new
# checkpoint, so every restart has progress to restore — then a restart that
# runs to the end.
crash_run() { # label parallelism-of-last-run kills
  local label=$1 last_p=$2 kills=$3
  rm -rf "$work/var"
  local done_kills=0 finished=0 attempt=0
  while [ $done_kills -lt "$kills" ] && [ $attempt -lt 40 ]; do
    attempt=$((attempt + 1))
    local before; before=$(latest)
    RATE=60000 "$bin/runnel" run "$work/job.yaml" --quiet &
    local pid=$!
    local waited=0
    while [ "$(latest)" -le "$before" ] && kill -0 "$pid" 2>/dev/null && [ $waited -lt 600 ]; do
      sleep 0.05; waited=$((waited + 1))
    done
    sleep "0.$((RANDOM % 5))$((RANDOM % 10))"
    if kill -9 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null
      done_kills=$((done_kills + 1))
    else
      wait "$pid"; finished=1; break
    fi
  done
  if [ $finished -eq 0 ]; then
    RATE=60000 "$bin/runnel" run "$work/job.yaml" --set parallelism="$last_p" \
      2>"$work/last.txt" || { bad "$label: final run failed"; tail -5 "$work/last.txt"; }
    grep -q "restoring from" "$work/last.txt" && ok "$label: the last run restored a checkpoint" ||
      bad "$label: the last run did not restore"
    [ "$last_p" = 2 ] || { grep -q "head=counts" "$work/last.txt" &&
      [ "$(grep -c "head=counts" "$work/last.txt")" = "$last_p" ] &&
      ok "$label: the last run had $last_p counting threads" || bad "$label: parallelism"; }
  elif [ "$last_p" != 2 ]; then
    bad "$label: the job finished before it could be restarted at parallelism $last_p"
  fi
  echo "  $label: $done_kills kills"
  [ $done_kills -ge "$kills" ] || [ $finished -eq 1 ] || bad "$label: too few kills"
  compare "$label"
}

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
RATE=60000 "$bin/runnel" run "$work/job.yaml" 2>"$work/restart.txt" --quiet
grep -q "restoring from .*chk-[13] " "$work/restart.txt" || true
compare "kills mid-checkpoint"

# Checkpoints at parallelism 2, restart at 3.
crash_run "kills at parallelism 2, restart at 3" 3 3

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
