#!/usr/bin/env bash
# Fault injection: each fault must end the run (no hang: every run is under
# `timeout`) with the right exit status and a message naming the cause, and
# once the cause is gone a restart must commit output identical to a run
# without faults.
#
#   full disks      the checkpoint, state and output directories on a small
#                   tmpfs, mounted in a mount namespace of the test's own
#                   (unshare -m; skipped, and said so, where that is not allowed)
#   corrupt files   a flipped byte in the latest checkpoint, a truncated
#                   manifest: the checkpoint before it is restored
#   kill -9         during a restore, during the final checkpoint
#   signals         SIGTERM while running, while a restore or a checkpoint
#                   hangs; a second signal
#   a followed file truncated or replaced under the job, and while it was
#                   stopped
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
work=$(mktemp -d /tmp/runnel-faults.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
check() { # label, then a command that must succeed
  local label=$1; shift
  if "$@"; then ok "$label"; else bad "$label"; fi
}
# RUNNEL_FAULTS="disks signals" runs only those sections (the sanitizer trees
# take a part); unset: every section.
want() { [ -z "${RUNNEL_FAULTS:-}" ] || [[ " $RUNNEL_FAULTS " == *" $1 "* ]]; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

"$bin/rn_loggen" --events 40000 --users 4000 --out-of-order 500 --seed 5 \
  --out "$work/in.jsonl" 2>/dev/null || { bad "loggen"; exit 1; }

# A keyed, windowed job at parallelism 2; RATE paces its source, INTERVAL is
# the checkpoint interval (1h: only the final checkpoint).
cat >"$work/job.yaml" <<YAML
job: faults
parallelism: 2
max_parallelism: 32
state: { dir: $work/var/state, cache_size: 256KiB }
checkpoint: { dir: $work/var/ckpt, interval: "\${INTERVAL:-1h}", retain: 3, tolerable_failures: 2 }
sources:
  logs: { type: file, path: $work/in.jsonl, max_rate: "\${RATE:-0}" }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
  - { id: counts, op: window_count, from: collect, key: user, size: 10s, slide: 5s }
sinks:
  out: { type: file, path: $work/var/out/counts.jsonl, from: counts }
  rejected: { type: file, path: $work/var/out/rejected.jsonl }
YAML
run() { timeout 60 "$bin/runnel" run "$work/job.yaml" --quiet "$@"; }
outputs() { cat "$work/var/out/counts.jsonl" 2>/dev/null | sort; }

run --fresh 2>"$work/ref.err" || bad "reference run"
outputs >"$work/ref.txt"
[ "$(wc -l <"$work/ref.txt")" -gt 5000 ] && ok "reference: $(wc -l <"$work/ref.txt") windows" ||
  bad "reference has too little output"
same() { # label: committed output identical to the reference
  if outputs | cmp -s - "$work/ref.txt"; then ok "$1: output identical to the reference"; else
    bad "$1: output differs ($(outputs | wc -l) lines, reference $(wc -l <"$work/ref.txt"))"; fi
}

# The highest completed checkpoint (0: none).
latest() {
  local best=0 m id
  for m in "$work"/var/ckpt/faults/chk-*/_manifest.json; do
    [ -f "$m" ] || continue
    id=${m%/_manifest.json}; id=${id##*chk-}
    [ "$id" -gt "$best" ] && best=$id
  done
  echo "$best"
}

# Runs a job in the background with RATE=4000 and checkpoints every 150 ms,
# and kills it with SIGKILL once at least $1 checkpoints completed.
run_until_checkpoints() {
  rm -rf "$work/var"
  RATE=4000 INTERVAL=150ms "$bin/runnel" run "$work/job.yaml" --quiet 2>/dev/null &
  local pid=$! waited=0
  while [ "$(latest)" -lt "$1" ] && [ $waited -lt 300 ]; do sleep 0.05; waited=$((waited + 1)); done
  kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [ "$(latest)" -ge "$1" ]
}

# The same job following its input: it never ends on its own.
sed -e 's/path: \(.*in.jsonl\),/path: \1, follow: true,/' -e '/^parallelism:/a http: { listen: "127.0.0.1:0" }' \
  "$work/job.yaml" >"$work/follow.yaml"

# ---- full disks -------------------------------------------------------------------
if want disks; then
#
# faulty SIZE DIR CMD...: runs CMD with DIR on a tmpfs of SIZE in a private
# mount namespace. DIR's files are carried onto the tmpfs and back off it
# afterwards: the disk filled up, then space was made.
faulty() {
  local size=$1 dir=$2; shift 2
  rm -rf "$work/carry"; mkdir -p "$work/carry" "$dir"
  cp -a "$dir/." "$work/carry/"
  unshare -m --propagation private bash -c '
    size=$1 dir=$2 carry=$3; shift 3
    mount -t tmpfs -o size="$size" tmpfs "$dir" || exit 97
    cp -a "$carry/." "$dir/"
    "$@"; rc=$?
    rm -rf "$carry"; mkdir -p "$carry"; cp -a "$dir/." "$carry/"
    exit $rc' _ "$size" "$dir" "$work/carry" "$@"
  local rc=$?
  rm -rf "$dir"; mkdir -p "$dir"; cp -a "$work/carry/." "$dir/"
  return $rc
}

if unshare -m --propagation private true 2>/dev/null; then
  # The checkpoint directory is full: the final checkpoint cannot be written.
  # It is retried, then the job fails, naming the file and the errno.
  rm -rf "$work/var"
  t0=$(now_ms)
  # (48k: the final checkpoint of this job holds no SST file — every window
  # has fired and no deletes are written for keys RocksDB never had — but its
  # 17 small files take about 70k of tmpfs pages.)
  faulty 48k "$work/var/ckpt" timeout 60 "$bin/runnel" run "$work/job.yaml" --quiet \
    2>"$work/err.txt"
  rc=$? dt=$(($(now_ms) - t0))
  check "checkpoint dir full: exit 1 (got $rc) in $dt ms" [ $rc -eq 1 ] && [ $dt -lt 60000 ]
  check "checkpoint dir full: the message names the cause" \
    grep -q "No space left on device.*tolerable_failures is 2" "$work/err.txt"
  check "checkpoint dir full: the final checkpoint was taken again" \
    grep -q "taking the final checkpoint again" "$work/err.txt"
  check "checkpoint dir full: failed checkpoints leave no directory" \
    bash -c "! ls -d '$work'/var/ckpt/faults/chk-* 2>/dev/null"
  run 2>"$work/err.txt" || bad "checkpoint dir full: restart failed"
  same "checkpoint dir full, then space"

  # Periodic checkpoints that keep failing fail a job that would never end.
  rm -rf "$work/var"
  t0=$(now_ms)
  faulty 200k "$work/var/ckpt" env INTERVAL=100ms timeout 60 "$bin/runnel" run \
    "$work/follow.yaml" --quiet 2>"$work/err.txt"
  rc=$? dt=$(($(now_ms) - t0))
  check "periodic checkpoints failing: exit 1 (got $rc) in $dt ms" [ $rc -eq 1 ] && [ $dt -lt 20000 ]
  check "periodic checkpoints failing: 3 in a row, then the job failed" \
    grep -q "3 checkpoints in a row failed; checkpoint.tolerable_failures is 2" "$work/err.txt"

  # The state directory is full.
  rm -rf "$work/var"
  # (32k: the two working databases' own files need more; their data never
  # reaches the disk in this job, see above.)
  faulty 32k "$work/var/state" timeout 60 "$bin/runnel" run "$work/job.yaml" --quiet \
    2>"$work/err.txt"
  rc=$?
  check "state dir full: exit 1 (got $rc)" [ $rc -eq 1 ]
  check "state dir full: the message names the cause" \
    grep -q "No space left on device" "$work/err.txt"
  run 2>"$work/err.txt" || bad "state dir full: restart failed"
  same "state dir full, then space"

  # The output directory fills up after some checkpoints completed: the
  # restart restores the last of them and commits exactly the rest.
  rm -rf "$work/var"
  mkdir -p "$work/var/out"
  faulty 300k "$work/var/out" env RATE=20000 INTERVAL=100ms timeout 60 "$bin/runnel" run \
    "$work/job.yaml" --quiet 2>"$work/err.txt"
  rc=$?
  check "output dir full: exit 1 (got $rc)" [ $rc -eq 1 ]
  check "output dir full: the message names the sink and the cause" \
    grep -q "sink 'out'.*No space left on device" "$work/err.txt"
  check "output dir full: checkpoints completed before" [ "$(latest)" -ge 1 ]
  run 2>"$work/err.txt" || bad "output dir full: restart failed"
  same "output dir full, then space"

  # A checkpoint directory on another filesystem than the state: RocksDB's
  # hard links fall back to copies.
  rm -rf "$work/var"
  faulty 64m "$work/var/ckpt" env RATE=20000 INTERVAL=100ms timeout 60 "$bin/runnel" run \
    "$work/job.yaml" --quiet 2>"$work/err.txt"
  rc=$?
  check "checkpoints on another filesystem: exit 0 (got $rc)" [ $rc -eq 0 ]
  check "checkpoints on another filesystem: several completed" [ "$(latest)" -ge 2 ]
  same "checkpoints on another filesystem"
else
  echo "SKIP full-disk faults: this user cannot make a mount namespace (unshare -m)"
fi

fi

# ---- corrupt checkpoints ----------------------------------------------------------
if want corrupt; then

flip_byte() { # file offset
  local b; b=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf %03o $((b ^ 0x5a)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

if run_until_checkpoints 3; then
  n=$(latest)
  f=$(find "$work/var/ckpt/faults/chk-$n/tasks" -name '*.sst' | head -1)
  [ -n "$f" ] || f=$(find "$work/var/ckpt/faults/chk-$n/tasks" -name 'runtime.bin' | head -1)
  flip_byte "$f" $(($(stat -c %s "$f") / 2))
  run 2>"$work/err.txt"
  rc=$?
  check "flipped byte: the restart succeeds (exit $rc)" [ $rc -eq 0 ]
  check "flipped byte: the damaged checkpoint $n is reported" \
    grep -q "checkpoint $n cannot be restored: .*is corrupt: its checksum differs" "$work/err.txt"
  check "flipped byte: the checkpoint before it is restored" \
    grep -q "using checkpoint $((n - 1)), the latest intact one" "$work/err.txt"
  same "flipped byte in a checkpoint"
else
  bad "no checkpoints completed for the corruption test"
fi

if run_until_checkpoints 3; then
  n=$(latest)
  m="$work/var/ckpt/faults/chk-$n/_manifest.json"
  truncate -s $(($(stat -c %s "$m") / 2)) "$m"
  run 2>"$work/err.txt"
  rc=$?
  check "truncated manifest: the restart succeeds (exit $rc)" [ $rc -eq 0 ]
  check "truncated manifest: reported" grep -q "checkpoint $n cannot be restored: .*truncated" \
    "$work/err.txt"
  check "truncated manifest: the checkpoint before it is restored" \
    grep -q "using checkpoint $((n - 1))" "$work/err.txt"
  same "truncated manifest"
else
  bad "no checkpoints completed for the manifest test"
fi

# Every completed checkpoint damaged: the run fails, it does not start empty.
if run_until_checkpoints 1; then
  for m in "$work"/var/ckpt/faults/chk-*/_manifest.json; do truncate -s 10 "$m"; done
  run 2>"$work/err.txt"
  rc=$?
  check "all checkpoints damaged: exit 1 (got $rc)" [ $rc -eq 1 ]
  check "all checkpoints damaged: says so" grep -q "no completed checkpoint of job 'faults' can be restored" \
    "$work/err.txt"
fi

fi

# ---- kill -9 during a restore and during the final checkpoint --------------------
if want kill; then

if run_until_checkpoints 2; then
  RUNNEL_FAULT=restore:kill run 2>/dev/null
  rc=$?
  check "kill -9 during the restore (exit $rc)" [ $rc -eq 137 ]
  run 2>"$work/err.txt" || bad "restart after a kill during the restore failed"
  same "kill -9 during the restore"
fi

for point in task manifest; do
  if run_until_checkpoints 2; then
    RUNNEL_FAULT=checkpoint:final:$point run 2>/dev/null
    rc=$?
    check "kill -9 in the final checkpoint ($point; exit $rc)" [ $rc -eq 137 ]
    run 2>"$work/err.txt" || bad "restart after a kill in the final checkpoint failed"
    same "kill -9 in the final checkpoint ($point)"
  fi
done

fi

# ---- signals ---------------------------------------------------------------------
if want signals; then

# term_when PATTERN SIGNALS CMD...: starts CMD (runnel itself, through env:
# not through timeout, which would pass the signal on twice) in the
# background, waits for PATTERN in its stderr, sends each of SIGNALS 0.2 s
# apart, and prints the exit status and the ms from the first signal to the
# exit. A process still there 10 s later is killed (status 999).
term_when() {
  local pattern=$1 sigs=$2; shift 2
  : >"$work/sig.txt" # emptied here, not in the child: no stale match
  "$@" 2>>"$work/sig.txt" &
  local pid=$! waited=0
  while ! grep -q "$pattern" "$work/sig.txt" && [ $waited -lt 400 ]; do
    sleep 0.05; waited=$((waited + 1))
  done
  local t0 s; t0=$(now_ms)
  for s in $sigs; do kill -"$s" "$pid" 2>/dev/null; sleep 0.2; done
  waited=0
  while kill -0 "$pid" 2>/dev/null && [ $waited -lt 200 ]; do sleep 0.05; waited=$((waited + 1)); done
  local dt=$(($(now_ms) - t0)) rc
  if kill -9 "$pid" 2>/dev/null; then wait "$pid"; rc=999; else wait "$pid"; rc=$?; fi
  echo "$rc $dt"
}

rm -rf "$work/var"
read -r rc dt < <(term_when "status page at" TERM env INTERVAL=200ms "$bin/runnel" run \
  "$work/follow.yaml")
check "SIGTERM while running: exit 0 (got $rc) in $dt ms" [ "$rc" -eq 0 ] && [ "$dt" -lt 5000 ]

if run_until_checkpoints 1; then
  read -r rc dt < <(term_when "RUNNEL_FAULT: restore:stall" INT env RUNNEL_FAULT=restore:stall \
    "$bin/runnel" run "$work/job.yaml")
  check "SIGINT during a restore that hangs: exit 1 (got $rc) in $dt ms" \
    [ "$rc" -eq 1 ] && [ "$dt" -lt 5000 ]
  check "... and it says why" grep -q "did not stop within" "$work/sig.txt"
fi

rm -rf "$work/var"
read -r rc dt < <(term_when "checkpoint 1 stalls" TERM env RUNNEL_FAULT=checkpoint:1:stall \
  INTERVAL=200ms "$bin/runnel" run "$work/follow.yaml")
check "SIGTERM during a checkpoint that hangs: exit 1 (got $rc) in $dt ms" \
  [ "$rc" -eq 1 ] && [ "$dt" -lt 5000 ]

rm -rf "$work/var"
read -r rc dt < <(term_when "stalls" TERM env RUNNEL_FAULT=checkpoint:final:stall \
  "$bin/runnel" run "$work/job.yaml")
check "SIGTERM during a final checkpoint that hangs: exit 1 (got $rc) in $dt ms" \
  [ "$rc" -eq 1 ] && [ "$dt" -lt 5000 ]

rm -rf "$work/var"
read -r rc dt < <(term_when "stalls" "TERM TERM" env RUNNEL_FAULT=checkpoint:final:stall \
  "$bin/runnel" run "$work/job.yaml")
check "a second SIGTERM ends the process at once: exit 143 (got $rc) in $dt ms" \
  [ "$rc" -eq 143 ] && [ "$dt" -lt 1500 ]

fi

# ---- a followed file truncated or replaced ----------------------------------------
if want follow; then

# The follow job reads a.jsonl; its output must end up the same as a bounded
# run over everything that was in the file, part by part.
head -n 15000 "$work/in.jsonl" >"$work/a1"
sed -n 15001,30000p "$work/in.jsonl" >"$work/a2"
sed -n 30001,40000p "$work/in.jsonl" >"$work/a3"
cat >"$work/follow2.yaml" <<YAML
job: follow
checkpoint: { dir: $work/var/ckpt, interval: 100ms }
http: { listen: "127.0.0.1:0" }
sources:
  logs: { type: file, path: $work/var/a.jsonl, follow: true, poll_interval: 20ms }
operators:
  - { id: collect, op: log_collector, from: logs, dead_letter: rejected }
sinks:
  out: { type: file, path: $work/var/out/events.jsonl, from: collect }
  rejected: { type: file, path: $work/var/out/rejected.jsonl }
YAML
wait_lines() { # n: committed output reaches n lines
  local waited=0
  while [ "$(cat "$work/var/out/events.jsonl" 2>/dev/null | wc -l)" -lt "$1" ] && [ $waited -lt 200 ]; do
    sleep 0.05; waited=$((waited + 1))
  done
}
# SIGTERM to a job started in the background; its exit status (124: still
# there 10 s later, then killed).
stop_within() {
  kill -TERM "$1"
  local waited=0
  while kill -0 "$1" 2>/dev/null && [ $waited -lt 200 ]; do sleep 0.05; waited=$((waited + 1)); done
  if kill -9 "$1" 2>/dev/null; then wait "$1"; return 124; fi
  wait "$1"
}
rm -rf "$work/var"; mkdir -p "$work/var"
cp "$work/a1" "$work/var/a.jsonl"
"$bin/runnel" run "$work/follow2.yaml" --quiet 2>"$work/follow.err" &
pid=$!
wait_lines 15000
# Replaced: a new file under the same name.
cp "$work/a2" "$work/var/a.new" && mv "$work/var/a.new" "$work/var/a.jsonl"
wait_lines 30000
# Truncated in place, then written again (shorter than what was read).
: >"$work/var/a.jsonl"; sleep 0.3; cat "$work/a3" >>"$work/var/a.jsonl"
wait_lines 40000
stop_within $pid
rc=$?
check "followed file: the job stopped cleanly (exit $rc)" [ $rc -eq 0 ]
check "followed file: the replacement was reported" grep -q "was replaced" "$work/follow.err"
check "followed file: the truncation was reported" grep -q "was truncated" "$work/follow.err"
# While the job is stopped, the file is truncated and rewritten shorter than
# the checkpoint's position: the restart reads it from its start.
head -n 100 "$work/a1" >"$work/var/a.jsonl.tmp" && cat "$work/var/a.jsonl.tmp" >"$work/var/a.jsonl"
"$bin/runnel" run "$work/follow2.yaml" --quiet 2>"$work/follow.err" &
pid=$!
wait_lines 40100
stop_within $pid
check "followed file truncated while stopped: reported on restore" \
  grep -q "is shorter .* than the checkpoint's position" "$work/follow.err"
cat "$work/a1" "$work/a2" "$work/a3" <(head -n 100 "$work/a1") >"$work/all.jsonl"
sed -e "s|path: $work/var/a.jsonl, follow: true, poll_interval: 20ms|path: $work/all.jsonl|" \
  -e "s|var/out|var/ref|" -e "s|var/ckpt|var/refckpt|" "$work/follow2.yaml" >"$work/bounded.yaml"
timeout 60 "$bin/runnel" run "$work/bounded.yaml" --quiet 2>/dev/null || bad "bounded reference"
if sort "$work/var/out/events.jsonl" | cmp -s - <(sort "$work/var/ref/events.jsonl"); then
  ok "followed file: every line once ($(wc -l <"$work/var/out/events.jsonl") events)"
else
  bad "followed file: output differs ($(wc -l <"$work/var/out/events.jsonl") lines, bounded run $(wc -l <"$work/var/ref/events.jsonl"))"
fi
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
