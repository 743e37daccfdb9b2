#!/usr/bin/env bash
# Shared by the crash tests: run a job, kill it with SIGKILL, restart it, and
# compare its committed output with a reference run. The caller sets:
#   bin, work     runnel's build directory and a scratch directory
#   JOBNAME       the job's name (its checkpoints are $work/var/ckpt/$JOBNAME)
#   OUTPUTS       the output files' names in $work/var/out, without .jsonl
#   HEAD          the head of the keyed chain (its threads are counted)
# and has written $work/job.yaml, reading its replay rate from ${RATE} (set to
# ${CRASH_RATE:-60000} records a second).
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# An output's committed lines: a file, or every part file of a partitioned
# output directory (in-progress and pending parts are hidden dot-files).
out_of() {
  local p="$work/var/out/$1"
  if [ -d "$p" ]; then find "$p" -name 'part-*.jsonl' -exec cat {} +; else cat "$p.jsonl"; fi
}

# The reference: one run, no crash.
make_reference() {
  "$bin/runnel" run "$work/job.yaml" --quiet --fresh || bad "reference run"
  for f in $OUTPUTS; do out_of "$f" | sort >"$work/ref-$f.txt"; done
}

compare() { # label
  local same=1
  for f in $OUTPUTS; do
    [ -e "$work/var/out/$f.jsonl" ] || [ -d "$work/var/out/$f" ] || { same=0; continue; }
    out_of "$f" | sort | cmp -s - "$work/ref-$f.txt" || same=0
  done
  if [ $same -eq 1 ]; then ok "$1: committed output identical to the reference"; else
    bad "$1: output differs"; for f in $OUTPUTS; do
      echo "  $f: $(out_of "$f" | wc -l) lines, reference $(wc -l <"$work/ref-$f.txt")"
      # The first differences, so that a rare failure leaves its evidence.
      out_of "$f" | sort | diff - "$work/ref-$f.txt" | head -4 | cut -c1-400 | sed 's/^/    /'
    done; fi
}

# The highest completed checkpoint id so far (0: none).
latest() {
  local best=0 m id
  for m in "$work"/var/ckpt/$JOBNAME/chk-*/_manifest.json; do
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
    RATE=${CRASH_RATE:-60000} "$bin/runnel" run "$work/job.yaml" --quiet &
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
    RATE=${CRASH_RATE:-60000} "$bin/runnel" run "$work/job.yaml" --set parallelism="$last_p" \
      2>"$work/last.txt" || { bad "$label: final run failed"; tail -5 "$work/last.txt"; }
    grep -q "restoring from" "$work/last.txt" && ok "$label: the last run restored a checkpoint" ||
      bad "$label: the last run did not restore"
    [ "$last_p" = 2 ] || { grep -q "head=$HEAD" "$work/last.txt" &&
      [ "$(grep -c "head=$HEAD" "$work/last.txt")" = "$last_p" ] &&
      ok "$label: the last run had $last_p counting threads" || bad "$label: parallelism"; }
  elif [ "$last_p" != 2 ]; then
    bad "$label: the job finished before it could be restarted at parallelism $last_p"
  fi
  echo "  $label: $done_kills kills"
  [ $done_kills -ge "$kills" ] || [ $finished -eq 1 ] || bad "$label: too few kills"
  compare "$label"
}

