#!/usr/bin/env bash
# State format versions. tests/fixtures/window_count-v1 is the final checkpoint
# of a stopped job, written before format versions by a window_count that stored
# its windows as version 1 (see its make.sh). Restoring it must migrate the
# open windows to the current format: the windows that run emitted plus the
# ones the restored run emits must equal a fresh run over the whole input.
# New checkpoints must say the current version, and one that says a newer
# version than this runnel reads must be refused with a message naming the
# operator and both versions. (Checkpoints of the current version restore
# without migration: test_state_fault checks that.)
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
fix=$RUNNEL_SRC/tests/fixtures/window_count-v1
work=$(mktemp -d /tmp/runnel-stver.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

"$fix/gen_input.sh" 1 4000 >"$work/all.jsonl"
"$fix/gen_input.sh" 2401 4000 >"$work/b.jsonl"
# job SOURCE INPUT SINK OUTPUT CKPT: the fixture's job, with the source and
# sink named anew (their old positions do not apply to these files).
job() {
  cat <<YAML
job: wcv
parallelism: 1
max_parallelism: 16
state: { dir: $work/state }
checkpoint: { dir: $work/$5, interval: 1h }
watermark: { out_of_orderness: 2s, idle_timeout: 0 }
sources:
  $1: { type: file, path: $work/$2 }
operators:
  - { id: collect, op: log_collector, from: $1 }
  - { id: counts, op: window_count, from: collect, key: user, size: 10s, slide: 5s }
sinks:
  $3: { type: file, path: $work/$4, from: counts }
YAML
}
job logs all.jsonl out fresh.jsonl ck-fresh >"$work/fresh.yaml"
job more b.jsonl out2 restored.jsonl ck-restored >"$work/restore.yaml"

"$bin/runnel" run "$work/fresh.yaml" --quiet || bad "fresh run"
sort "$work/fresh.jsonl" >"$work/ref.txt"
n_ref=$(wc -l <"$work/ref.txt")
[ "$n_ref" -gt 500 ] && ok "fresh run: $n_ref windows" || bad "fresh run: $n_ref windows"

# The old checkpoint: migrated, and the output continues exactly.
cp -r "$fix/ckpt" "$work/old"
"$bin/runnel" run "$work/restore.yaml" --quiet --from-checkpoint "$work/old" 2>"$work/log.txt" ||
  { bad "restore of the version 1 checkpoint failed"; cat "$work/log.txt"; }
grep -q "operator 'counts': state 'counts' migrated from format version 1 to 2 ([1-9][0-9]* entries)" \
  "$work/log.txt" && ok "window_count's state was migrated from version 1 to 2" ||
  { bad "no migration reported"; cat "$work/log.txt"; }
sort "$fix/emitted.jsonl" "$work/restored.jsonl" | cmp -s - "$work/ref.txt" &&
  ok "old run's windows + restored run's windows = the fresh run's ($n_ref)" ||
  bad "restored output differs: $(wc -l <"$fix/emitted.jsonl") + $(wc -l <"$work/restored.jsonl") lines, fresh $n_ref"

# The same at parallelism 2: each subtask copies its key groups out of the old
# checkpoint and migrates them (the version comes from the old subtask's files).
rm -rf "$work/old" "$work/ck-p2"
cp -r "$fix/ckpt" "$work/old"
sed -e 's/^parallelism: 1/parallelism: 2/' -e 's/ck-restored/ck-p2/' -e 's/restored.jsonl/p2.jsonl/' \
  "$work/restore.yaml" >"$work/p2.yaml"
"$bin/runnel" run "$work/p2.yaml" --quiet --from-checkpoint "$work/old" 2>"$work/log.txt" ||
  { bad "restore at parallelism 2 failed"; cat "$work/log.txt"; }
[ "$(grep -c "state 'counts' migrated from format version 1 to 2" "$work/log.txt")" = 2 ] &&
  ok "at parallelism 2 both subtasks migrated their key groups" || { bad "p2 migration"; cat "$work/log.txt"; }
sort "$fix/emitted.jsonl" "$work/p2.jsonl" | cmp -s - "$work/ref.txt" &&
  ok "at parallelism 2 too, the windows continue exactly" || bad "p2 output differs"

# What the restored run wrote is the current version, and restores as is.
ck=$(ls -d "$work"/ck-restored/wcv/chk-* | head -1)
v=$("$bin/rn_snapver" "$ck/tasks/counts-0/ops/counts.bin")
[ "$v" = 2 ] && ok "a new checkpoint records window_count's state as version 2" ||
  bad "ops/counts.bin says version '$v'"
[ "$("$bin/rn_snapver" "$ck/tasks/counts-0/runtime.bin")" = 1 ] && ok "runtime.bin is version 1" ||
  bad "runtime.bin version"

# A checkpoint from the future: refused before anything runs.
cp -r "$fix/ckpt" "$work/new"
cp "$ck/tasks/counts-0/ops/counts.bin" "$work/new/tasks/counts-0/ops/counts.bin"
"$bin/rn_snapver" "$work/new/tasks/counts-0/ops/counts.bin" 7 || bad "rn_snapver"
rm -f "$work/restored.jsonl"
"$bin/runnel" run "$work/restore.yaml" --quiet --from-checkpoint "$work/new" 2>"$work/log.txt"
rc=$?
[ $rc -eq 1 ] && ok "a newer version is refused (exit 1)" || bad "newer version: exit $rc"
grep -q "restore of operator 'counts' (window_count): the checkpoint holds state format version 7; this runnel's window_count reads versions 1 to 2 (written by a newer runnel" \
  "$work/log.txt" && ok "the message names the operator and both versions" ||
  { bad "message"; cat "$work/log.txt"; }
[ ! -s "$work/restored.jsonl" ] && ok "nothing was emitted" || bad "output after a refused restore"

# A snapshot file from the future that is not the operator's is refused too.
cp -r "$fix/ckpt" "$work/rt"
"$bin/rn_snapver" "$work/rt/tasks/counts-0/runtime.bin" 9 || bad "rn_snapver"
"$bin/runnel" run "$work/restore.yaml" --quiet --from-checkpoint "$work/rt" 2>"$work/log.txt"
rc=$?
[ $rc -eq 1 ] && grep -q "runtime.bin has format version 9; this runnel reads version 1" "$work/log.txt" &&
  ok "runtime.bin of a newer version is refused" || { bad "runtime.bin version: exit $rc"; cat "$work/log.txt"; }

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
