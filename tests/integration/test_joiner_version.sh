#!/usr/bin/env bash
# The online_joiner's state format version 2 (an item keeps one count per
# feedback type the job has, not 8). tests/fixtures/joiner-v1 is the final
# checkpoint of a stopped job, written by a runnel whose joiner stored version
# 1 (see its make.sh), with requests still open. Restoring it must migrate
# them: the samples that run emitted plus the ones the restored run emits
# must equal a fresh run's over the whole input, at parallelism 1 and 2; and
# the restored run's own checkpoint must say version 2.
set -u
cd "${RUNNEL_SRC:?}"
bin=${RUNNEL_BIN:?}
fix=$RUNNEL_SRC/tests/fixtures/joiner-v1
work=$(mktemp -d /tmp/runnel-jver.XXXXXX)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "PASS $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

"$fix/gen_input.sh" 1 6000 >"$work/all.jsonl"
"$fix/gen_input.sh" 2401 6000 >"$work/b.jsonl"
# job PARALLELISM SOURCE INPUT SINK OUTPUT CKPT: the fixture's job, with the
# source and sink named anew (their old positions do not apply to these files).
job() {
  cat <<YAML
job: jv
parallelism: $1
max_parallelism: 16
state: { dir: $work/state-$6 }
checkpoint: { dir: $work/$6, interval: 1h }
watermark: { out_of_orderness: 1s, idle_timeout: 0 }
sources:
  $2: { type: file, path: $work/$3 }
operators:
  - { id: collect, op: log_collector, from: $2 }
  - { id: join, op: online_joiner, from: collect, window: 5s, late: late }
sinks:
  $4: { type: file, path: $work/$5, from: join }
  late: { type: discard }
YAML
}
job 1 logs all.jsonl out fresh.jsonl ck-fresh >"$work/fresh.yaml"
"$bin/runnel" run "$work/fresh.yaml" --quiet || bad "fresh run"
sort "$work/fresh.jsonl" >"$work/ref.txt"
n_ref=$(wc -l <"$work/ref.txt")
[ "$n_ref" -gt 1500 ] && ok "fresh run: $n_ref samples" || bad "fresh run: $n_ref samples"
grep -q '"click":1' "$work/ref.txt" && grep -q '"pay":1' "$work/ref.txt" &&
  ok "the samples count clicks and pays" || bad "no counted feedback in the samples"

for p in 1 2; do
  rm -rf "$work/old"
  cp -r "$fix/ckpt" "$work/old"
  job $p more b.jsonl out2 restored$p.jsonl ck-p$p >"$work/p$p.yaml"
  "$bin/runnel" run "$work/p$p.yaml" --quiet --from-checkpoint "$work/old" 2>"$work/log$p.txt" ||
    { bad "restore of the version 1 checkpoint at parallelism $p failed"; cat "$work/log$p.txt"; }
  [ "$(grep -c "operator 'join': state 'requests' migrated from format version 1 to 2 ([1-9][0-9]* entries)" \
       "$work/log$p.txt")" = "$p" ] &&
    ok "parallelism $p: the open requests were migrated from version 1 to 2" ||
    { bad "parallelism $p: migration not reported per subtask"; cat "$work/log$p.txt"; }
  sort "$fix/emitted.jsonl" "$work/restored$p.jsonl" | cmp -s - "$work/ref.txt" &&
    ok "parallelism $p: old run's samples + restored run's = the fresh run's ($n_ref)" ||
    bad "parallelism $p: output differs: $(wc -l <"$fix/emitted.jsonl") + $(wc -l <"$work/restored$p.jsonl") lines, fresh $n_ref"
done

ck=$(ls -d "$work"/ck-p1/jv/chk-* | head -1)
v=$("$bin/rn_snapver" "$ck/tasks/join-0/ops/join.bin")
[ "$v" = 2 ] && ok "a new checkpoint records the joiner's state as version 2" ||
  bad "ops/join.bin says version '$v'"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
