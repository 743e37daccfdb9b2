#!/usr/bin/env bash
# test_statenet_loop.sh — a pretrained state network in the closed loop (docs/learning.md,
# "Using a state network in a job"):
#
#   data        a short closed loop with the simple φ (scripts/closed-loop.sh: rn_sim
#               --policy model:DIR, the main job following its log) writes the joiner's
#               training output; `runnel pretrain` trains a network on it (history 10, out 16)
#   the loop    the same closed loop with the network named to the learner and inference
#               (--set operators.{learn,rank}.state_network=FILE) and to the simulator
#               (--model-state-network FILE): versions are published with phi = 16 (the
#               network's output size), the simulator ranks with them (impressions with
#               model_version > 0), inference serves them (no "does not fit")
#   determinism two runs give byte-identical logs
#   evaluate    `runnel evaluate --state-network FILE` scores the loop's samples with its
#               versions; without the option it refuses them, naming the misfit
#   misfits     --model-state-network without a model policy is a usage error; a network
#               whose k exceeds the learner's `history` stops the job with a message
#
# Run by ctest with RUNNEL_SRC (the repository root) and RUNNEL_BIN (the build directory).
# Prints PASS/FAIL lines and "N passed, M failed"; exits 1 if anything failed.
set -u

SRC=${RUNNEL_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${RUNNEL_BIN:-$SRC/build}
RUNNEL=$BIN/runnel
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}
for b in "$BIN/rn_sim" "$RUNNEL" "$BIN/rn_st_dump"; do
    if [ ! -x "$b" ]; then
        fail "binary not found: $b"
        finish
    fi
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/runnel-snloop.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export RUNNEL_BIN=$BIN
WORLD="--users 200 --items 300 --dim 8"
SEED=3
SESSIONS=2000

loop() { # DIR [runnel --set ...]; SIM_ARGS from the caller
    local dir=$1
    shift
    timeout 60 bash "$SRC/scripts/closed-loop.sh" "$dir" "$SEED" "$SESSIONS" "$@" \
        >"$dir.out" 2>&1
}

# ---- data ---------------------------------------------------------------------------------
SIM_ARGS="$WORLD" loop "$TMP/simple"
rc=$?
lines=$(cat "$TMP"/simple/out/training/*/*/*.jsonl 2>/dev/null | wc -l)
if [ "$rc" -eq 0 ] && [ "$lines" -gt 500 ]; then
    pass "a closed loop with the simple state features wrote $lines training lines"
else
    fail "a closed loop with the simple state features (exit $rc, $lines training lines): $(tail -c 600 "$TMP/simple.out")"
    finish
fi
NET=$TMP/net.safetensors
if timeout 60 "$RUNNEL" pretrain --data "$TMP/simple/out/training" \
    --embeddings "$TMP/simple/embeddings.txt" --out "$NET" --history 10 --filters 8 \
    --out-dim 16 --epochs 2 --seed 1 >"$TMP/pretrain.txt" 2>&1; then
    pass "pretrain on its training output: $(tail -1 "$TMP/pretrain.txt")"
else
    fail "pretrain on its training output: $(tail -c 600 "$TMP/pretrain.txt")"
    finish
fi

# ---- the loop with the network --------------------------------------------------------------
SETS=(--set "operators.learn.state_network=$NET" --set "operators.rank.state_network=$NET")
SIM_ARGS="$WORLD --model-state-network $NET" loop "$TMP/a" "${SETS[@]}"
rc_a=$?
SIM_ARGS="$WORLD --model-state-network $NET" loop "$TMP/b" "${SETS[@]}"
rc_b=$?
if [ "$rc_a" -eq 0 ] && [ "$rc_b" -eq 0 ]; then
    pass "two closed loops with the state network: $(cat "$TMP/a.out")"
else
    fail "two closed loops with the state network (exit $rc_a, $rc_b): $(tail -c 600 "$TMP/a.out") $(tail -c 600 "$TMP/b.out")"
    finish
fi
versions=$(ls "$TMP"/a/models/v*.json 2>/dev/null | wc -l)
"$BIN/rn_st_dump" "$TMP/a/models/v000000000001.safetensors" >"$TMP/dump.txt" 2>&1
if [ "$versions" -gt 2 ] && grep -q '^tensor v \[16\]' "$TMP/dump.txt" &&
    grep -q '^tensor W \[8,16\]' "$TMP/dump.txt"; then
    pass "$versions versions published with phi = 16, the network's output size"
else
    fail "versions with phi = 16 ($versions versions): $(grep -o '^tensor [a-zA-Z]* \[[0-9,]*\]' "$TMP/dump.txt" | tr '\n' ' ')"
fi
ranked=$(grep '"type":"impression"' "$TMP/a/log.jsonl" | grep -c '"model_version":[1-9]')
if [ "$ranked" -gt 100 ]; then
    pass "the simulator ranked $ranked pages with them"
else
    fail "the simulator ranks with them ($ranked impressions with model_version > 0)"
fi
served=$(grep -c '"model_version":[1-9]' "$TMP/a/out/recommendations.jsonl" 2>/dev/null)
if [ "${served:-0}" -gt 100 ] && ! grep -q "does not fit" "$TMP/a/job.txt"; then
    pass "inference ranked $served requests with them"
else
    fail "inference ranks with them (${served:-0} recommendations, $(grep -c "does not fit" "$TMP/a/job.txt") misfits)"
fi

# ---- determinism ---------------------------------------------------------------------------------
if cmp -s "$TMP/a/log.jsonl" "$TMP/b/log.jsonl"; then
    pass "the same seed and network: byte-identical logs"
else
    fail "the same seed and network: byte-identical logs"
fi
if ! cmp -s "$TMP/a/log.jsonl" "$TMP/simple/log.jsonl"; then
    pass "the network changes the ranking (the log differs from the simple φ's)"
else
    fail "the network changes the ranking"
fi

# ---- runnel evaluate ---------------------------------------------------------------------------------
EVAL=(evaluate --data "$TMP/a/out/samples.jsonl" --policy "model:$TMP/a/models"
    --embeddings "$TMP/a/embeddings.txt" --bootstrap 0)
"$RUNNEL" "${EVAL[@]}" --state-network "$NET" >"$TMP/eval.txt" 2>&1
rc=$?
"$RUNNEL" "${EVAL[@]}" >"$TMP/eval-simple.txt" 2>&1
rc2=$?
if [ "$rc" -eq 0 ] && grep -q "model:" "$TMP/eval.txt" && [ "$rc2" -eq 1 ] &&
    grep -q "phi 16; want dim 8 (the embeddings) and phi 18 (the simple state features" "$TMP/eval-simple.txt"; then
    pass "runnel evaluate --state-network scores with the versions; without it: $(cat "$TMP/eval-simple.txt")"
else
    fail "runnel evaluate --state-network (exit $rc: $(tail -c 300 "$TMP/eval.txt"); without: exit $rc2: $(tail -c 300 "$TMP/eval-simple.txt"))"
fi

# ---- misfits ---------------------------------------------------------------------------------------
"$BIN/rn_sim" --sessions 1 --model-state-network "$NET" >/dev/null 2>"$TMP/usage.txt"
rc=$?
if [ "$rc" -eq 2 ] && grep -q "model-state-network" "$TMP/usage.txt"; then
    pass "--model-state-network without a model policy: exit 2, $(head -1 "$TMP/usage.txt")"
else
    fail "--model-state-network without a model policy: exit 2 (exit $rc: $(head -1 "$TMP/usage.txt"))"
fi
RUNNEL_LOG=$TMP/simple/log.jsonl RUNNEL_EMBEDDINGS=$TMP/simple/embeddings.txt \
    RUNNEL_VAR=$TMP/misfit/var RUNNEL_OUT=$TMP/misfit/out RUNNEL_MODELS=$TMP/misfit/models \
    RUNNEL_HTTP=127.0.0.1:0 RUNNEL_SERVE=127.0.0.1:0 timeout 30 "$RUNNEL" run \
    "$SRC/jobs/guess-you-like.yaml" --fresh --set "operators.learn.state_network=$NET" \
    --set operators.learn.history=5 >"$TMP/misfit.txt" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "raise \`history\` to at least 10" "$TMP/misfit.txt"; then
    pass "a network longer than the learner's history stops the job: $(grep -m1 'raise' "$TMP/misfit.txt")"
else
    fail "a network longer than the learner's history stops the job (exit $rc: $(tail -c 400 "$TMP/misfit.txt"))"
fi

finish
