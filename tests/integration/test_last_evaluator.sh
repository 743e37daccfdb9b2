#!/usr/bin/env bash
# test_last_evaluator.sh — jobs/last-evaluator.yaml (LAST's evaluator: value_advantage_learner
# with objective: list_reward) on a small simulator log.
#
#   versions     the bounded run publishes evaluator versions into its own store
#   same bytes   a second run of the same log publishes byte-identical versions
#   objective    restarting from its checkpoint with objective: td is refused with a message
#                naming both objectives (neither learner restores the other's state)
#
# Run by ctest with RUNNEL_SRC and RUNNEL_BIN. One PASS/FAIL line per check, then
# "N passed, M failed"; exits 1 if anything failed.
set -u
SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
cd "$SRC" || exit 1
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-lastev.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

timeout 60 "$BIN/rn_sim" --policy popularity --sessions 1500 --users 300 --seed 3 \
  --out "$TMP/log.jsonl" --embeddings "$TMP/emb.txt" 2>"$TMP/sim.err" ||
  { fail "rn_sim: $(tail -c 300 "$TMP/sim.err")"; echo "$passed passed, $failed failed"; exit 1; }

# run NAME [runnel options...]: the evaluator job over the log into $TMP/NAME; rc in $rc
run() {
  local name=$1
  shift
  RUNNEL_LOG="$TMP/log.jsonl" RUNNEL_VAR="$TMP/$name/var" RUNNEL_OUT="$TMP/$name/out" \
    RUNNEL_EVALUATOR="$TMP/$name/evaluator" RUNNEL_EMBEDDINGS="$TMP/emb.txt" \
    timeout 120 "$BIN/runnel" run jobs/last-evaluator.yaml --set checkpoint.interval=100ms \
    "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"
  rc=$?
}

run a --fresh
n=$(find "$TMP/a/evaluator" -name 'v*.json' 2>/dev/null | wc -l)
if [ "$rc" -eq 0 ] && [ "$n" -ge 2 ]; then
  pass "the evaluator job publishes $n versions"
else
  fail "the evaluator job (exit $rc, $n versions): $(tail -c 400 "$TMP/a.err")"
fi

run b --fresh
if [ "$rc" -eq 0 ] && diff -r "$TMP/a/evaluator" "$TMP/b/evaluator" >/dev/null; then
  pass "the same log gives byte-identical evaluator versions"
else
  fail "two runs of the same log differ (exit $rc): $(diff -rq "$TMP/a/evaluator" "$TMP/b/evaluator" | head -3)"
fi

run a --set operators.evaluate.objective=td
want="checkpoint holds the state of a learner with objective list_reward; this job's has objective td"
if [ "$rc" -eq 1 ] && grep -qF "$want" "$TMP/a.err"; then
  pass "a restart with objective: td refuses the list_reward learner's checkpoint"
else
  fail "a restart with objective: td (exit $rc): $(tail -c 400 "$TMP/a.err")"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
