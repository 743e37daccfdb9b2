#!/usr/bin/env bash
# test_sim_model.sh — rn_sim's model policy (--policy model:DIR, docs/simulator.md) against
# hand-made models that build/rn_mkmodel publishes into a model store.
#
#   greedy slates   a store with a version at every boundary (P = 60 s, lag 60 s): every
#                   impression uses the version of its request's boundary (0 and random
#                   before the first), shows the model's top L in its greedy slots with
#                   propensity 1 - eps, explored ones eps / (K - L); checked by
#                   tests/tools/check_sim_model.py, which recomputes the users' histories,
#                   the state features and the advantages from the log, the embeddings and the
#                   model file
#   bias            a model whose only terms are item biases shows the favoured items first
#   determinism     the same seed and store give byte-identical logs; a store filled while
#                   rn_sim waits for it gives the same log as a full one
#   timeout         with a version only for an early boundary, --model-wait 1 ends in exit 1
#                   and a message naming the store and the boundary
#   live mode       --model-lag 0 uses the store's current version, or the pinned one
#   LAST            --model-last with an evaluator that prefers no list changes nothing (the
#                   same bytes) and reports its searches; a missing store and another policy
#                   are refused
#   usage           model:DIR without --embeddings is a usage error
#
# Run by ctest with RUNNEL_SRC and RUNNEL_BIN.  One PASS/FAIL line per check, then
# "N passed, M failed"; exits 1 if anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
SIM=$BIN/rn_sim
MK=$BIN/rn_mkmodel
CHECK=$SRC/tests/tools/check_sim_model.py
cd "$SRC" || { echo "cannot cd to $SRC"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-simmodel.XXXXXX")
bgpid=
trap '[ -n "$bgpid" ] && kill "$bgpid" 2>/dev/null; rm -rf "$TMP"' EXIT

pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

for b in "$SIM" "$MK"; do
    if [ ! -x "$b" ]; then
        fail "binary not found: $b"
        finish
    fi
done
if ! command -v python3 >/dev/null; then
    fail "python3 not found (scripts/install-deps.sh installs it)"
    finish
fi

START=1700000000000
FIRST=1700000040000 # the first 60 s boundary at or after START
K=30
L=4
EPS=0.1
SMALL=(--sessions 300 --users 400 --items 300 --dim 8 --candidates $K --slate $L
    --epsilon $EPS --start-ts $START --model-lag 60 --model-period 60)
BIAS=(--bias i1=3 --bias i2=2.5 --bias i3=2 --bias i5=1.5 --bias i8=1 --bias i13=0.5)

# sim NAME STORE ARGS... : rn_sim with the model policy, output under $TMP/NAME.*; rc in $rc.
sim() {
    local name=$1 store=$2
    shift 2
    timeout 120 "$SIM" "${SMALL[@]}" --policy "model:$store" --out "$TMP/$name.jsonl" \
        --embeddings "$TMP/$name.emb" --summary-json "$TMP/$name.json" "$@" 2>"$TMP/$name.err"
    rc=$?
}

# ---- a store with a version at every boundary (bias-only model) ------------------------
"$MK" "$TMP/bias" --dim 8 --items 300 --event-time $FIRST --count 40 --every 60000 \
    "${BIAS[@]}" 2>"$TMP/mk.err" || { fail "rn_mkmodel: $(cat "$TMP/mk.err")"; finish; }
sim b1 "$TMP/bias"
if [ "$rc" -eq 0 ] && python3 "$CHECK" "$TMP/b1.jsonl" "$TMP/b1.emb" \
    "$TMP/bias/v000000000001.safetensors" --lag 60 --period 60 --start $START \
    --first $FIRST --k $K --slate $L --epsilon $EPS "${BIAS[@]}" \
    >"$TMP/b1.check" 2>&1; then
    pass "bias model: versions by boundary, greedy slots, propensities ($(cat "$TMP/b1.check"))"
else
    fail "bias model (rn_sim exit $rc): $(head -c 800 "$TMP/b1.err") $(cat "$TMP/b1.check" 2>/dev/null)"
fi
# The favoured item i1 is shown first whenever it is a candidate of a model-ranked request
# and slot 0 is not explored.
n_first=$(grep '"type":"impression"' "$TMP/b1.jsonl" | grep -v '"model_version":0' |
    grep -c '"items":\["i1",')
if [ "${n_first:-0}" -gt 0 ]; then
    pass "bias model: i1 (the largest bias) tops $n_first slates"
else
    fail "bias model: i1 never tops a slate"
fi

# ---- a model that uses the state: random v, W, w plus the biases ---------------------------
"$MK" "$TMP/full" --dim 8 --items 300 --event-time $FIRST --count 40 --every 60000 \
    --random 11 "${BIAS[@]}" 2>"$TMP/mk.err" || { fail "rn_mkmodel: $(cat "$TMP/mk.err")"; finish; }
sim f1 "$TMP/full"
rc1=$rc
if [ "$rc1" -eq 0 ] && python3 "$CHECK" "$TMP/f1.jsonl" "$TMP/f1.emb" \
    "$TMP/full/v000000000001.safetensors" --lag 60 --period 60 --start $START \
    --first $FIRST --k $K --slate $L --epsilon $EPS "${BIAS[@]}" >"$TMP/f1.check" 2>&1; then
    pass "state-dependent model: slates match A(s, i) recomputed from the log ($(cat "$TMP/f1.check"))"
else
    fail "state-dependent model (rn_sim exit $rc1): $(head -c 800 "$TMP/f1.err") $(cat "$TMP/f1.check" 2>/dev/null)"
fi
sim f2 "$TMP/full"
if [ "$rc1" -eq 0 ] && [ "$rc" -eq 0 ] && cmp -s "$TMP/f1.jsonl" "$TMP/f2.jsonl" &&
    cmp -s "$TMP/f1.json" "$TMP/f2.json"; then
    pass "same seed, same store: byte-identical logs and summaries"
else
    fail "same seed, same store: byte-identical logs and summaries (exit $rc1, $rc)"
fi
if grep -q '"policy":"model:' "$TMP/f1.json" && grep -q 'sim: policy=model:' "$TMP/f1.err"; then
    pass "summary names the policy model:DIR"
else
    fail "summary names the policy model:DIR ($(head -n 1 "$TMP/f1.err"))"
fi

# ---- the learner is slower than the simulator: rn_sim waits, and the log is the same -------
"$MK" "$TMP/slow" --dim 8 --event-time $FIRST --count 3 --every 60000 --random 11 "${BIAS[@]}"
sim f3 "$TMP/slow" --model-wait 60 &
bgpid=$!
# Wait (with a deadline) until rn_sim has flushed its log: it is then waiting for version 4.
for _ in $(seq 1 2000); do
    [ -s "$TMP/f3.jsonl" ] && break
    sleep 0.01
done
"$MK" "$TMP/slow" --dim 8 --id 4 --event-time $((FIRST + 3 * 60000)) --count 37 --every 60000 \
    --random 11 "${BIAS[@]}"
wait "$bgpid"
rc=$?
bgpid=
if [ "$rc" -eq 0 ] && cmp -s "$TMP/f1.jsonl" "$TMP/f3.jsonl"; then
    pass "a store filled while rn_sim waits gives the same log"
else
    fail "a store filled while rn_sim waits gives the same log (exit $rc: $(head -c 600 "$TMP/f3.err"))"
fi

# ---- timeout: only an early version ---------------------------------------------------------
"$MK" "$TMP/early" --dim 8 --event-time $FIRST "${BIAS[@]}"
sim t1 "$TMP/early" --model-wait 1
want="model store $TMP/early has no version with event_time >= $((FIRST + 60000))"
if [ "$rc" -eq 1 ] && grep -qF "$want" "$TMP/t1.err"; then
    pass "no version for the boundary: exit 1 after --model-wait ($(grep -o 'model store.*' "$TMP/t1.err" | cut -c 1-160)...)"
else
    fail "no version for the boundary: exit 1 with '$want' (exit $rc: $(head -c 600 "$TMP/t1.err"))"
fi

# ---- live mode: the current version, or the pinned one ------------------------------------
sim l1 "$TMP/bias" --model-lag 0
versions=$(grep -o '"model_version":[0-9]*' "$TMP/l1.jsonl" | sort -u | tr '\n' ' ')
if [ "$rc" -eq 0 ] && [ "$versions" = '"model_version":40 ' ]; then
    pass "--model-lag 0: every slate from the newest version (40)"
else
    fail "--model-lag 0: every slate from the newest version (exit $rc, versions: $versions)"
fi
echo 7 >"$TMP/bias/PINNED"
sim l2 "$TMP/bias" --model-lag 0
versions=$(grep -o '"model_version":[0-9]*' "$TMP/l2.jsonl" | sort -u | tr '\n' ' ')
if [ "$rc" -eq 0 ] && [ "$versions" = '"model_version":7 ' ]; then
    pass "--model-lag 0 with PINNED 7: every slate from version 7"
else
    fail "--model-lag 0 with PINNED 7 (exit $rc, versions: $versions)"
fi
sim l3 "$TMP/empty-store" --model-lag 0
props=$(grep '"type":"impression"' "$TMP/l3.jsonl" | grep -v -c '"model_version":0}$')
if [ "$rc" -eq 0 ] && [ "$props" -eq 0 ] && [ -s "$TMP/l3.jsonl" ]; then
    pass "--model-lag 0 with an empty store: random slates, model_version 0"
else
    fail "--model-lag 0 with an empty store (exit $rc, $props impressions with a version)"
fi

# ---- LAST (--model-last) -------------------------------------------------------------------
# An evaluator whose position weights are all 0 predicts the same reward for every list, so
# no offset beats the model's own list and the log is l2's, byte for byte; the search still
# runs on every model-ranked page and says so.
"$MK" "$TMP/ev0" --dim 8 --items 300 --event-time $FIRST --bias i20=5 2>"$TMP/mk.err" ||
    fail "rn_mkmodel: $(cat "$TMP/mk.err")"
sim x1 "$TMP/bias" --model-lag 0 --model-last "$TMP/ev0" --model-last-candidates 4 \
    --model-last-steps 2
searches=$(grep -o 'sim: last: searches=[0-9]*' "$TMP/x1.err" | cut -d= -f2)
if [ "$rc" -eq 0 ] && cmp -s "$TMP/x1.jsonl" "$TMP/l2.jsonl" && [ "${searches:-0}" -gt 0 ] &&
    grep -q 'sim: last: searches=[0-9]* changed=0 (0.0%) lists_tried=' "$TMP/x1.err"; then
    pass "--model-last with a flat evaluator: $searches searches, no list changed, the same log"
else
    fail "--model-last with a flat evaluator (exit $rc): $(grep 'last:' "$TMP/x1.err" | head -c 300)"
fi
sim x2 "$TMP/bias" --model-lag 0 --model-last "$TMP/no-such-store"
if [ "$rc" -ne 0 ] && grep -qF -- "--model-last $TMP/no-such-store:" "$TMP/x2.err"; then
    pass "--model-last with a missing store: fails naming it ($(grep -o -- '--model-last.*' "$TMP/x2.err" | head -1 | cut -c 1-120))"
else
    fail "--model-last with a missing store (exit $rc: $(head -c 300 "$TMP/x2.err"))"
fi
timeout 20 "$SIM" --policy random --model-last "$TMP/ev0" --out /dev/null 2>"$TMP/u2.err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q -- "--model-last is for --policy model:DIR" "$TMP/u2.err"; then
    pass "--model-last with another policy: usage error (exit 2)"
else
    fail "--model-last with another policy (exit $rc: $(head -c 300 "$TMP/u2.err"))"
fi

# ---- usage --------------------------------------------------------------------------------
timeout 20 "$SIM" --policy "model:$TMP/bias" --out /dev/null 2>"$TMP/u.err"
rc=$?
if [ "$rc" -eq 2 ] && grep -q -- "needs --embeddings" "$TMP/u.err"; then
    pass "model:DIR without --embeddings: usage error (exit 2)"
else
    fail "model:DIR without --embeddings: usage error (exit $rc: $(head -c 300 "$TMP/u.err"))"
fi

finish
